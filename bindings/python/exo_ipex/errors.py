"""Python exceptions for exo_status codes: each carries the status code, its name
("EXO_ERR_IO") and the detail string the library recorded (per object or per thread)."""
from . import _capi


class ExoError(Exception):
    """A failed call into libexocore."""

    def __init__(self, status, detail="", what=""):
        self.status = int(status)
        self.name = _capi.STATUS_NAMES.get(self.status, f"EXO_STATUS_{self.status}")
        self.detail = detail or ""
        self.what = what
        msg = f"{what}: " if what else ""
        msg += self.name
        if self.detail:
            msg += f": {self.detail}"
        super().__init__(msg)


class InvalidArgument(ExoError, ValueError):
    pass


class NotFound(ExoError, LookupError):
    pass


class IOFailure(ExoError, OSError):
    pass


class FormatError(ExoError, ValueError):
    pass


class OutOfMemory(ExoError, MemoryError):
    pass


class Unsupported(ExoError):
    pass


class NoDevice(ExoError):
    pass


class DeviceLost(ExoError):
    pass


class Aborted(ExoError):
    pass


class BufferTooSmall(ExoError):
    """EXO_ERR_BUFFER_TOO_SMALL: the binding sizes its buffers itself and retries, so this
    reaches callers only if the library's reported size is wrong."""


_BY_STATUS = {
    -1: InvalidArgument, -2: OutOfMemory, -3: OutOfMemory, -4: Unsupported, -7: NoDevice,
    -8: DeviceLost, -11: Aborted, -13: IOFailure, -14: FormatError, -15: NotFound, -16: BufferTooSmall,
}


def error_for(status, detail="", what=""):
    """The most specific exception class for a status."""
    return _BY_STATUS.get(int(status), ExoError)(status, detail, what)


def check(status, detail_fn=None, what=""):
    """Raises the status's exception unless it is EXO_OK (or a positive non-error). detail_fn
    reads the object's last error; the thread's exo_last_error is the fallback."""
    if status >= 0:
        return status
    detail = ""
    if detail_fn is not None:
        detail = _capi.text(detail_fn())
    if not detail:
        detail = _capi.text(_capi.lib().exo_last_error())
    raise error_for(status, detail, what)
