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
        self._live_children = 0    # _Handle children not yet freed (each holds us alive)
        self._free_pending = False
        self._counted = False
        if parent is not None and hasattr(parent, "_children"):
            parent._children.add(self)
            if isinstance(parent, _Handle):
                parent._live_children += 1
                self._counted = True

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
        self._free()

    def _free(self):
        if self._handle:
            getattr(self._lib, self._free_name)(self._handle)
            self._handle = None
        parent = self._parent
        if self._counted:
            self._counted = False
            parent._live_children -= 1
            if parent._free_pending and parent._live_children == 0:
                parent._free_pending = False
                parent._free()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        """Garbage collection of a reference cycle (a traceback's frames holding a runtime and
        its shard, say) finalizes its objects in any order, and clears the weak references of
        `_children` first: a parent finalized before a child it still has waits, and that
        child's free frees it (the C objects go children first, never a parent under a child)."""
        try:
            for child in list(self._children):
                child.close()
            if self._live_children > 0:
                self._free_pending = True
                return
            self._free()
        except Exception:
            pass
