"""Deterministic (seeded) tricky strings for tokenizer differential tests: the pieces where
byte-level BPE tokenizers go wrong (regex alternation order, whitespace back-off, contractions,
digit grouping, multi-byte characters, added/special tokens and near misses), alone and glued
together. Code points unassigned in this Python's Unicode (category Cn) are never produced, so
that engines of different Unicode versions cannot disagree on them.
"""
import random
import unicodedata

WORDS = ["hello", "Hello", "world", "The", "the", "quick", "brown", "fox", "GPU", "x", "a", "I",
         "MiXeD", "UPPER", "lower", "Permission", "software", "License", "granted", "free",
         "of", "charge", "to", "any", "person", "WARRANTY", "THE", "is", "it", "foo_bar",
         "snake_case", "camelCase", "don", "won", "http", "www", "com", "na\u00efve", "fa\u00e7ade",
         "caf\u00e9", "\u00fcber", "stra\u00dfe", "\u0130stanbul", "\u03b1\u03b2\u03b3",
         "\u041f\u0440\u0438\u0432\u0435\u0442"]
CONTRACTIONS = ["'s", "'S", "'t", "'T", "'re", "'RE", "'Re", "'ve", "'VE", "'m", "'M", "'ll",
                "'LL", "'Ll", "'lL", "'d", "'D", "'\u017f", "'x", "'", "''", "'sa", "'lla", "'r",
                "'v", "'l", "\u2019s", "`s"]
CJK = ["\u4f60\u597d", "\u4e16\u754c", "\u6f22\u5b57", "\u3053\u3093\u306b\u3061\u306f",
       "\u30ab\u30bf\u30ab\u30ca", "\uff76\uff80\uff76\uff85", "\uc548\ub155\ud558\uc138\uc694",
       "\ud55c\uad6d\uc5b4", "\u3002", "\u3001", "\u300c\u300d", "\U00020000", "\u30fc"]
EMOJI = ["\U0001f642", "\U0001f680", "\U0001f44d\U0001f3fd", "\U0001f44b\U0001f3ff",
         "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466",
         "\U0001f3f3\ufe0f\u200d\U0001f308", "\U0001f1eb\U0001f1f7", "\U0001f1ef\U0001f1f5",
         "\u2764\ufe0f", "1\ufe0f\u20e3", "\u2728", "\U0001f004", "\U0001faa0", "\U0001f9d1\u200d\U0001f4bb"]
MARKS = ["e\u0301", "\u00e9", "n\u0303", "\u00f1", "a\u0308\u0304", "\u0301", "A\u030a", "\u00c5",
         "\u0915\u094d\u0937", "\u0e01\u0e34", "\u05e9\u05c1", "o\u0327\u0301"]
SCRIPTS = ["\u0645\u0631\u062d\u0628\u0627", "\u0628\u0627\u0644\u0639\u0627\u0644\u0645",
           "\u05e9\u05dc\u05d5\u05dd", "\u0928\u092e\u0938\u094d\u0924\u0947",
           "\u0939\u093f\u0928\u094d\u0926\u0940", "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35",
           "\u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22", "\u10e5\u10d0\u10e0", "\u0531\u0562"]
NUMBERS = ["\u0663\u0664", "\u00bd", "\u00b2", "\u216b", "\uff11\uff12\uff13", "\u0967\u0968",
           "\u2460", "\U0001d7d9"]
MATH = ["\u2211", "\u222b", "\u2264", "\u221a2", "\u221e", "\u03c0", "x\u00b2", "\u00b1", "\u2192",
        "\U0001d518\U0001d52b\U0001d526", "\u2200x\u2208\u211d", "\u00d7", "\u00f7", "=", "+", "-"]
FULLWIDTH = ["\uff21\uff22\uff23", "\uff01", "\uff08", "\uff09", "\uff10", "\uff0c", "\uff1f"]
NEWLINES = ["\r\n", "\r", "\n", "\n\n", "\r\n\r\n", "\n\r", " \n", "\t\n", "\n ", "\n\n\n",
            "\r\r", " \r\n ", "\u2028", "\u2029", "\u0085", "\n\u0085", "\u0085\n"]
TABS = ["\t", "\t\t", " \t", "\t "]
UNICODE_SPACES = ["\u00a0", "\u2002", "\u2003", "\u2009", "\u200a", "\u202f", "\u205f", "\u3000",
                  "\u1680", "\u180e", "\u000b", "\u000c", "\u001c", "\u001f", "\u00a0\u00a0",
                  " \u00a0", "\u00a0 ", "\u3000\u3000"]
ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u200e", "\u034f"]
PUNCT = [".", ",", "!!", "...", "?!", '"', "(", ")", "-", "--", "_", "@#$%", "{}", "[]", "<", ">",
         "|", "<|", "|>", "/", "\\", "`", "~", ":", ";", "&", "*", "'", "\u2026", "\u00bf",
         "\u00a7", "\U000f0000", "\ue000", "\x00", "\x01", "\x7f", "\u0080"]


# Where regex engines disagree on \s: runs mixing ASCII and Unicode spaces, newlines, U+180E
# (PCRE2's \s has it, White_Space does not), U+001C..U+001F (str.isspace has them, White_Space
# does not), zero-width characters that are no spaces; then something for \s+(?!\S) to back off
# from.
SPACE_MIX_CHARS = " \t\n\r\u00a0\u180e\u3000\u0085\u2028\u001c\u200b\ufeff\u000b"
SPACE_MIX_TAILS = ["", "a", "x", "\u4f60", "1", "!", "'s", "\u0301", "\U0001f642"]


def special_pieces(added_tokens):
    """The added tokens, and near misses that must not match them."""
    out = []
    for content in added_tokens:
        out += [content, content + content, " " + content, content + " ", content[:-1], content[1:],
                content.upper(), content.replace("|", " |", 1), "<" + content, content + ">",
                content[:len(content) // 2], content[len(content) // 2:]]
        if len(content) > 4:
            out.append(content[:2] + " " + content[2:])
    if len(added_tokens) >= 2:
        out.append(added_tokens[0] + added_tokens[1])
        out.append(added_tokens[0][:-1] + added_tokens[1])  # a near miss running into a real one
    return out


def vocab_pieces(vocab, rng, count):
    """Random vocab entries turned back into text (where their bytes are valid UTF-8)."""
    from hf_bpe_reference import UNICODE_TO_BYTE
    texts = []
    tokens = sorted(vocab)
    for tok in rng.sample(tokens, min(count * 3, len(tokens))):
        try:
            b = bytes(UNICODE_TO_BYTE[c] for c in tok)
            texts.append(b.decode("utf-8"))
        except (KeyError, UnicodeDecodeError):
            continue
        if len(texts) == count:
            break
    return texts


def random_char(rng):
    """An assigned, non-surrogate code point, biased toward the BMP."""
    while True:
        cp = rng.randrange(0x20, 0x3100) if rng.random() < 0.7 else rng.randrange(0x3100, 0x30000)
        ch = chr(cp)
        if unicodedata.category(ch) not in ("Cn", "Cs"):
            return ch


def assigned(text):
    return all(unicodedata.category(c) != "Cn" for c in text)


def generate(added_tokens, vocab, count, seed):
    """count strings (after the fixed single-piece ones), deterministic for a seed."""
    rng = random.Random(seed)
    pools = {
        "word": WORDS, "contraction": CONTRACTIONS, "cjk": CJK, "emoji": EMOJI, "mark": MARKS,
        "script": SCRIPTS, "number": NUMBERS, "math": MATH, "fullwidth": FULLWIDTH,
        "newline": NEWLINES, "tab": TABS, "uspace": UNICODE_SPACES, "zero_width": ZERO_WIDTH,
        "punct": PUNCT, "special": special_pieces(added_tokens),
        "vocab": vocab_pieces(vocab, rng, 200),
    }
    for name, pool in pools.items():
        bad = [p for p in pool if not assigned(p)]
        if bad:
            raise ValueError(f"fuzz pool {name} holds code points unassigned in this Python: {bad!r}")
    kinds = list(pools) + ["digits", "spaces", "space_mix", "random"]
    weights = {"word": 6, "vocab": 6, "spaces": 4, "digits": 3, "special": 3, "punct": 3,
               "contraction": 3, "newline": 3, "space_mix": 3}

    def piece():
        kind = rng.choices(kinds, [weights.get(k, 1) for k in kinds])[0]
        if kind == "digits":
            return "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 10)))
        if kind == "spaces":
            return " " * rng.randint(1, 8)
        if kind == "space_mix":
            run = "".join(rng.choice(SPACE_MIX_CHARS) for _ in range(rng.randint(1, 4)))
            return run + rng.choice(SPACE_MIX_TAILS)
        if kind == "random":
            return "".join(random_char(rng) for _ in range(rng.randint(1, 4)))
        return rng.choice(pools[kind])

    strings = ["", " ", "  ", "\n", "\r\n", "\t"]
    for pool in pools.values():
        strings.extend(pool)
    strings += [str(10 ** k) for k in range(10)] + [" " * k for k in range(1, 9)]
    fixed = len(strings)
    while len(strings) < fixed + count:
        s = "".join(piece() for _ in range(rng.randint(1, 8)))
        r = rng.random()
        if r < 0.1:
            s = " " * rng.randint(1, 3) + s
        elif r < 0.2:
            s = s + " " * rng.randint(1, 3)
        elif r < 0.25:
            s = unicodedata.normalize("NFD", s)
        elif r < 0.3:
            s = unicodedata.normalize("NFC", s)
        strings.append(s)
    return strings
