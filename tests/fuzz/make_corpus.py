#!/usr/bin/python3
"""Writes the checked-in seed corpus of the fuzz harnesses (tests/fuzz/corpus/<harness>/) from
the repository's own model files, so the seeds can be regenerated and reviewed. Run from
anywhere: /usr/bin/python3 tests/fuzz/make_corpus.py. Deterministic (no clock, fixed seeds).

Seeds are small on purpose (libFuzzer mutates small inputs faster): real headers and indexes
with their tensors shrunk, every fixture config plus the RoPE scaling variants, the fixture
tokenizer (byte-level BPE) and two SentencePiece-style ones, and a few sampler byte strings.
Inputs that once crashed a harness are kept beside them as regress_<what> (not generated here)."""
import json
import os
import random
import struct
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fuzz", "corpus")
HF_TINY = os.path.join(ROOT, "tests", "data", "hf-tiny")
DEFAULT_MODEL = os.path.join(ROOT, "models", "tiny-llama-licenses")


def write(harness, name, data):
    os.makedirs(os.path.join(OUT, harness), exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(OUT, harness, name), "wb") as f:
        f.write(data)


def safetensors(tensors, metadata=None, pad=0):
    """tensors: [(name, dtype, shape)]; data laid out in order, zero bytes."""
    size = {"F32": 4, "F16": 2, "BF16": 2, "I32": 4, "F64": 8}
    header, offset = {}, 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape in tensors:
        n = size[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(header, separators=(",", ":")).encode() + b" " * pad
    return struct.pack("<Q", len(text)) + text + bytes(range(256)) * (offset // 256) + bytes(offset % 256)


def real_header_shrunk(path):
    """A real file's tensor names and dtypes, every shape made [2] (data zeroed)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    meta = header.pop("__metadata__", None)
    return safetensors([(k, v["dtype"], [2]) for k, v in header.items()], meta)


def seeds_safetensors():
    write("safetensors", "llama_f32_names", real_header_shrunk(os.path.join(HF_TINY, "llama", "model.safetensors")))
    write("safetensors", "llama_bf16_names", real_header_shrunk(os.path.join(HF_TINY, "llama-bf16", "model.safetensors")))
    write("safetensors", "all_dtypes", safetensors(
        [("f32", "F32", [2, 3]), ("f16", "F16", [4]), ("bf16", "BF16", [1, 1, 2, 2]), ("i32", "I32", [3])],
        {"format": "pt"}, pad=5))
    write("safetensors", "empty_and_scalar", safetensors([("empty", "F32", [0, 4]), ("scalar", "F32", [])]))
    write("safetensors", "unsupported_dtype", safetensors([("x", "F64", [2])]))
    write("safetensors", "only_metadata", safetensors([], {"a": "b"}))


def seeds_weights_index():
    with open(os.path.join(DEFAULT_MODEL, "model.safetensors.index.json"), "rb") as f:
        write("weights_index", "default_model_index", f.read())
    # The harness's scratch shards: every tensor it holds, one name in the wrong shard, the
    # corrupt shard.
    index = {"metadata": {"total_size": 40}, "weight_map": {
        "model.embed_tokens.weight": "model-00001-of-00003.safetensors",
        "model.layers.0.input_layernorm.weight": "model-00001-of-00003.safetensors",
        "model.layers.2.input_layernorm.weight": "model-00002-of-00003.safetensors",
        "model.layers.5.input_layernorm.weight": "model-00003-of-00003.safetensors",
        "model.norm.weight": "model-00003-of-00003.safetensors",
    }}
    write("weights_index", "scratch_shards", json.dumps(index, indent=1))
    index["weight_map"]["lm_head.weight"] = "model-00002-of-00003.safetensors"
    index["weight_map"]["x.weight"] = "corrupt.safetensors"
    write("weights_index", "misplaced_and_corrupt", json.dumps(index))
    write("weights_index", "outside_dir", json.dumps({"weight_map": {"a": "../a.safetensors", "b": "sub/./b.safetensors"}}))


def seeds_config():
    for arch in sorted(os.listdir(HF_TINY)):
        p = os.path.join(HF_TINY, arch, "config.json")
        if os.path.isfile(p):
            with open(p, "rb") as f:
                write("config", arch, f.read())
    with open(os.path.join(DEFAULT_MODEL, "config.json")) as f:
        base = json.load(f)
    write("config", "default_model", json.dumps(base))
    for p in (base, ):
        p.pop("rope_parameters", None)
    variants = {
        "classic_llama3": {"rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3", "factor": 8.0,
                           "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}},
        "classic_linear": {"rope_theta": 10000.0, "rope_scaling": {"type": "linear", "factor": 2.0}},
        "classic_dynamic": {"rope_scaling": {"type": "dynamic", "factor": 2.0}},
        "yarn_parameters": {"max_position_embeddings": 16384, "rope_parameters": {"rope_type": "yarn",
                            "rope_theta": 10000, "original_max_position_embeddings": 4096, "mscale": 1.0,
                            "mscale_all_dim": 0.5, "beta_fast": 16, "truncate": False}},
        "partial_rotary": {"partial_rotary_factor": 0.5, "rope_parameters": {"rope_type": "default", "rope_theta": 1e6}},
        "sliding_gemma": {"model_type": "gemma", "sliding_window": 64, "query_pre_attn_scalar": 16,
                          "final_logit_softcapping": 30.0, "attn_logit_softcapping": 50.0,
                          "hidden_activation": "gelu_pytorch_tanh", "eos_token_id": [1, 2, 3]},
    }
    for name, extra in variants.items():
        cfg = dict(base)
        cfg.update(extra)
        write("config", name, json.dumps(cfg, indent=1))


SP = "\u2581"


def sentencepiece_tokenizer(metaspace):
    """The tokenizer tests' SentencePiece fixture (tests/tokenizer/tokenizer_fixtures.c)."""
    pieces = [SP, "h", "e", "l", "o", "w", "r", "d", SP + "h", "ll", SP + "he", "llo", SP + "hello",
              SP + "w", "or", SP + "wor", "ld", SP + "world"]
    merges = [SP + " h", "l l", SP + "h e", "ll o", SP + "he llo", SP + " w", "o r", SP + "w or", "l d", SP + "wor ld"]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab["<0x%02X>" % b] = 3 + b
    for i, p in enumerate(pieces):
        vocab[p] = 259 + i
    tok = {"version": "1.0", "added_tokens": [
        {"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True} for i, c in enumerate(["<unk>", "<s>", "</s>"])]}
    if metaspace:
        ms = {"type": "Metaspace", "replacement": SP, "prepend_scheme": "first", "split": True}
        tok.update(normalizer=None, pre_tokenizer=ms, post_processor=None, decoder=ms)
    else:
        tok["normalizer"] = {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": SP}, {"type": "Replace", "pattern": {"String": " "}, "content": SP}]}
        tok["pre_tokenizer"] = None
        tok["post_processor"] = {"type": "TemplateProcessing", "single": [
            {"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}
        tok["decoder"] = {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": SP}, "content": " "}, {"type": "ByteFallback"},
            {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    tok["model"] = {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                    "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True,
                    "ignore_merges": False, "vocab": vocab, "merges": merges}
    return json.dumps(tok, ensure_ascii=False, separators=(",", ":"))


def seeds_tokenizer():
    def read(*p):
        with open(os.path.join(*p), "rb") as f:
            return f.read()
    text = "Hello world! Permission is hereby granted, 123 \u00e9t\u00e9 \U0001F600\n\tdone.".encode()
    d = os.path.join(HF_TINY, "llama")
    write("tokenizer", "bytelevel_full",
          read(d, "tokenizer.json") + b"\0" + read(d, "tokenizer_config.json") + b"\0" +
          read(d, "generation_config.json") + b"\0" + text)
    write("tokenizer", "bytelevel_no_configs", read(d, "tokenizer.json") + b"\0\0\0" + b"a  b\r\n\xe2\x96\x81 <|pad|>")
    write("tokenizer", "sentencepiece_metaspace",
          sentencepiece_tokenizer(True).encode() + b"\0" +
          b'{"bos_token":"<s>","eos_token":"</s>","add_bos_token":false}' + b"\0\0" + b"hello world  hello\xc3\xa9")
    write("tokenizer", "sentencepiece_llama2",
          sentencepiece_tokenizer(False).encode() + b"\0" +
          b'{"bos_token":{"content":"<s>"},"eos_token":"</s>"}' + b"\0" +
          b'{"bos_token_id":1,"eos_token_id":[2,0]}' + b"\0" + b" hello  world\0x </s>")


def seeds_sampler():
    rng = random.Random(17)
    for i, n in enumerate([24, 64, 300, 2000]):
        write("sampler", "random_%d" % i, bytes(rng.randrange(256) for _ in range(n)))
    # vocab 8, greedy, then logits with every special code.
    head = struct.pack("<H", 7) + bytes([1, 0, 0, 0]) + bytes(26)
    codes = [0x7fff, 0x8000, 0x7ffe, 0x7ffd, 0x8001, 0x0100, 0xff00, 0x0000]
    write("sampler", "special_logits", head + b"".join(struct.pack("<H", c) for c in codes))


def main():
    # Files are overwritten, never deleted: reproducers of fixed findings (regress_*) stay.
    seeds_safetensors()
    seeds_weights_index()
    seeds_config()
    seeds_tokenizer()
    seeds_sampler()
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(OUT) for f in fs)
    print("corpus: %d bytes in %s" % (total, OUT), file=sys.stderr)


if __name__ == "__main__":
    main()
