/* GPT-2's byte-level alphabet: every byte gets a printable code point so BPE can work on
 * strings. Printable Latin-1 bytes ('!'..'~', U+00A1..U+00AC, U+00AE..U+00FF) stand for
 * themselves; the other 68 bytes take U+0100, U+0101, ... in byte order (space -> U+0120 "Ġ",
 * newline -> U+010A "Ċ"). The tables are built once, thread-safely. */
#include "tokenizer/tokenizer_internal.h"

#include <pthread.h>

static exo_bytelevel_char byte_to_char[256];
static int16_t char_to_byte[0x144]; /* mapped code points are all below U+0144 */
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static bool maps_to_itself(unsigned b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

static void build_tables(void) {
    for (unsigned i = 0; i < sizeof char_to_byte / sizeof char_to_byte[0]; i++) char_to_byte[i] = -1;
    unsigned next = 256;
    for (unsigned b = 0; b < 256; b++) {
        uint32_t cp = maps_to_itself(b) ? b : next++;
        char utf8[4];
        int n = exo_utf8_encode(cp, utf8);
        byte_to_char[b].utf8[0] = utf8[0];
        byte_to_char[b].utf8[1] = n > 1 ? utf8[1] : 0;
        byte_to_char[b].len = (uint8_t)n;
        char_to_byte[cp] = (int16_t)b;
    }
}

const exo_bytelevel_char *exo_bytelevel_table(void) {
    pthread_once(&tables_once, build_tables);
    return byte_to_char;
}

int exo_bytelevel_byte(uint32_t cp) {
    pthread_once(&tables_once, build_tables);
    if (cp >= sizeof char_to_byte / sizeof char_to_byte[0]) return -1;
    return char_to_byte[cp];
}
