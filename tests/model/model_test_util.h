/* Helpers for the model-loading tests: scratch directories and hand-made (often malformed)
 * safetensors files, written at test time so each bad case sits next to its assertion. */
#ifndef EXO_MODEL_TEST_UTIL_H
#define EXO_MODEL_TEST_UTIL_H

#include <check.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"

static int mtu_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

/* A fresh directory under /tmp; removed by mtu_rmdir. */
static inline char *mtu_tmpdir(void) {
    char *dir = strdup("/tmp/exo-model-test-XXXXXX");
    ck_assert_ptr_nonnull(dir);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    return dir;
}

static inline void mtu_rmdir(char *dir) {
    nftw(dir, mtu_rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

/* dir/name in a static buffer (one at a time is enough for these tests). */
static inline const char *mtu_path(const char *dir, const char *name) {
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", dir, name);
    return buf;
}

static inline void mtu_write(const char *path, const void *bytes, size_t n) {
    FILE *fp = fopen(path, "wb");
    ck_assert_ptr_nonnull(fp);
    ck_assert_uint_eq(fwrite(bytes, 1, n, fp), n);
    fclose(fp);
}

/* A safetensors file: little-endian header_len (as given, so lies are possible), the header
 * text, then data_len bytes of data (byte i = i & 0xff). */
static inline void mtu_write_st_raw(const char *path, uint64_t header_len, const char *header,
                                    size_t data_len) {
    size_t hl = strlen(header);
    size_t n = 8 + hl + data_len;
    unsigned char *buf = malloc(n);
    ck_assert_ptr_nonnull(buf);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(header_len >> (8 * i));
    memcpy(buf + 8, header, hl);
    for (size_t i = 0; i < data_len; i++) buf[8 + hl + i] = (unsigned char)i;
    mtu_write(path, buf, n);
    free(buf);
}

static inline void mtu_write_st(const char *path, const char *header, size_t data_len) {
    mtu_write_st_raw(path, strlen(header), header, data_len);
}

/* Asserts the status and that this thread's error message mentions every given string. */
#define mtu_assert_error(st, want, ...)                                                        \
    do {                                                                                       \
        exo_status got_ = (st);                                                                \
        const char *parts_[] = {__VA_ARGS__};                                                  \
        ck_assert_msg(got_ == (want), "status %d, want %d (%s)", got_, (want),                \
                      exo_error_message());                                                    \
        for (size_t i_ = 0; i_ < sizeof parts_ / sizeof parts_[0]; i_++)                       \
            ck_assert_msg(strstr(exo_error_message(), parts_[i_]) != NULL,                     \
                          "message \"%s\" lacks \"%s\"", exo_error_message(), parts_[i_]);     \
    } while (0)

#define MTU_MAIN(suite_fn)                                                                     \
    int main(void) {                                                                           \
        SRunner *sr = srunner_create(suite_fn());                                              \
        srunner_run_all(sr, CK_NORMAL);                                                        \
        int failed = srunner_ntests_failed(sr);                                                \
        srunner_free(sr);                                                                      \
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;                                           \
    }

#endif
