"""exo_ipex: Python binding of exo-ipex's C API (libexocore, through ctypes) and EXO's engine
adapter (exo_ipex.exo_engine). Stdlib only; numpy arrays are returned when numpy is present."""
from ._capi import EXO_ABI_VERSION
from .errors import ExoError, InvalidArgument, NotFound, IOFailure, FormatError, Unsupported, NoDevice, \
    DeviceLost, Aborted, OutOfMemory, BufferTooSmall
from .runtime import Runtime, Device, DeviceReport, PluginInfo, Telemetry, default_model_dir
from .model import Model, Shard, Session, ModelInfo, ShardInfo
from .generation import Generation, GenerationStats, Piece
from .tensor_file import TensorFile


def library_path():
    """Path of the libexocore this process uses (loading it if needed)."""
    from . import _capi
    _capi.lib()
    return _capi.library_path


__all__ = ["EXO_ABI_VERSION", "ExoError", "InvalidArgument", "NotFound", "IOFailure", "FormatError",
           "Unsupported", "NoDevice", "DeviceLost", "Aborted", "OutOfMemory", "BufferTooSmall", "Runtime", "Device",
           "DeviceReport", "PluginInfo", "Telemetry", "default_model_dir", "Model", "Shard", "Session",
           "ModelInfo", "ShardInfo", "Generation", "GenerationStats", "Piece", "TensorFile", "library_path"]
