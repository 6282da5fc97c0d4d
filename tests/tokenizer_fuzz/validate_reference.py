"""Validates hf_bpe_reference.py against ids that Hugging Face itself produced: every string of
tests/data/hf-tiny/tokenizer_cases.json (transformers, add_special_tokens=False; ids and decoded
text) and the prompt ids of every golden.json (fixtures and models/, BOS first). Those are few,
so the hand-written split scanner is also checked against a real backtracking engine: PCRE2 with
the same pattern must split the fuzz strings identically, except where the string holds U+180E
(PCRE2's \s includes it, Oniguruma's and Unicode's White_Space do not). Exits non-zero on any
disagreement, naming the file, the text and both results.

usage: validate_reference.py REPO_ROOT
"""
import glob
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fuzz_strings  # noqa: E402
import pcre2_probe  # noqa: E402
from hf_bpe_reference import Tokenizer  # noqa: E402

# PCRE2's \s matches U+180E MONGOLIAN VOWEL SEPARATOR (via \h); White_Space has not held it
# since Unicode 6.3, and Oniguruma (Hugging Face's engine) follows White_Space.
PCRE2_ONLY_SPACE = "\u180e"


# Pre-token splits that follow from rules of Hugging Face's engine which neither the HF-made ids
# above nor PCRE2 can confirm, each derived by hand from the rule named.
RULE_SPLITS = [
    # Oniguruma's \s is White_Space (make_unicode_property_data.py: Space = White_Space); U+180E
    # is not in it, so it is [^\s\p{L}\p{N}] and "  " backs off one space before it.
    ("  \u180e", [" ", " \u180e"]),
    ("\u180e's", ["\u180e'", "s"]),
    ("x\u180e\u180e\n", ["x", "\u180e\u180e\n"]),
    # U+001C..U+001F are not White_Space (though str.isspace() says so).
    ("a\u001c\u001cb", ["a", "\u001c\u001c", "b"]),
    # (?i) uses Unicode case folding: U+017F folds to 's'.
    ("it'\u017f", ["it", "'\u017f"]),
    # \s+(?!\S) gives the last space of a run to the next word; a run at the end stays whole.
    ("a   b  ", ["a", "  ", " b", "  "]),
    ("\u00a0\u00a0x", ["\u00a0", "\u00a0x"]),
]


def bos_id(model_dir):
    with open(os.path.join(model_dir, "tokenizer_config.json"), encoding="utf-8") as f:
        bos = json.load(f).get("bos_token")
    with open(os.path.join(model_dir, "tokenizer.json"), encoding="utf-8") as f:
        for t in json.load(f)["added_tokens"]:
            if t["content"] == bos:
                return t["id"]
    raise SystemExit(f"{model_dir}: bos_token {bos!r} is not an added token")


def main(repo):
    failures, checked = [], 0
    fixtures = os.path.join(repo, "tests", "data", "hf-tiny")
    cases_path = os.path.join(fixtures, "tokenizer_cases.json")
    with open(cases_path, encoding="utf-8") as f:
        cases = json.load(f)
    # The cases were made with the fixtures' tokenizer (they are all one file).
    tok = Tokenizer.from_file(os.path.join(fixtures, "llama", "tokenizer.json"))
    for case in cases:
        got = tok.encode(case["text"])
        checked += 1
        if got != case["ids"]:
            failures.append(f"{cases_path}: {case['text']!r}: reference {got} != HF {case['ids']}")
        if tok.decode(case["ids"]) != case["decoded"]:
            failures.append(f"{cases_path}: decode {case['ids']}: reference "
                            f"{tok.decode(case['ids'])!r} != HF {case['decoded']!r}")
    model_dirs = sorted(glob.glob(os.path.join(fixtures, "*", "golden.json"))) \
        + sorted(glob.glob(os.path.join(repo, "models", "*", "golden.json")))
    for golden in model_dirs:
        model_dir = os.path.dirname(golden)
        tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
        bos = bos_id(model_dir)
        with open(golden, encoding="utf-8") as f:
            prompts = json.load(f)["prompts"]
        for p in prompts:
            got = [bos] + tok.encode(p["text"])
            checked += 1
            if got != p["ids"]:
                failures.append(f"{golden}: {p['text']!r}: reference {got} != HF {p['ids']}")
    rule_tok = Tokenizer.from_file(os.path.join(fixtures, "llama", "tokenizer.json"))
    for text, want in RULE_SPLITS:
        checked += 1
        got = rule_tok.split.split(text)
        if got != want:
            failures.append(f"split rule {text!r}: reference {got} != {want}")
    split_checked = 0
    if pcre2_probe.available():
        path = os.path.join(repo, "models", "tiny-llama-licenses", "tokenizer.json")
        with open(path, encoding="utf-8") as f:
            spec = json.load(f)
        tok = Tokenizer(spec)
        engine = pcre2_probe.Pcre2Regex(spec["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"])
        for text in fuzz_strings.generate([t["content"] for t in spec["added_tokens"]],
                                          spec["model"]["vocab"], 4000, seed=7):
            if PCRE2_ONLY_SPACE in text:
                continue
            split_checked += 1
            ours, theirs = tok.split.split(text), engine.split(text)
            if ours != theirs:
                failures.append(f"split scanner vs PCRE2 on {text!r}: {ours} != {theirs}")
    else:
        print("note: libpcre2-8 not found; the split scanner is checked on the HF ids only")
    for line in failures:
        print("MISMATCH", line)
    print(f"reference vs Hugging Face: {checked} strings, {len(failures)} mismatches "
          f"({len(cases)} tokenizer cases, {len(model_dirs)} golden files); "
          f"split scanner == PCRE2 on {split_checked} fuzz strings")
    return 1 if failures or checked == 0 else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    sys.exit(main(sys.argv[1]))
