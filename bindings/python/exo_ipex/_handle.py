"""The life cycle every wrapped C handle shares: an owner, children closed first, an idempotent
close(), and use as a context manager."""
import weakref

from . import _capi


class _Handle:
    """A C handle with an owner, children closed first, and an idempotent close()."""
    _free_name = None

    def __init__(self, parent):
        self._lib = _capi.lib()
        self._parent = parent
        self._handle = None
        self._children = weakref.WeakSet()
        if parent is not None and hasattr(parent, "_children"):
            parent._children.add(self)

    @property
    def handle(self):
        if not self._handle:
            raise ValueError(f"exo_ipex: {type(self).__name__} is closed")
        return self._handle

    @property
    def closed(self):
        return not self._handle

    def close(self):
        for child in list(self._children):
            child.close()
        if self._handle:
            getattr(self._lib, self._free_name)(self._handle)
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
