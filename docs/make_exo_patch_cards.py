#!/usr/bin/python3
"""Regenerate the model-card hunks of docs/exo-ipex.patch from exo_ipex.catalog's verdicts.

Every card of EXO's catalog that exo_ipex.catalog says this engine can serve gets "Ipex" appended
to its `backends`; the other cards are left alone. The hunks are made by git from EXO's own card
files (the reference excerpts, ../shared/reference/exo-src/model_cards/, which are EXO's
resources/inference_model_cards/ at b5375f8), so they carry the real blob ids; the patch's other
hunks (the Python and dashboard changes) are kept byte for byte.

    python3 docs/make_exo_patch_cards.py            # rewrite docs/exo-ipex.patch
    python3 docs/make_exo_patch_cards.py --check    # exit 1 if the patch is not up to date

Run it after changing exo_ipex.catalog's verdicts (bindings/python/tests/test_exo_patch.py fails
until the patch matches them)."""
import argparse
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "bindings", "python"))

from exo_ipex import catalog  # noqa: E402

PATCH = os.path.join(REPO, "docs", "exo-ipex.patch")
CARDS = os.path.normpath(os.path.join(REPO, "..", "shared", "reference", "exo-src", "model_cards"))
CARDS_IN_EXO = "resources/inference_model_cards/"
BACKENDS = re.compile(r'^(backends\s*=\s*\[)(.*?)(\]\s*)$', re.MULTILINE)


def served_card_files(cards_dir):
    """File names of the cards this engine can serve, sorted."""
    return [name for name, card in catalog.read_cards(cards_dir) if catalog.card_support(card)[0]]


def with_ipex(text, name):
    """The card's text with "Ipex" appended to its backends."""
    m = BACKENDS.search(text)
    if not m:
        raise ValueError(f"{name}: no `backends = [...]` line")
    if '"Ipex"' in m.group(2):
        return text
    inner = m.group(2).rstrip()
    inner = f'{inner}, "Ipex"' if inner else '"Ipex"'
    return text[:m.start()] + m.group(1) + inner + m.group(3) + text[m.end():]


def card_hunks(cards_dir):
    """The `git diff` of EXO's cards, served ones with "Ipex" added (paths as in EXO's tree)."""
    names = served_card_files(cards_dir)
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", HOME=tmp)
        git = lambda *a: subprocess.run(["git", "-c", "core.autocrlf=false", *a], cwd=tmp, env=env,  # noqa: E731
                                        check=True, capture_output=True, text=True).stdout
        git("init", "-q")
        os.makedirs(os.path.join(tmp, CARDS_IN_EXO))
        texts = {}
        for name in names:
            with open(os.path.join(cards_dir, name), encoding="utf-8", newline="") as f:
                texts[name] = f.read()
            with open(os.path.join(tmp, CARDS_IN_EXO, name), "w", encoding="utf-8", newline="") as f:
                f.write(texts[name])
        if names:
            git("add", "--", CARDS_IN_EXO)
        for name in names:
            with open(os.path.join(tmp, CARDS_IN_EXO, name), "w", encoding="utf-8", newline="") as f:
                f.write(with_ipex(texts[name], name))
        return git("diff", "--no-color", "--no-ext-diff", "--", CARDS_IN_EXO) \
            if names else ""


def split_files(patch_text):
    """[(path, block)]: the patch cut at every `diff --git`."""
    blocks = re.split(r"(?m)^(?=diff --git )", patch_text)
    out = []
    for b in blocks:
        if not b:
            continue
        m = re.match(r"diff --git a/(\S+) b/", b)
        if not m:
            raise ValueError("text before the first `diff --git` in the patch")
        out.append((m.group(1), b))
    return out


def regenerate(patch_text, cards_dir):
    """The patch with its card hunks replaced by card_hunks(cards_dir), files in path order."""
    kept = [(p, b) for p, b in split_files(patch_text) if not p.startswith(CARDS_IN_EXO)]
    new = split_files(card_hunks(cards_dir))
    return "".join(b for _, b in sorted(kept + new, key=lambda pb: pb[0]))


def patched_cards(patch_text):
    """File names of the cards the patch touches."""
    return sorted(os.path.basename(p) for p, _ in split_files(patch_text) if p.startswith(CARDS_IN_EXO))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="only say whether the patch is up to date")
    ap.add_argument("--cards", default=CARDS, help="EXO's model cards (default: %(default)s)")
    ap.add_argument("--patch", default=PATCH, help="the patch (default: %(default)s)")
    args = ap.parse_args()
    with open(args.patch, encoding="utf-8", newline="") as f:
        old = f.read()
    new = regenerate(old, args.cards)
    n = len(patched_cards(new))
    if args.check:
        if new != old:
            print(f"{args.patch} is out of date: run python3 docs/make_exo_patch_cards.py", file=sys.stderr)
            return 1
        print(f"{args.patch} is up to date ({n} cards get Ipex)")
        return 0
    if new != old:
        with open(args.patch, "w", encoding="utf-8", newline="") as f:
            f.write(new)
    print(f"{args.patch}: {n} cards get Ipex{'' if new != old else ' (unchanged)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
