"""docs/exo-ipex.patch, the change EXO needs to select this engine, applies to EXO at b5375f8:
checked with `git apply --check` against the reference excerpts of EXO's files
(../shared/reference/exo-src/), laid out at EXO's own paths (the model cards live in EXO's
resources/inference_model_cards/)."""
import os
import shutil
import subprocess

import pytest

from conftest import REPO

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
def test_patch_offers_ipex_only_on_cards_this_engine_can_serve():
    """The cards that gain "Ipex": dense llama-family checkpoints in bf16 / fp16 (MLX-quantized
    ones need the quantized formats first)."""
    cards = [p for p in touched(PATCH) if p.startswith("resources/inference_model_cards/")]
    assert cards
    for card in cards:
        text = open(os.path.join(EXO_SRC, "model_cards", os.path.basename(card)), encoding="utf-8").read()
        assert 'family = "llama"' in text and ('quantization = "bf16"' in text or 'quantization = "fp16"' in text)
