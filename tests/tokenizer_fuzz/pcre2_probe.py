"""PCRE2 (the regex engine our C tokenizer uses) through ctypes, for two diagnostic jobs of the
fuzzer: (1) keep out of the generated text code points whose \\p{L} / \\p{N} membership differs
between Python's unicodedata and this PCRE2 build (a Unicode-version difference, not a tokenizer
bug), and (2) show how PCRE2 itself splits a failing string with the pre-tokenizer pattern, so a
mismatch can be pinned on the engine's semantics (PCRE2 vs Oniguruma, which Hugging Face uses)
rather than on our code around it. Absent libpcre2-8, available() is False and both are skipped.
"""
import ctypes
import ctypes.util

PCRE2_UTF = 0x00080000
PCRE2_UCP = 0x00020000
PCRE2_ANCHORED = 0x80000000
PCRE2_NO_UTF_CHECK = 0x40000000


def _load():
    for name in ("libpcre2-8.so.0", ctypes.util.find_library("pcre2-8")):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        lib.pcre2_compile_8.restype = ctypes.c_void_p
        lib.pcre2_compile_8.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint32,
                                        ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_size_t),
                                        ctypes.c_void_p]
        lib.pcre2_match_data_create_from_pattern_8.restype = ctypes.c_void_p
        lib.pcre2_match_data_create_from_pattern_8.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        lib.pcre2_match_8.restype = ctypes.c_int
        lib.pcre2_match_8.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t,
                                      ctypes.c_size_t, ctypes.c_uint32, ctypes.c_void_p,
                                      ctypes.c_void_p]
        lib.pcre2_get_ovector_pointer_8.restype = ctypes.POINTER(ctypes.c_size_t)
        lib.pcre2_get_ovector_pointer_8.argtypes = [ctypes.c_void_p]
        lib.pcre2_config_8.restype = ctypes.c_int
        lib.pcre2_config_8.argtypes = [ctypes.c_uint32, ctypes.c_void_p]
        return lib
    return None


_LIB = _load()


def available():
    return _LIB is not None


def unicode_version():
    """PCRE2_CONFIG_UNICODE_VERSION (e.g. '14.0.0')."""
    buf = ctypes.create_string_buffer(64)
    _LIB.pcre2_config_8(10, buf)  # PCRE2_CONFIG_UNICODE_VERSION
    return buf.value.decode()


class Pcre2Regex:
    def __init__(self, pattern):
        err, off = ctypes.c_int(), ctypes.c_size_t()
        data = pattern.encode("utf-8")
        self.code = _LIB.pcre2_compile_8(data, len(data), PCRE2_UTF | PCRE2_UCP, ctypes.byref(err),
                                         ctypes.byref(off), None)
        if not self.code:
            raise ValueError(f"PCRE2 cannot compile {pattern!r} (error {err.value} at {off.value})")
        self.md = _LIB.pcre2_match_data_create_from_pattern_8(self.code, None)

    def match(self, data, start, anchored=False):
        """(start, end) byte offsets of the first match at or after start, or None."""
        rc = _LIB.pcre2_match_8(self.code, data, len(data), start,
                                PCRE2_ANCHORED if anchored else 0, self.md, None)
        if rc < 0:
            return None
        ov = _LIB.pcre2_get_ovector_pointer_8(self.md)
        return ov[0], ov[1]

    def split(self, text):
        """Split(Isolated) as Hugging Face drives its regex: matches and the gaps between them."""
        data = text.encode("utf-8")
        pieces, prev, pos = [], 0, 0
        while pos <= len(data):
            m = self.match(data, pos)
            if m is None:
                break
            s, e = m
            if e == s:  # empty match: step one character
                pos = s + 1
                while pos < len(data) and data[pos] & 0xC0 == 0x80:
                    pos += 1
                continue
            if s > prev:
                pieces.append(data[prev:s].decode())
            pieces.append(data[s:e].decode())
            prev = pos = e
        if prev < len(data):
            pieces.append(data[prev:].decode())
        return pieces


class ClassProbe:
    """Membership of one character in \\p{L}, \\p{N} and \\s as this PCRE2 sees it."""

    def __init__(self):
        self.classes = {name: Pcre2Regex(rf"^{cls}$") for name, cls in
                        (("L", r"\p{L}"), ("N", r"\p{N}"), ("s", r"\s"))}

    def has(self, name, ch):
        data = ch.encode("utf-8")
        return self.classes[name].match(data, 0, anchored=True) is not None
