"""Differential fuzz test of our tokenizer (libexocore through the Python binding, plus a few
strings through `exo-run --tokenize`) against hf_bpe_reference.py, the independent Python
re-implementation of Hugging Face `tokenizers`.

For every generated string s (fuzz_strings.py, seeded):
  - ids:        our tokenize(s, no BOS) == reference encode(s);
  - round trip: our detokenize(our ids) == s, byte for byte (where an lstrip/rstrip added token
                makes HF itself drop whitespace: == HF's decode of its own ids);
  - decoding:   our detokenize(reference ids) == HF's decode of them (our decoder checked apart
                from our encoder).
Each mismatch is shrunk to a minimal string (characters removed while it still fails) and printed
with both id lists, both tokenizations as text, the reference pre-tokens and how PCRE2 itself
splits the string. Exit status 1 on any mismatch.

usage: fuzz_tokenize.py --model DIR [--model DIR ...] [--flags-from DIR] [--count N] [--seed S]
                        [--exo-run PATH] [--report FILE]
--flags-from DIR adds a synthetic tokenizer: DIR's tokenizer.json plus added tokens that use the
flags no shipped file sets (lstrip, rstrip, single_word, normalized=true), in a temporary model
directory whose other files link to DIR's.
The library comes from EXO_IPEX_LIBRARY (as CTest sets it) or the binding's own search.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "bindings", "python"))

import exo_ipex  # noqa: E402
import fuzz_strings  # noqa: E402
import pcre2_probe  # noqa: E402
from hf_bpe_reference import Tokenizer  # noqa: E402

MAX_REPORTED = 12  # minimal failing strings printed per model and check


def shrink(text, fails):
    """A minimal sub-sequence of text's characters that still fails (greedy chunk removal, then
    single characters, repeated until nothing can go)."""
    chars = list(text)
    chunk = max(1, len(chars) // 2)
    while chunk >= 1:
        i, changed = 0, False
        while i < len(chars):
            trial = chars[:i] + chars[i + chunk:]
            if trial != chars and fails("".join(trial)):
                chars, changed = trial, True
            else:
                i += chunk
        if not changed:
            chunk //= 2
    return "".join(chars)


class Checker:
    def __init__(self, model_dir, runtime):
        self.dir = model_dir
        with open(os.path.join(model_dir, "tokenizer.json"), encoding="utf-8") as f:
            self.spec = json.load(f)
        self.ref = Tokenizer(self.spec)
        self.model = runtime.open_model(model_dir)
        pattern = self.spec["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"]
        self.pcre2 = pcre2_probe.Pcre2Regex(pattern) if pcre2_probe.available() else None

    def ours(self, text):
        return self.model.tokenize(text, add_bos=0)

    def token_texts(self, ids):
        return [self.model.detokenize_bytes([i]).decode("utf-8", "backslashreplace") for i in ids]

    # The three checks, each a predicate "text fails".
    def ids_differ(self, text):
        return self.ours(text) != self.ref.encode(text)

    def round_trip_fails(self, text):
        """decode(encode(s)) == s; where HF itself drops text (the whitespace an lstrip/rstrip
        added token swallows), == what HF's decode gives back instead."""
        return self.model.detokenize_bytes(self.ours(text)) != self.ref.decode_bytes(self.ref.encode(text))

    def decode_of_reference_fails(self, text):
        ref = self.ref.encode(text)
        return self.model.detokenize_bytes(ref) != self.ref.decode_bytes(ref)

    def describe(self, text):
        ours, ref = self.ours(text), self.ref.encode(text)
        lines = [f"    text      {text!r}  (code points {' '.join('U+%04X' % ord(c) for c in text)})",
                 f"    ours      {ours}  {self.token_texts(ours)}",
                 f"    reference {ref}  {self.token_texts(ref)}",
                 f"    reference added-token segments "
                 f"{[(t['content'] if t else None, p) for t, p in self.ref.added.split(text, self.ref.added.raw)]}",
                 f"    reference pre-tokens of the whole text {self.ref.split.split(text)}"]
        if self.pcre2 is not None:
            lines.append(f"    PCRE2 split of the whole text {self.pcre2.split(text)}")
        back = self.model.detokenize_bytes(ours)
        if back != text.encode("utf-8"):
            lines.append(f"    our detokenize(ours) = {back!r}")
        return "\n".join(lines)


def run_checks(checker, strings, report):
    checks = (("ids", checker.ids_differ), ("round trip", checker.round_trip_fails),
              ("decode of reference ids", checker.decode_of_reference_fails))
    failures = 0
    for name, fails in checks:
        failing = [s for s in strings if fails(s)]
        failures += len(failing)
        minimal = []
        for s in failing:
            m = shrink(s, fails)
            if m not in minimal:
                minimal.append(m)
        minimal.sort(key=lambda m: (len(m), m))
        print(f"{checker.dir}: {name}: {len(strings) - len(failing)}/{len(strings)} agree"
              + (f"; {len(minimal)} distinct minimal failing strings" if failing else ""))
        for m in minimal[:MAX_REPORTED]:
            print(checker.describe(m))
        report.append({"model": checker.dir, "check": name, "failing": len(failing),
                       "checked": len(strings),
                       "minimal": [{"text": m, "ours": checker.ours(m), "reference": checker.ref.encode(m)}
                                   for m in minimal]})
    return failures


def cli_strings(added):
    """A handful for exo-run: no NUL (argv cannot hold one), one with a leading dash."""
    return ["Hello, world!", "  leading spaces", "it's THE'LL 1234567890", "tabs\tand\r\nCRLF\n\n",
            "\u4f60\u597d \U0001f44d\U0001f3fd \U0001f468\u200d\U0001f469\u200d\U0001f467",
            "caf\u00e9 cafe\u0301\u00a0\u3000x", "-dash first", added + " x" + added + added + "y",
            " " + added[:-1] + " ", "  \u180ea"]


def run_cli(exo_run, checker):
    """`exo-run --model DIR --tokenize TEXT`: the last line is the JSON id list."""
    bad = same_as_binding = 0
    added = checker.spec["added_tokens"][0]["content"]
    strings = cli_strings(added)
    for text in strings:
        proc = subprocess.run([exo_run, "--model", checker.dir, "--tokenize", text],
                              capture_output=True, timeout=60)
        out = proc.stdout.decode("utf-8", "replace").strip().splitlines()
        got = json.loads(out[-1]) if proc.returncode == 0 and out else None
        want = checker.ref.encode(text)
        same_as_binding += got == checker.ours(text)
        if got != want:
            bad += 1
            print(f"exo-run --tokenize {text!r}: rc {proc.returncode}, printed {got}, reference {want}; "
                  f"stderr {proc.stderr.decode('utf-8', 'replace').strip()[:300]!r}")
    print(f"{checker.dir}: exo-run --tokenize: {len(strings) - bad}/{len(strings)} agree "
          f"(and {same_as_binding}/{len(strings)} print what the binding gives)")
    return bad


# Added tokens with every flag that the shipped tokenizer.json files leave false. "xyz" is a
# single_word token and "yz" a plain one inside it: in "axyz" HF finds "xyz" (leftmost), drops
# it (not a single word) and does not look for "yz" inside it again.
FLAG_TOKENS = [
    {"content": "<mask>", "lstrip": True, "rstrip": False, "single_word": False,
     "normalized": False, "special": True},
    {"content": "[R]", "lstrip": False, "rstrip": True, "single_word": False,
     "normalized": False, "special": True},
    {"content": "xyz", "lstrip": False, "rstrip": False, "single_word": True,
     "normalized": True, "special": False},
    {"content": "yz", "lstrip": False, "rstrip": False, "single_word": False,
     "normalized": True, "special": False},
    {"content": "<both>", "lstrip": True, "rstrip": True, "single_word": False,
     "normalized": False, "special": True},
]


def make_flags_model(source_dir, work_dir):
    """A model directory: source_dir's files copied, its tokenizer.json with FLAG_TOKENS added
    (new ids past the vocab)."""
    with open(os.path.join(source_dir, "tokenizer.json"), encoding="utf-8") as f:
        spec = json.load(f)
    next_id = max(list(spec["model"]["vocab"].values()) + [t["id"] for t in spec["added_tokens"]]) + 1
    for k, tok in enumerate(FLAG_TOKENS):
        spec["added_tokens"].append(dict(tok, id=next_id + k))
    for name in os.listdir(source_dir):
        if name != "tokenizer.json":
            # copied: a model's files may not be links leading outside it
            shutil.copyfile(os.path.join(source_dir, name), os.path.join(work_dir, name))
    with open(os.path.join(work_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(spec, f, ensure_ascii=False)
    return work_dir


def check_bad_utf8(checker):
    """Invalid UTF-8 has no Hugging Face answer (its API takes str); ours must refuse it or
    tokenize it, never crash. Prints what happens."""
    outcomes = []
    for data in (b"\xff", b"abc\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"a\x80b"):
        try:
            outcomes.append(f"{data!r} -> ids {checker.model.tokenize(data, add_bos=0)}")
        except exo_ipex.ExoError as e:
            outcomes.append(f"{data!r} -> refused ({str(e).split(': ')[-1]})")
    print(f"{checker.dir}: invalid UTF-8: " + "; ".join(outcomes))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", default=[], help="model directory (repeatable)")
    ap.add_argument("--flags-from", help="model directory whose tokenizer gets the flag tokens")
    ap.add_argument("--count", type=int, default=3000, help="random strings per model")
    ap.add_argument("--seed", type=int, default=20261127)
    ap.add_argument("--exo-run", help="exo-run binary; also checks a few strings through its CLI")
    ap.add_argument("--report", help="write the minimal failing strings as JSON here")
    args = ap.parse_args()

    print(f"library {exo_ipex.library_path()}")
    if pcre2_probe.available():
        print(f"PCRE2 Unicode {pcre2_probe.unicode_version()}")
    if not args.model and not args.flags_from:
        ap.error("nothing to check: give --model and/or --flags-from")
    rt = exo_ipex.Runtime()
    failures, checked, report = 0, 0, []
    tmp = tempfile.TemporaryDirectory(prefix="exo-tokfuzz-")
    models = list(args.model)
    if args.flags_from:
        models.append(make_flags_model(args.flags_from, tmp.name))
    try:
        for model_dir in models:
            checker = Checker(model_dir, rt)
            added = [t["content"] for t in checker.spec["added_tokens"]]
            strings = fuzz_strings.generate(added, checker.ref.model.vocab, args.count, args.seed)
            checked += len(strings)
            failures += run_checks(checker, strings, report)
            if args.exo_run:
                failures += run_cli(args.exo_run, checker)
            check_bad_utf8(checker)
    finally:
        rt.close()
        tmp.cleanup()
    if args.report:
        with open(args.report, "w", encoding="utf-8") as f:
            json.dump(report, f, ensure_ascii=False, indent=1)
    print(f"tokenizer fuzz: {checked} strings over {len(models)} tokenizers, "
          f"{failures} failing checks")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
