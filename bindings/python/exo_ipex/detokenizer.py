"""Streaming detokenization through the C library (exo_detokenizer_*): one token in, the text it
completes out, never a split UTF-8 character (the library holds an unfinished one back and
replaces what can never be valid with U+FFFD). Constant work per token, where re-decoding the
whole sequence each step would be quadratic."""
import ctypes as C

from .errors import check
from .model import _Handle


class Detokenizer(_Handle):
    """exo_detokenizer over a model's tokenizer; closed with (or before) the model."""
    _free_name = "exo_detokenizer_destroy"

    def __init__(self, model):
        super().__init__(model)
        h = C.c_void_p()
        check(self._lib.exo_detokenizer_create(model.handle, C.byref(h)), model.last_error,
              "exo_detokenizer_create")
        self._handle = h
        self._text, self._len = C.c_void_p(), C.c_size_t()

    def _piece(self):
        # Always valid UTF-8 by the library's contract; "replace" only guards that contract.
        return C.string_at(self._text, self._len.value).decode("utf-8", "replace") if self._len.value else ""

    def push(self, token):
        """Appends a token; returns the newly completed text (may be "")."""
        check(self._lib.exo_detokenizer_push(self.handle, int(token), C.byref(self._text), C.byref(self._len)),
              None, f"exo_detokenizer_push({token})")
        return self._piece()

    def flush(self):
        """Ends the stream: returns what an unfinished character held (U+FFFD), else ""; the
        detokenizer can then start a new stream."""
        check(self._lib.exo_detokenizer_flush(self.handle, C.byref(self._text), C.byref(self._len)), None,
              "exo_detokenizer_flush")
        return self._piece()
