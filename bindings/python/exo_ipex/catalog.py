"""Which of EXO's model cards (resources/inference_model_cards/*.toml: model_id, family,
quantization, ...) this engine can serve, and why not. A card says nothing about tensors, so the
verdict is read from what the card names:

- format: "bf16" / "fp16" and MLX affine "<N>bit" (N 2-6 or 8) run; MXFP4 / MXFP8 / NVFP4 (in the
  quantization field or the model id) and cards without a quantization (the upstream
  checkpoints of Kimi: fp8/int4 block formats) do not;
- architecture: the families of node_info.ARCHITECTURES as dense decoders, and the mixtures of
  experts qwen3_moe, glm4_moe (GLM-4.5/4.6/4.7, not their -Flash: glm4_moe_lite's MLA attention)
  and gpt_oss in every format above (float, and MLX affine: mlx-lm's stacked experts, run packed;
  issue 14; EXO's gpt-oss cards are MXFP4, which card_format refuses). Other mixture-of-experts
  ("-A3B"-style active-parameter ids, DeepSeek, Kimi, MiniMax, GLM-5, Step), hybrid attention
  (Qwen3-Next, Qwen3.5/3.6, Nemotron 3/Nano v2), vision models (-VL) and Gemma 4 are not
  implemented yet."""
import os
import re

try:
    import tomllib
except ImportError:  # Python < 3.11
    tomllib = None

_MOE_FAMILIES = ("deepseek", "kimi", "minimax", "step")
_ACTIVE_PARAMS = re.compile(r"-A\d+(\.\d+)?B", re.IGNORECASE)


def card_format(card):
    """(ok, why) for the card's weight format."""
    q = str(card.get("quantization", ""))
    mid = card.get("model_id", "")
    for fmt in ("mxfp4", "mxfp8", "nvfp4"):
        if fmt in q.lower() or fmt in mid.lower():
            return False, f"format {fmt}"
    if q in ("bf16", "fp16"):
        return True, q
    m = re.fullmatch(r"(\d)bit", q)
    if m:
        bits = int(m.group(1))
        if bits in (2, 3, 4, 5, 6, 8):
            return True, f"MLX affine {bits}-bit"
        return False, f"MLX affine {bits}-bit"
    return False, f"format unknown ('{q}': upstream checkpoint, fp8/int4 blocks)"


def card_architecture(card):
    """(ok, why) for the card's architecture, from its family and model id."""
    family, mid = card.get("family", ""), card.get("model_id", "")
    name = mid.split("/")[-1]
    if family in _MOE_FAMILIES:
        return False, f"architecture {family} (mixture of experts) not yet"
    if family == "gpt-oss":
        return True, "gpt_oss"
    if family == "glm":
        if re.search(r"GLM-4\.[5-7]", name, re.IGNORECASE) and "flash" not in name.lower():
            return True, "glm4_moe"
        if "flash" in name.lower():
            return False, "architecture glm4_moe_lite (MLA attention, mixture of experts) not yet"
        return False, "architecture glm (GLM-5: sparse attention, mixture of experts) not yet"
    if family == "qwen" and re.match(r"Qwen3-", name) and "Next" not in name and "-VL-" not in name \
            and _ACTIVE_PARAMS.search(name):
        # qwen3_moe runs from float and MLX affine checkpoints (issue 14); card_format judges the format.
        return True, "qwen3_moe"
    if _ACTIVE_PARAMS.search(name):
        return False, "architecture MoE (active-parameter model) not yet"
    if family == "nemotron":
        return False, "architecture nemotron-h (hybrid Mamba) not yet"
    if family == "gemma":
        if re.search(r"gemma-[234]", name, re.IGNORECASE):
            return False, "architecture gemma 2/3/4 not yet (gemma 1 only)"
        return True, "gemma"
    if family == "qwen":
        if "-VL-" in name:
            return False, "architecture qwen3-vl (vision) not yet"
        if "Next" in name or re.search(r"Qwen3\.[5-9]", name):
            return False, "architecture qwen3-next / qwen3.5 (hybrid linear attention) not yet"
        if re.match(r"Qwen3-", name):
            return True, "qwen3"
        if re.match(r"Qwen2", name):
            return True, "qwen2"
        return False, "architecture unknown qwen"
    if family == "llama":
        return True, "llama"
    if family in ("mistral", "phi3"):
        return True, family
    return False, f"architecture {family or '?'} not yet"


def card_support(card):
    """(ok, why): the card's reasons joined ("format ...; architecture ...") when it cannot be served."""
    fok, fwhy = card_format(card)
    aok, awhy = card_architecture(card)
    if fok and aok:
        return True, f"{awhy}, {fwhy}"
    return False, "; ".join(w for ok, w in ((fok, fwhy), (aok, awhy)) if not ok)


def read_cards(cards_dir):
    """[(file name, card dict)] of every *.toml in cards_dir, sorted."""
    if tomllib is None:
        raise RuntimeError("tomllib (Python 3.11) is needed to read model cards")
    out = []
    for name in sorted(os.listdir(cards_dir)):
        if name.endswith(".toml"):
            with open(os.path.join(cards_dir, name), "rb") as f:
                out.append((name, tomllib.load(f)))
    return out


def catalog(cards_dir):
    """[(model_id, ok, why)] for every card."""
    return [(card.get("model_id", name), *card_support(card)) for name, card in read_cards(cards_dir)]


if __name__ == "__main__":
    import sys
    rows = catalog(sys.argv[1])
    for mid, ok, why in rows:
        print(f"{'yes' if ok else 'no ':3}  {mid:60}  {why}")
    print(f"{sum(ok for _, ok, _ in rows)} of {len(rows)} cards can be served")
