"""docs/exo-ipex.patch, the change EXO needs to select this engine, applies to EXO at b5375f8:
checked with `git apply --check` against the reference excerpts of EXO's files
(../shared/reference/exo-src/), laid out at EXO's own paths (the model cards live in EXO's
resources/inference_model_cards/); the cards that gain "Ipex" are those exo_ipex.catalog
says this engine can serve (docs/make_exo_patch_cards.py makes those hunks)."""
import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO
from exo_ipex import catalog

PATCH = os.path.join(REPO, "docs", "exo-ipex.patch")
EXO_SRC = os.path.normpath(os.path.join(REPO, "..", "shared", "reference", "exo-src"))


def touched(patch):
    return sorted({line[len("+++ b/"):].strip() for line in open(patch, encoding="utf-8")
                   if line.startswith("+++ b/")})


@pytest.mark.skipif(not os.path.isdir(EXO_SRC), reason=f"EXO's reference excerpts are not at {EXO_SRC}")
def test_patch_applies_to_exos_files(tmp_path):
    tree = tmp_path / "exo"
    shutil.copytree(os.path.join(EXO_SRC, "src"), tree / "src")
    shutil.copytree(os.path.join(EXO_SRC, "dashboard"), tree / "dashboard")
    shutil.copytree(os.path.join(EXO_SRC, "model_cards"), tree / "resources" / "inference_model_cards")
    paths = touched(PATCH)
    assert "src/exo/worker/runner/bootstrap.py" in paths and "src/exo/shared/types/backends.py" in paths
    assert all((tree / p).exists() for p in paths), [p for p in paths if not (tree / p).exists()]
    run = subprocess.run(["git", "apply", "--check", "-v", PATCH], cwd=tree, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    # and applied, the Python it leaves still parses
    subprocess.run(["git", "apply", PATCH], cwd=tree, check=True)
    for p in paths:
        if p.endswith(".py"):
            compile(open(tree / p, encoding="utf-8").read(), p, "exec")


@pytest.mark.skipif(not os.path.isdir(EXO_SRC), reason=f"EXO's reference excerpts are not at {EXO_SRC}")
def test_patch_offers_ipex_exactly_on_the_cards_catalog_serves():
    """The cards that gain "Ipex" are exactly those exo_ipex.catalog says this engine can serve, each
    hunk only appends "Ipex" to `backends`, and the hunks are what docs/make_exo_patch_cards.py makes
    (run it after changing catalog's verdicts)."""
    cards_dir = os.path.join(EXO_SRC, "model_cards")
    served = {name for name, card in catalog.read_cards(cards_dir) if catalog.card_support(card)[0]}
    prefix = "resources/inference_model_cards/"
    patched = {os.path.basename(p) for p in touched(PATCH) if p.startswith(prefix)}
    hint = "regenerate with: python3 docs/make_exo_patch_cards.py"
    assert patched - served == set(), f"Ipex offered on cards the engine cannot serve; {hint}"
    assert served - patched == set(), f"cards the engine serves lack Ipex; {hint}"
    # every card hunk changes the backends line alone, by appending "Ipex"
    changed = [line for line in open(PATCH, encoding="utf-8").read().split("diff --git ")
               if line.startswith("a/" + prefix)]
    for block in changed:
        minus = [l for l in block.splitlines() if l.startswith("-") and not l.startswith("---")]
        plus = [l for l in block.splitlines() if l.startswith("+") and not l.startswith("+++")]
        assert len(minus) == len(plus) == 1 and minus[0].startswith("-backends = [")
        assert plus[0] == minus[0][:-1].replace("-", "+", 1) + ', "Ipex"]', block
    run = subprocess.run([sys.executable, os.path.join(REPO, "docs", "make_exo_patch_cards.py"), "--check"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr + run.stdout
