"""An independent, pure-Python re-implementation of what a Hugging Face `tokenizer.json` specifies
for byte-level BPE tokenizers of the Llama-3 / Qwen2 family, written from the behaviour of the HF
`tokenizers` library (not from our C tokenizer), so that it can serve as the oracle of a
differential test. Standard library only.

The pipeline of `Tokenizer.encode(text, add_special_tokens=False)`:
  1. AddedVocabulary: added tokens with normalized=false are found in the raw text (Aho-Corasick,
     leftmost-longest, non-overlapping), then the text between them is normalized and the added
     tokens with normalized=true are found in it; single_word / lstrip / rstrip as HF applies them.
  2. the normalizer (if any) on the remaining pieces;
  3. the pre-tokenizer: Split(regex, Isolated) then ByteLevel(add_prefix_space=false,
     use_regex=false), i.e. bytes -> the GPT-2 byte<->unicode alphabet;
  4. the BPE model on every pre-token: characters looked up in the vocab (unknown ones dropped
     when there is no unk_token, as HF does), then merges applied lowest rank first, leftmost
     among equals; with ignore_merges a pre-token found whole in the vocab is taken as is.
The post-processor is not applied (no special tokens are added).

Python's `re` has no \\p{L} / \\p{N}, so the split regex is a hand-written scanner that follows
backtracking-regex semantics (Oniguruma, which HF uses): the first alternative that matches at a
position wins, greedy quantifiers back off as needed.
"""
import json
import unicodedata

# --- character classes -------------------------------------------------------------------------

# \s of Oniguruma for Unicode text (and Rust's char::is_whitespace): the White_Space property.
# Not str.isspace(): that also accepts U+001C..U+001F, which neither Oniguruma nor Rust do.
WHITE_SPACE = frozenset(
    [chr(c) for c in range(0x09, 0x0E)] + [" ", "\u0085", "\u00a0", "\u1680"]
    + [chr(c) for c in range(0x2000, 0x200B)]
    + ["\u2028", "\u2029", "\u202f", "\u205f", "\u3000"])


def is_space(ch):
    return ch in WHITE_SPACE


def is_letter(ch):  # \p{L}
    return unicodedata.category(ch)[0] == "L"


def is_number(ch):  # \p{N}
    return unicodedata.category(ch)[0] == "N"


def is_newline(ch):  # [\r\n]
    return ch == "\r" or ch == "\n"


# (?i:...) with Unicode simple case folding: besides ASCII case, U+017F LATIN SMALL LETTER LONG S
# folds to 's' (CaseFolding.txt: 017F; C; 0073). No other code point folds to d, e, l, m, r, t, v.
_FOLDS_TO = {"s": "sS\u017f", "t": "tT", "r": "rR", "e": "eE", "v": "vV", "m": "mM", "l": "lL",
             "d": "dD"}
_CONTRACTIONS = ("s", "t", "re", "ve", "m", "ll", "d")  # in the pattern's alternation order

# --- the split regex ------------------------------------------------------------------------------

_LLAMA3_PATTERN_HEAD = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|"
_LLAMA3_PATTERN_TAIL = r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
# The number alternative is what distinguishes the family members: Llama-3 groups 1-3 digits,
# Qwen2 takes one.
_NUMBER_ALTERNATIVES = {r"\p{N}{1,3}": 3, r"\p{N}": 1}


class UnsupportedTokenizer(ValueError):
    """tokenizer.json asks for something this reference does not implement (never guessed)."""


class Llama3Split:
    """The Llama-3 pre-tokenizer regex as a scanner. match_at(text, i) returns the end of the
    match that the backtracking regex finds at i, or None."""

    def __init__(self, pattern):
        if not (pattern.startswith(_LLAMA3_PATTERN_HEAD) and pattern.endswith(_LLAMA3_PATTERN_TAIL)):
            raise UnsupportedTokenizer(f"split regex {pattern!r} is not the Llama-3 / Qwen2 pattern")
        middle = pattern[len(_LLAMA3_PATTERN_HEAD):len(pattern) - len(_LLAMA3_PATTERN_TAIL)]
        if middle not in _NUMBER_ALTERNATIVES:
            raise UnsupportedTokenizer(f"split regex number alternative {middle!r} is not supported")
        self.max_digits = _NUMBER_ALTERNATIVES[middle]

    def match_at(self, t, i):
        n = len(t)
        # 1. (?i:'s|'t|'re|'ve|'m|'ll|'d)
        if t[i] == "'":
            for c in _CONTRACTIONS:
                if all(i + 1 + k < n and t[i + 1 + k] in _FOLDS_TO[ch] for k, ch in enumerate(c)):
                    return i + 1 + len(c)
        # 2. [^\r\n\p{L}\p{N}]?\p{L}+  (the optional char taken first; without it the letter
        #    run would have to start at i)
        j = i
        if not is_newline(t[i]) and not is_letter(t[i]) and not is_number(t[i]) \
                and i + 1 < n and is_letter(t[i + 1]):
            j = i + 1
        if is_letter(t[j]):
            while j < n and is_letter(t[j]):
                j += 1
            return j
        # 3. \p{N}{1,max}
        if is_number(t[i]):
            j = i
            while j < n and j - i < self.max_digits and is_number(t[j]):
                j += 1
            return j
        # 4. ' ?[^\s\p{L}\p{N}]+[\r\n]*'
        def other(ch):
            return not is_space(ch) and not is_letter(ch) and not is_number(ch)
        j = i + 1 if (t[i] == " " and i + 1 < n and other(t[i + 1])) else i
        if j < n and other(t[j]):
            while j < n and other(t[j]):
                j += 1
            while j < n and is_newline(t[j]):
                j += 1
            return j
        if not is_space(t[i]):
            return None  # unreachable: every non-space char matched above
        run_end = i
        while run_end < n and is_space(t[run_end]):
            run_end += 1
        # 5. \s*[\r\n]+ : greedy \s* backs off to the last newline of the run; [\r\n]+ takes it
        #    (what follows it in the run is not a newline).
        for k in range(run_end - 1, i - 1, -1):
            if is_newline(t[k]):
                return k + 1
        # 6. \s+(?!\S): the whole run at the end of the text, else the run less its last char
        if run_end == n:
            return run_end
        if run_end - i >= 2:
            return run_end - 1
        # 7. \s+
        return run_end

    def split(self, text):
        """Split(behavior=Isolated, invert=false): every match is a piece and so is every gap."""
        pieces, start, i = [], 0, 0
        while i < len(text):
            end = self.match_at(text, i)
            if end is None:
                i += 1
                continue
            if i > start:
                pieces.append(text[start:i])
            pieces.append(text[i:end])
            start = i = end
        if start < len(text):
            pieces.append(text[start:])
        return pieces


# --- byte-level alphabet -------------------------------------------------------------------------

def bytes_to_unicode():
    """GPT-2's table: printable Latin-1 bytes map to themselves, the rest to U+0100 upwards."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1)) \
        + list(range(ord("\u00ae"), ord("\u00ff") + 1))
    chars = keep[:]
    extra = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(keep, chars)}


BYTE_TO_UNICODE = bytes_to_unicode()
UNICODE_TO_BYTE = {c: b for b, c in BYTE_TO_UNICODE.items()}

# --- normalizers ---------------------------------------------------------------------------------


def make_normalizer(spec):
    if spec is None:
        return None
    kind = spec.get("type")
    if kind in ("NFC", "NFD", "NFKC", "NFKD"):
        return lambda s: unicodedata.normalize(kind, s)
    if kind == "Lowercase":
        return str.lower
    if kind == "Sequence":
        parts = [make_normalizer(p) for p in spec["normalizers"]]

        def run(s):
            for p in parts:
                s = p(s)
            return s
        return run
    if kind == "Prepend":
        return lambda s: spec["prepend"] + s if s else s
    if kind == "Replace" and "String" in spec.get("pattern", {}):
        old, new = spec["pattern"]["String"], spec["content"]
        return lambda s: s.replace(old, new)
    raise UnsupportedTokenizer(f"normalizer {json.dumps(spec)[:120]} is not supported")


# --- added tokens --------------------------------------------------------------------------------

# Other_Alphabetic code points that are not marks (the rest of Other_Alphabetic is Mn/Mc): the
# circled and squared Latin letters.
_OTHER_ALPHABETIC_SYMBOLS = ((0x24B6, 0x24E9), (0x1F130, 0x1F149), (0x1F150, 0x1F169),
                             (0x1F170, 0x1F189))


def _is_word_char(ch):
    """HF's single_word test uses the Rust regex crate's Unicode \\w: Alphabetic (letters, Nl,
    Other_Alphabetic), marks, Nd, Pc and Join_Control. Not No (U+00BD '½' is no word char)."""
    cat = unicodedata.category(ch)
    if cat[0] in "LM" or cat in ("Nd", "Nl", "Pc") or ch in "\u200c\u200d":
        return True
    return any(lo <= ord(ch) <= hi for lo, hi in _OTHER_ALPHABETIC_SYMBOLS)


class AddedVocabulary:
    def __init__(self, tokens):
        self.tokens = tokens  # dicts from tokenizer.json's added_tokens
        self.raw = [t for t in tokens if not t.get("normalized", False)]
        self.normalized = [t for t in tokens if t.get("normalized", False)]

    @staticmethod
    def _leftmost_longest(text, tokens):
        """Aho-Corasick MatchKind::LeftmostLongest, non-overlapping, scanning left to right."""
        matches, i = [], 0
        while i < len(text):
            best = None
            for t in tokens:
                c = t["content"]
                if c and text.startswith(c, i) and (best is None or len(c) > len(best["content"])):
                    best = t
            if best is None:
                i += 1
                continue
            matches.append((i, i + len(best["content"]), best))
            i += len(best["content"])
        return matches

    def split(self, text, tokens):
        """HF find_matches / split_with_indices: [(token or None, piece)] covering text. The
        matches come first, all of them; a single_word match that fails its test is dropped and
        its span is not searched again (Aho-Corasick's iterator has moved past it)."""
        out, offset = [], 0
        for start, stop, tok in self._leftmost_longest(text, tokens):
            if tok.get("single_word", False):
                before_ok = start == 0 or not _is_word_char(text[start - 1])
                after_ok = stop == len(text) or not _is_word_char(text[stop])
                if not (before_ok and after_ok):
                    continue
            if start < offset:
                continue  # an earlier token's rstrip swallowed this match's start
            if tok.get("lstrip", False):
                s = start
                while s > offset and is_space(text[s - 1]):
                    s -= 1
                start = s
            if tok.get("rstrip", False):
                while stop < len(text) and is_space(text[stop]):
                    stop += 1
            if start > offset:
                out.append((None, text[offset:start]))
            out.append((tok, text[start:stop]))
            offset = stop
        if offset < len(text):
            out.append((None, text[offset:]))
        return out


# --- BPE model -----------------------------------------------------------------------------------

class BPE:
    def __init__(self, spec):
        if spec.get("type") != "BPE":
            raise UnsupportedTokenizer(f"model type {spec.get('type')!r} is not BPE")
        for key in ("continuing_subword_prefix", "end_of_word_suffix", "dropout"):
            if spec.get(key):
                raise UnsupportedTokenizer(f"BPE {key}={spec[key]!r} is not supported")
        self.vocab = spec["vocab"]
        self.unk = spec.get("unk_token")
        self.fuse_unk = bool(spec.get("fuse_unk"))
        self.byte_fallback = bool(spec.get("byte_fallback"))
        self.ignore_merges = bool(spec.get("ignore_merges"))
        self.ranks = {}
        for rank, m in enumerate(spec.get("merges", [])):
            a, b = m.split(" ", 1) if isinstance(m, str) else m
            if a + b not in self.vocab:
                raise UnsupportedTokenizer(f"merge {a!r} {b!r}: {a + b!r} is not in the vocab")
            self.ranks[(a, b)] = rank  # a repeated merge keeps its last rank (HashMap collect)

    def _symbols(self, word):
        syms, unk = [], None  # unk: pending (text) of an unknown run
        for ch in word:
            if ch in self.vocab:
                if unk is not None:
                    syms.append(self.unk)
                    unk = None
                syms.append(ch)
                continue
            if self.byte_fallback:
                codes = ["<0x%02X>" % b for b in ch.encode("utf-8")]
                if all(c in self.vocab for c in codes):
                    syms.extend(codes)
                    continue
            if self.unk is not None:
                if unk is not None and not self.fuse_unk:
                    syms.append(self.unk)
                unk = ch
            # no unk_token: HF drops the character
        if unk is not None:
            syms.append(self.unk)
        return syms

    def tokenize(self, word):
        if self.ignore_merges and word in self.vocab:
            return [self.vocab[word]]
        syms = self._symbols(word)
        while len(syms) > 1:
            best = None
            for i in range(len(syms) - 1):
                r = self.ranks.get((syms[i], syms[i + 1]))
                if r is not None and (best is None or r < best[0]):
                    best = (r, i)
            if best is None:
                break
            i = best[1]
            syms[i:i + 2] = [syms[i] + syms[i + 1]]
        return [self.vocab[s] for s in syms]


# --- the tokenizer -------------------------------------------------------------------------------

class Tokenizer:
    def __init__(self, spec):
        self.normalizer = make_normalizer(spec.get("normalizer"))
        self.added = AddedVocabulary(spec.get("added_tokens", []))
        if self.normalizer is not None:  # normalized tokens are sought in their normalized form
            self.added.normalized = [dict(t, content=self.normalizer(t["content"]))
                                     for t in self.added.normalized]
        self.split = self._pre_tokenizer(spec.get("pre_tokenizer"))
        self.model = BPE(spec["model"])
        self.id_to_token = {i: t for t, i in self.model.vocab.items()}
        for t in spec.get("added_tokens", []):
            self.id_to_token[t["id"]] = t["content"]
        self.added_ids = {t["id"] for t in spec.get("added_tokens", [])}

    @classmethod
    def from_file(cls, path):
        with open(path, encoding="utf-8") as f:
            return cls(json.load(f))

    @staticmethod
    def _pre_tokenizer(spec):
        steps = spec.get("pretokenizers", []) if spec and spec.get("type") == "Sequence" else [spec]
        kinds = [s and s.get("type") for s in steps]
        if kinds != ["Split", "ByteLevel"]:
            raise UnsupportedTokenizer(f"pre_tokenizer {kinds} is not Sequence[Split, ByteLevel]")
        split, byte_level = steps
        if split.get("behavior") != "Isolated" or split.get("invert"):
            raise UnsupportedTokenizer(f"Split behaviour {split.get('behavior')}/invert "
                                       f"{split.get('invert')} is not Isolated/false")
        if "Regex" not in split.get("pattern", {}):
            raise UnsupportedTokenizer("Split pattern is not a Regex")
        if byte_level.get("add_prefix_space") or byte_level.get("use_regex"):
            raise UnsupportedTokenizer("ByteLevel with add_prefix_space or use_regex is not supported")
        return Llama3Split(split["pattern"]["Regex"])

    def _encode_piece(self, text):
        ids = []
        for piece in self.split.split(text):
            word = "".join(BYTE_TO_UNICODE[b] for b in piece.encode("utf-8"))
            ids.extend(self.model.tokenize(word))
        return ids

    def encode(self, text):
        """Ids of text, no special tokens added (add_special_tokens=False)."""
        ids = []
        for tok, piece in self.added.split(text, self.added.raw):
            if tok is not None:
                ids.append(tok["id"])
                continue
            if self.normalizer is not None:
                piece = self.normalizer(piece)
            for tok2, piece2 in self.added.split(piece, self.added.normalized):
                if tok2 is not None:
                    ids.append(tok2["id"])
                else:
                    ids.extend(self._encode_piece(piece2))
        return ids

    def decode_bytes(self, ids):
        """The ByteLevel decoder: added tokens as their text, others through the byte table."""
        out = bytearray()
        for i in ids:
            tok = self.id_to_token[i]
            if i in self.added_ids:
                out += tok.encode("utf-8")
            else:
                out += bytes(UNICODE_TO_BYTE[c] for c in tok)
        return bytes(out)

    def decode(self, ids):
        return self.decode_bytes(ids).decode("utf-8", "replace")
