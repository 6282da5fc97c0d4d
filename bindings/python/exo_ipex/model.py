"""Models, shards and sessions: exo_model, exo_shard, exo_session.

Ownership follows the C API: a session belongs to a shard, a shard to a model, a model to a
runtime. Each Python object keeps its parent alive, and closing a parent closes its children
first, so no handle outlives what it points into. Objects are not thread-safe: use one session
from one thread at a time (different sessions may be used from different threads)."""
import array
import ctypes as C
import dataclasses
import os

from . import _capi
from ._handle import _Handle
from .errors import ExoError, check, error_for

try:  # numpy is optional: without it, outputs are (bytes, shape, dtype)
    import numpy as _np
except ImportError:  # pragma: no cover - Debian's python3 has numpy
    _np = None


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    architecture: str
    path: str
    n_layers: int
    hidden_size: int
    intermediate_size: int
    vocab_size: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    max_position_embeddings: int
    dtype: str
    bos_token_id: int
    eos_token_ids: tuple        # every EOS id: config.json, generation_config.json, tokenizer
    tie_word_embeddings: bool
    adds_bos: bool              # text prompts start with BOS by default (add_bos=-1)
    has_tokenizer: bool


@dataclasses.dataclass(frozen=True)
class ShardInfo:
    start_layer: int
    end_layer: int
    embeds: bool
    has_head: bool
    input_width: int
    output_width: int
    device: int
    plugin: str
    device_name: str
    weight_bytes: int
    max_tokens: int
    max_ctx: int
    kv_dtype: str  # the KV cache's element type: "f32", "bf16" or "f16"
    # A pipeline part's hand-over from the previous part: "peer" (device to device), "host"
    # (through host memory), "" for part 0, a whole shard and tensor-parallel parts.
    input_path: str = ""
    # A shard across devices (devices=...): its parts, each a ShardInfo of one device's layers
    # (empty for a shard on one device).
    parts: tuple = ()

    @property
    def n_parts(self):
        return len(self.parts) or 1


def bos_flag(add_bos):
    """exo_model_tokenize's add_bos from Python: None / -1 -> -1 (the tokenizer's default),
    True / 1 -> 1, False / 0 -> 0."""
    if add_bos is None or (not isinstance(add_bos, bool) and add_bos == -1):
        return -1
    if add_bos in (0, 1):
        return int(add_bos)
    raise error_for(-1, f"add_bos is {add_bos!r}; expected -1 (the tokenizer's default), 0 or 1", "tokenize")


class Model(_Handle):
    """exo_model_open: a Hugging Face model directory (config.json, safetensors, tokenizer)."""
    _free_name = "exo_model_destroy"

    def __init__(self, runtime, path):
        super().__init__(runtime)
        self.runtime = runtime
        h = C.c_void_p()
        path = os.fspath(path)
        check(self._lib.exo_model_open(runtime.handle, _capi.cstr(path, "model path"), C.byref(h)), None,
              f"opening {path}")
        self._handle = h
        self.info = self._info()

    def last_error(self):
        return _capi.text(self._lib.exo_model_last_error(self.handle))

    def _info(self):
        m = _capi.ModelInfo.new()
        check(self._lib.exo_model_get_info(self.handle, C.byref(m)), self.last_error, "exo_model_get_info")
        return ModelInfo(
            architecture=_capi.text(m.architecture), path=_capi.text(m.path), n_layers=m.n_layers,
            hidden_size=m.hidden_size, intermediate_size=m.intermediate_size, vocab_size=m.vocab_size,
            n_heads=m.n_heads, n_kv_heads=m.n_kv_heads, head_dim=m.head_dim,
            max_position_embeddings=m.max_position_embeddings, dtype=_capi.DTYPES.get(m.dtype, str(m.dtype)),
            bos_token_id=m.bos_token_id, eos_token_ids=tuple(m.eos_token_ids[i] for i in range(m.n_eos)),
            tie_word_embeddings=bool(m.tie_word_embeddings), adds_bos=bool(m.adds_bos),
            has_tokenizer=bool(m.has_tokenizer))

    def tokenize(self, text, add_bos=-1):
        """Token ids of UTF-8 text (list of int). add_bos: -1 (or None) as the tokenizer's files
        say (ModelInfo.adds_bos), 1 / True prepends the model's BOS, 0 / False does not."""
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        bos = bos_flag(add_bos)
        cap = len(data) // 4 + 8  # text runs about 4 bytes a token; the library says when it needs more
        n = C.c_size_t()
        for _ in range(2):  # the second try has the exact size the first reported
            ids = (C.c_int32 * max(1, cap))()
            st = self._lib.exo_model_tokenize(self.handle, data, len(data), bos, ids, cap, C.byref(n))
            if st != _capi.EXO_ERR_BUFFER_TOO_SMALL:
                break
            cap = n.value
        check(st, self.last_error, "exo_model_tokenize")
        return list(ids[:n.value])

    def detokenize_bytes(self, ids):
        """The exact bytes of token ids (special tokens as their text)."""
        ids = [int(i) for i in ids]
        arr = (C.c_int32 * max(1, len(ids)))(*ids)
        cap = 16 * len(ids) + 16
        n = C.c_size_t()
        while True:
            buf = C.create_string_buffer(cap)
            check(self._lib.exo_model_detokenize(self.handle, arr, len(ids), buf, cap, C.byref(n)),
                  self.last_error, "exo_model_detokenize")
            if n.value < cap:
                return buf.raw[:n.value]
            cap = n.value + 1

    def detokenize(self, ids):
        """Text of token ids; a token sequence ending inside a UTF-8 character gives U+FFFD."""
        return self.detokenize_bytes(ids).decode("utf-8", "replace")

    def detokenizer(self):
        """A streaming detokenizer over this model's tokenizer (exo_ipex.Detokenizer)."""
        from .detokenizer import Detokenizer
        return Detokenizer(self)

    def load_shard(self, start_layer=0, end_layer=None, **kw):
        return Shard(self, start_layer, end_layer, **kw)


def _quantize_spec(spec):
    """"mlx-q<bits>-g<group>" or (bits, group) -> (bits, group); the core checks the values."""
    if isinstance(spec, str):
        import re
        m = re.fullmatch(r"mlx-q(\d+)-g(\d+)", spec)
        if not m:
            raise ValueError(f"quantize={spec!r}: expected mlx-q<bits>-g<group>, e.g. mlx-q4-g64")
        return int(m.group(1)), int(m.group(2))
    bits, group = spec
    return int(bits), int(group)


class Shard(_Handle):
    """exo_shard_load: the weights of layers [start_layer, end_layer) on one device.

    progress(layers_loaded, layers_total) is called after each layer; return True to cancel
    (the load then raises Aborted). An exception raised by progress cancels the load and is
    re-raised here.

    quantize: quantize a float checkpoint on load to MLX affine (exo_shard_options.quantize_bits
    and quantize_group): "mlx-q4-g64" (bits 2-6 or 8, group 32/64/128) or a (bits, group) pair.

    kv_dtype: the KV cache's element type (exo_shard_options.kv_dtype): "f32", "bf16" or "f16";
    None: EXO_KV_DTYPE, else bf16 where the device takes it. info.kv_dtype says what it runs.

    devices: spread the layer range over several devices as a pipeline (exo_shard_options.devices,
    docs/placement.md): "auto" (every usable GPU when the node has more than one and `device` /
    EXO_DEVICE pins none), or "plugin[:N],plugin[:N],..." / a list of such names. info.parts says
    which layers each device holds; sessions and steps work as on one device.

    tensor_parallel: split every layer over this many of `devices` (exo_shard_options.
    tensor_parallel: heads and MLP columns per device, the all-reduce on the host); 0: off."""
    _free_name = "exo_shard_destroy"

    def __init__(self, model, start_layer=0, end_layer=None, *, device=None, max_tokens=0, max_ctx=0,
                 progress=None, quantize=None, kv_dtype=None, devices=None, tensor_parallel=0):
        super().__init__(model)
        self.model = model
        if end_layer is None:
            end_layer = model.info.n_layers
        if start_layer < 0 or end_layer < 0:
            raise error_for(-1, f"layer range [{start_layer}, {end_layer}) has a negative bound", "exo_shard_load")
        opts = _capi.ShardOptions.new()
        opts.start_layer, opts.end_layer = int(start_layer), int(end_layer)
        self._device = _capi.cstr(device, "device")
        opts.device = self._device
        if devices is not None and not isinstance(devices, str):
            devices = ",".join(devices)
        self._devices = _capi.cstr(devices, "devices")
        opts.devices = self._devices
        opts.tensor_parallel = int(tensor_parallel)
        opts.max_tokens, opts.max_ctx = int(max_tokens), int(max_ctx)
        if quantize is not None:
            opts.quantize_bits, opts.quantize_group = _quantize_spec(quantize)
        if kv_dtype is not None:
            if kv_dtype not in _capi.KV_DTYPES:
                raise error_for(-1, f"kv_dtype {kv_dtype!r}: expects 'f32', 'bf16' or 'f16'", "exo_shard_load")
            opts.kv_dtype = _capi.KV_DTYPES[kv_dtype]
        failure = []

        def on_progress(_user, loaded, total):
            try:
                return 1 if progress(loaded, total) else 0
            except BaseException as e:  # noqa: BLE001 - re-raised after the C call returns
                failure.append(e)
                return 1

        cb = _capi.progress_fn(on_progress) if progress else _capi.progress_fn()
        opts.progress = cb
        h = C.c_void_p()
        st = self._lib.exo_shard_load(model.handle, C.byref(opts), C.byref(h))
        del cb  # the C side holds it only during the call
        if failure:
            raise failure[0]
        check(st, model.last_error, f"loading layers [{start_layer}, {end_layer}) of {model.info.path}")
        self._handle = h
        self.info = self._info()

    def last_error(self):
        return _capi.text(self._lib.exo_shard_last_error(self.handle))

    @staticmethod
    def _info_of(s, parts=()):
        return ShardInfo(
            start_layer=s.start_layer, end_layer=s.end_layer, embeds=bool(s.embeds), has_head=bool(s.has_head),
            input_width=s.input_width, output_width=s.output_width, device=s.device,
            plugin=_capi.text(s.plugin), device_name=_capi.text(s.device_name), weight_bytes=s.weight_bytes,
            max_tokens=s.max_tokens, max_ctx=s.max_ctx,
            kv_dtype={v: k for k, v in _capi.KV_DTYPES.items()}.get(s.kv_dtype, "f32"),
            input_path={_capi.DEVICE_LINK_PEER: "peer", _capi.DEVICE_LINK_HOST: "host"}.get(s.input_path, ""),
            parts=tuple(parts))

    def _info(self):
        s = _capi.ShardInfo.new()
        check(self._lib.exo_shard_get_info(self.handle, C.byref(s)), self.last_error, "exo_shard_get_info")
        parts = []
        for i in range(s.n_parts if s.n_parts > 1 else 0):
            p = _capi.ShardInfo.new()
            check(self._lib.exo_shard_get_part_info(self.handle, i, C.byref(p)), self.last_error,
                  "exo_shard_get_part_info")
            parts.append(self._info_of(p))
        return self._info_of(s, parts)

    def warmup(self):
        check(self._lib.exo_shard_warmup(self.handle), self.last_error, "exo_shard_warmup")

    def session(self, max_ctx=0):
        return Session(self, max_ctx)


def _float_out(count):
    if _np is not None:
        out = _np.empty(count, dtype=_np.float32)
        return out, out.ctypes.data_as(C.POINTER(C.c_float))
    out = (C.c_float * count)()
    return out, C.cast(out, C.POINTER(C.c_float))


def _shape_out(out, rows, width):
    if _np is not None:
        return out.reshape(rows, width)
    return bytes(out), (rows, width), "float32"


def _flags(last_only):
    return _capi.FORWARD_LAST_ONLY if last_only else 0


def _token_input(tokens):
    """(keep-alive, int32 pointer, count) for token ids (a numpy array or a sequence)."""
    if _np is not None and isinstance(tokens, _np.ndarray):
        ids = _np.ascontiguousarray(tokens.reshape(-1), dtype=_np.int32)
        return ids, ids.ctypes.data_as(C.POINTER(C.c_int32)), ids.size
    ids = (C.c_int32 * max(1, len(tokens)))(*[int(t) for t in tokens])
    return ids, C.cast(ids, C.POINTER(C.c_int32)), len(tokens)


def _hidden_input(hidden, n, width_in):
    """(keep-alive, float pointer, rows) for hidden states [n, width_in]: a numpy array, or
    bytes / array('f') of float32."""
    if _np is not None and isinstance(hidden, _np.ndarray):
        keep = _np.ascontiguousarray(hidden, dtype=_np.float32).reshape(-1)
        ptr, total = keep.ctypes.data_as(C.POINTER(C.c_float)), keep.size
    else:
        buf = hidden if isinstance(hidden, array.array) else array.array("f", bytes(hidden))
        keep = (C.c_float * max(1, len(buf))).from_buffer(buf) if len(buf) else (C.c_float * 1)()
        ptr, total = C.cast(keep, C.POINTER(C.c_float)), len(buf)
    if n is None:
        n = total // width_in if width_in else 0
    if n * width_in != total:
        raise error_for(-1, f"hidden states hold {total} floats, not {n} x {width_in}", "exo_session_forward_hidden")
    return keep, ptr, n


def forward_batch(steps):
    """exo_session_forward_batch: one step of several sequences of the same shard, in one call.

    steps: (session, input, last_only) triples; input is token ids on the first shard and
    hidden states [n, hidden_size] on the others. Returns one result per step, in order: the
    output (as Session.forward_tokens gives it), or the ExoError that step failed with. A failing
    step does not stop the others."""
    results, prepared = [], []
    for i, (session, data, last_only) in enumerate(steps):
        try:
            info = session.shard.info
            if info.embeds:
                keep, ptr, n = _token_input(data)
            else:
                keep, ptr, n = _hidden_input(data, None, info.input_width)
            out, out_ptr, rows, width = session._output(n, last_only)
            prepared.append((i, session, info.embeds, keep, ptr, n, last_only, out, out_ptr, rows, width))
            results.append(None)
        except ExoError as e:  # refused here, before the library saw it
            results.append(e)
    if not prepared:
        return results
    entries = (_capi.BatchEntry * len(prepared))()
    for e, (_, session, embeds, _, ptr, n, last_only, _, out_ptr, rows, width) in zip(entries, prepared):
        e.hdr.size, e.hdr.version = C.sizeof(_capi.BatchEntry), _capi.EXO_API_VERSION
        e.session, e.n, e.flags = session.handle, n, _flags(last_only)
        if embeds:
            e.tokens = ptr
        else:
            e.hidden = ptr
        e.out, e.out_count = out_ptr, rows * width
    lib = _capi.lib()
    lib.exo_session_forward_batch(entries, len(prepared))  # each entry carries its own status
    for e, (i, session, _, _, _, _, _, out, _, rows, width) in zip(entries, prepared):
        if e.status < 0:
            results[i] = error_for(e.status, session.last_error(), "exo_session_forward_batch")
        else:
            results[i] = _shape_out(out, rows, width)
    return results


class Session(_Handle):
    """exo_session: one sequence's KV cache on a shard."""
    _free_name = "exo_session_destroy"

    def __init__(self, shard, max_ctx=0):
        super().__init__(shard)
        self.shard = shard
        h = C.c_void_p()
        check(self._lib.exo_session_create(shard.handle, int(max_ctx), C.byref(h)), shard.last_error,
              "exo_session_create")
        self._handle = h

    def last_error(self):
        return _capi.text(self._lib.exo_session_last_error(self.handle))

    @property
    def position(self):
        """Tokens held in the KV cache (the position of the next token)."""
        return self._lib.exo_session_position(self.handle)

    @property
    def kv_bytes(self):
        """Device memory this session's KV cache takes (every position of the shard's max_ctx)."""
        return self._lib.exo_session_kv_bytes(self.handle)

    def reset(self):
        check(self._lib.exo_session_reset(self.handle), self.last_error, "exo_session_reset")

    def truncate(self, n):
        check(self._lib.exo_session_truncate(self.handle, int(n)), self.last_error, "exo_session_truncate")

    def copy_prefix(self, src, n):
        """exo_session_copy_prefix: this session takes the first n positions of src's KV cache
        (another session of the same shard) and continues from position n, as if it had been
        fed src's first n inputs itself; what it held before is dropped, src is unchanged."""
        if not isinstance(src, Session):
            raise TypeError(f"copy_prefix needs a Session, not {type(src).__name__}")
        check(self._lib.exo_session_copy_prefix(self.handle, src.handle, int(n)), self.last_error,
              "exo_session_copy_prefix")

    def forward_tokens(self, tokens, last_only=False):
        """Token ids -> logits [n, vocab] (last shard) or hidden states [n, hidden]; with
        last_only just the last row ([1, width])."""
        keep, ptr, n = _token_input(tokens)
        out, out_ptr, rows, width = self._output(n, last_only)
        check(self._lib.exo_session_forward_tokens(self.handle, ptr, n, _flags(last_only), out_ptr, rows * width),
              self.last_error, "exo_session_forward_tokens")
        del keep
        return _shape_out(out, rows, width)

    def forward_hidden(self, hidden, n=None, last_only=False):
        """Hidden states [n, hidden_size] (float32; a numpy array, or bytes/array('f') with n)
        -> the shard's output, as forward_tokens."""
        keep, ptr, n = _hidden_input(hidden, n, self.shard.info.input_width)
        out, out_ptr, rows, width = self._output(n, last_only)
        check(self._lib.exo_session_forward_hidden(self.handle, ptr, n, _flags(last_only), out_ptr, rows * width),
              self.last_error, "exo_session_forward_hidden")
        del keep
        return _shape_out(out, rows, width)

    def next_token(self, tokens):
        """Greedy decoding without the logits (EXO_FORWARD_ARGMAX): runs the token ids and
        returns the id of the last one's most likely next token (the first largest logit, NaN
        never), picked on the device where its plugin can, so no row of logits comes back."""
        keep, ptr, n = _token_input(tokens)
        pick = C.c_float(0.0)
        check(self._lib.exo_session_forward_tokens(self.handle, ptr, n, _capi.FORWARD_ARGMAX, C.byref(pick), 1),
              self.last_error, "exo_session_forward_tokens")
        del keep
        return int(pick.value)

    def _output(self, n, last_only):
        rows = 1 if last_only else n
        width = self.shard.info.output_width
        out, out_ptr = _float_out(rows * width)
        return out, out_ptr, rows, width

    def generate(self, prompt, **kw):
        """Streams a continuation: see exo_ipex.generation.Generation."""
        from .generation import Generation
        return Generation(self, prompt, **kw)
