"""exo_ipex: Python binding of exo-ipex's C API (libexocore, through ctypes) and EXO's engine
adapter (exo_ipex.exo_engine). Stdlib only; numpy arrays are returned when numpy is present
(the engine adapter needs numpy, and pyzmq for pipelines)."""
from ._capi import EXO_API_VERSION
from .errors import ExoError, InvalidArgument, NotFound, IOFailure, FormatError, Unsupported, NoDevice, \
    DeviceLost, Aborted, OutOfMemory, BufferTooSmall
from .runtime import Runtime, Device, DeviceReport, PluginInfo, Telemetry, default_model_dir
from .model import Model, Shard, Session, ModelInfo, ShardInfo, forward_batch
from .sampler import Sampler, SamplingParams
from .detokenizer import Detokenizer
from .generation import Generation, GenerationStats, Piece
from .tensor_file import TensorFile


def library_path():
    """Path of the libexocore this process uses (loading it if needed)."""
    from . import _capi
    _capi.lib()
    return _capi.library_path


__all__ = ["EXO_API_VERSION", "ExoError", "InvalidArgument", "NotFound", "IOFailure", "FormatError",
           "Unsupported", "NoDevice", "DeviceLost", "Aborted", "OutOfMemory", "BufferTooSmall", "Runtime",
           "Device", "DeviceReport", "PluginInfo", "Telemetry", "default_model_dir", "Model", "Shard", "Session",
           "ModelInfo", "ShardInfo", "forward_batch", "Sampler", "SamplingParams", "Detokenizer", "Generation",
           "GenerationStats", "Piece", "TensorFile", "library_path"]
