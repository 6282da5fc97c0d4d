/* utf8.h — strict UTF-8 (as Rust's str): decoding one character, checking a whole text, the
 * maximal ill-formed subpart a replacement character covers, encoding a code point. */
#ifndef EXO_BASE_UTF8_H
#define EXO_BASE_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length of the UTF-8 character at s (1..4); 0 when the bytes can never start a valid
 * character (bad lead, bad continuation, overlong, surrogate, > U+10FFFF); -1 when s[0..n) is
 * a valid but unfinished prefix. *cp gets the code point when the length is > 0. */
int exo_utf8_char(const uint8_t *s, size_t n, uint32_t *cp);

/* Offset of the first invalid byte of s[0..n), or n when all of it is valid UTF-8. */
size_t exo_utf8_check(const uint8_t *s, size_t n);

/* Length of the maximal ill-formed subpart at s (>= 1): the bytes one U+FFFD replaces, as in
 * the Unicode / WHATWG "maximal subpart" practice that Rust's from_utf8_lossy follows. */
size_t exo_utf8_invalid_len(const uint8_t *s, size_t n);

/* Writes cp as UTF-8 into out (4 bytes room); returns its length. */
int exo_utf8_encode(uint32_t cp, char *out);

#endif
