"""Renders every case of cases.py with transformers' own apply_chat_template and writes
golden.json (run where transformers is installed: python3 make_golden.py OUT_DIR). The tokenizer
is the tiny Llama fixture's tokenizer.json with each case's special tokens; the template is passed
as chat_template=, as EXO's MLX engine passes the model's template."""
import datetime
import json
import os
import sys

import transformers
from transformers import PreTrainedTokenizerFast

from cases import CASES, HERE, template_text

TOKENIZER = os.path.join(HERE, "..", "hf-tiny", "llama", "tokenizer.json")


def render(case):
    tok = PreTrainedTokenizerFast(tokenizer_file=TOKENIZER, **case["tokens"])
    try:
        text = tok.apply_chat_template(case["messages"], tools=case.get("tools"), tokenize=False,
                                       add_generation_prompt=case.get("add_generation_prompt", True),
                                       chat_template=template_text(case), **case["kwargs"])
        return {"text": text}
    except Exception as e:  # noqa: BLE001 - the golden records what transformers raises
        return {"error": type(e).__name__, "message": str(e)}


def main(out_dir):
    result = {"transformers": transformers.__version__, "cases": {}}
    for case in CASES:
        before = datetime.datetime.now()
        entry = render(case)
        if case.get("uses_today"):
            stamp = before.strftime(case["uses_today"])
            assert stamp == datetime.datetime.now().strftime(case["uses_today"]), "rendered across midnight"
            entry["today"] = stamp
        result["cases"][case["name"]] = entry
    # The fixtures' own tokenizer_config.json files: transformers' verdict on each (none holds a
    # chat_template today, so each is an error; a fixture that gains one gets its text here).
    fixtures = os.path.join(HERE, "..", "hf-tiny")
    dirs = [(n, os.path.join(fixtures, n)) for n in sorted(os.listdir(fixtures))]
    dirs.append(("tiny-llama-licenses", os.path.join(HERE, "..", "..", "..", "models", "tiny-llama-licenses")))
    for name, d in dirs:
        if not os.path.exists(os.path.join(d, "tokenizer_config.json")):
            continue
        try:
            tok = transformers.AutoTokenizer.from_pretrained(d)
            entry = {"text": tok.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False,
                                                     add_generation_prompt=True)}
        except Exception as e:  # noqa: BLE001
            entry = {"error": type(e).__name__, "message": str(e)}
        result["cases"]["fixture-" + name] = entry
    with open(os.path.join(out_dir, "golden.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else HERE)
