"""EXO's model cards (../shared/reference/exo-src/model_cards/*.toml) against what this engine can
serve (exo_ipex.catalog): the list with the reason for every card that cannot be served, and the
count the README states. Skips where the reference excerpts are absent (a clone without ../shared)."""
import os
import re

import pytest

from conftest import REPO
from exo_ipex import catalog

CARDS = os.path.normpath(os.path.join(REPO, "..", "shared", "reference", "exo-src", "model_cards"))
pytestmark = pytest.mark.skipif(not os.path.isdir(CARDS), reason=f"EXO's model cards are not at {CARDS}")


def test_catalog_lists_every_card_with_a_reason():
    rows = catalog.catalog(CARDS)
    assert len(rows) == len([n for n in os.listdir(CARDS) if n.endswith(".toml")])
    for mid, ok, why in rows:
        print(f"{'yes' if ok else 'no ':3}  {mid:60}  {why}")
        assert why, mid
    served = {mid for mid, ok, _ in rows if ok}
    why = {mid: w for mid, _, w in rows}
    # MLX affine and float llama / dense qwen3 checkpoints are served ...
    for mid in ("mlx-community/Llama-3.2-1B-Instruct-4bit", "mlx-community/Meta-Llama-3.1-8B-Instruct-8bit",
                "mlx-community/Meta-Llama-3.1-8B-Instruct-bf16", "mlx-community/Qwen3-0.6B-4bit",
                "mlx-community/Qwen3-30B-A3B-4bit",  # qwen3_moe, MLX-quantized experts (issue 14)
                "mlx-community/GLM-4.5-Air-8bit", "mlx-community/GLM-4.5-Air-bf16",  # glm4_moe
                "mlx-community/GLM-4.7-4bit"):
        if mid in why:
            assert mid in served, (mid, why[mid])
    # ... and the others say why not: format, architecture or both.
    # gpt_oss runs (float, MLX affine); EXO's gpt-oss cards are MXFP4, refused for the format alone.
    expect = {"mlx-community/gpt-oss-20b-MXFP4-Q8": ("format mxfp4",),
              "mlx-community/GLM-4.7-Flash-4bit": ("glm4_moe_lite", "not yet"),
              "mlx-community/GLM-5": ("not yet",),
              "mlx-community/DeepSeek-V3.1-4bit": ("mixture of experts",),
              "mlx-community/MiniMax-M2.7-4bit-mxfp4": ("format mxfp4",),
              "mlx-community/Qwen3-Next-80B-A3B-Instruct-4bit": ("not yet",)}
    for mid, parts in expect.items():
        if mid in why:
            assert mid not in served
            for part in parts:
                assert part in why[mid], (mid, why[mid])


def test_readme_states_the_count():
    rows = catalog.catalog(CARDS)
    served = sum(ok for _, ok, _ in rows)
    text = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    m = re.search(r"serves (\d+) of EXO's (\d+)\s+model cards", text)
    assert m, "README.md must state 'serves N of EXO's M model cards'"
    assert (int(m.group(1)), int(m.group(2))) == (served, len(rows))
