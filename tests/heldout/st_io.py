"""safetensors files and bf16 rounding for the held-out generator (standard library + numpy).

read_safetensors returns float tensors as float32 / float16 / float64 arrays and packed MLX
weights (U32) as uint32; write_safetensors writes tensors already in their storage type."""

import json
import struct

import numpy as np

F32 = np.float32
F64 = np.float64


def bf16_round(a):
    """float32 -> bf16 bits (uint16), round to nearest even (no NaNs in our weights)."""
    u = np.ascontiguousarray(a, dtype=F32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def bf16_to_f32(bits):
    return (bits.astype(np.uint32) << 16).view(F32)


def bf16(a):
    """a rounded to bf16, as float32 values."""
    return bf16_to_f32(bf16_round(a))


_PLAIN = {"F32": F32, "F16": np.float16, "F64": F64, "I32": np.int32, "U32": np.uint32}


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        raw = blob[8 + n + start:8 + n + end]
        dtype = info["dtype"]
        if dtype == "BF16":
            a = bf16_to_f32(np.frombuffer(raw, "<u2"))
        elif dtype in _PLAIN:
            a = np.frombuffer(raw, np.dtype(_PLAIN[dtype]).newbyteorder("<"))
        else:
            raise ValueError(f"{path}: tensor {name}: dtype {dtype} not handled")
        out[name] = a.reshape(info["shape"])
    return out


def read_header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n))


def write_safetensors(path, tensors, metadata=None):
    """tensors: name -> (dtype string, numpy array already in that storage type)."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    chunks, offset = [], 0
    for name in sorted(tensors):
        dtype, arr = tensors[name]
        raw = np.ascontiguousarray(arr).astype(np.asarray(arr).dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for c in chunks:
            f.write(c)


def store(a, dtype):
    """float32 weights -> (safetensors dtype, storage array) for a checkpoint of that dtype."""
    if dtype == "float32":
        return "F32", a.astype(F32)
    if dtype == "bfloat16":
        return "BF16", bf16_round(a)
    if dtype == "float16":
        return "F16", a.astype(np.float16)  # numpy rounds to nearest even
    raise ValueError(dtype)
