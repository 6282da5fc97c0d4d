"""Safetensors files through the core's reader (exo_tensor_file): golden references, hidden
states saved by a peer."""
import ctypes as C
import os

from . import _capi
from ._handle import _Handle
from .errors import check

try:
    import numpy as _np
except ImportError:  # pragma: no cover
    _np = None

_NP_DTYPES = {0: "float32", 1: "float16", 3: "int32"}


class TensorFile(_Handle):
    _free_name = "exo_tensor_file_destroy"

    def __init__(self, path):
        super().__init__(None)
        h = C.c_void_p()
        path = os.fspath(path)
        check(self._lib.exo_tensor_file_open(_capi.cstr(path, "tensor file path"), C.byref(h)), None, f"opening {path}")
        self._handle = h

    def get(self, name):
        """A copy of the tensor: a numpy array (f32/f16/i32) when numpy is present, else
        (bytes, shape, dtype name)."""
        v = _capi.TensorView()
        check(self._lib.exo_tensor_file_get(self._handle, _capi.cstr(name, "tensor name"), C.byref(v)), None, f"tensor {name}")
        shape = tuple(v.shape[i] for i in range(v.n_dims))
        data = C.string_at(v.data, v.nbytes)
        dt = _NP_DTYPES.get(v.dtype)
        if _np is not None and dt:
            return _np.frombuffer(data, dtype=dt).reshape(shape).copy()
        return data, shape, _capi.DTYPES.get(v.dtype, str(v.dtype))
