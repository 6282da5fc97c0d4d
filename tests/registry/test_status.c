/* Status codes have names and messages, and unknown codes are handled. */
#include <check.h>
#include <string.h>

#include "check_run.h"

#include "base/error.h"
#include "exo.h"

static const exo_status all[] = {EXO_OK, EXO_NOT_READY, EXO_ERR_INVALID_ARG, EXO_ERR_NO_MEMORY,
    EXO_ERR_DEVICE_OOM, EXO_ERR_UNSUPPORTED, EXO_ERR_ABI_MISMATCH, EXO_ERR_PLUGIN_LOAD, EXO_ERR_NO_DEVICE,
    EXO_ERR_DEVICE_LOST, EXO_ERR_BACKEND, EXO_ERR_TIMEOUT, EXO_ERR_ABORTED, EXO_ERR_INTERNAL, EXO_ERR_IO,
    EXO_ERR_FORMAT, EXO_ERR_NOT_FOUND, EXO_ERR_BUFFER_TOO_SMALL};

START_TEST(every_status_has_a_distinct_name_and_message) {
    size_t n = sizeof all / sizeof all[0];
    for (size_t i = 0; i < n; i++) {
        ck_assert_ptr_nonnull(strstr(exo_status_name(all[i]), "EXO_"));
        ck_assert_str_ne(exo_status_str(all[i]), "unknown status code");
        for (size_t k = 0; k < i; k++) ck_assert_str_ne(exo_status_name(all[i]), exo_status_name(all[k]));
    }
}
END_TEST

START_TEST(names_match_the_codes) {
    ck_assert_str_eq(exo_status_name(EXO_OK), "EXO_OK");
    ck_assert_str_eq(exo_status_name(EXO_ERR_DEVICE_LOST), "EXO_ERR_DEVICE_LOST");
    ck_assert_str_eq(exo_status_str(EXO_ERR_ABI_MISMATCH), "plugin ABI mismatch");
}
END_TEST

START_TEST(unknown_codes_are_named_unknown) {
    ck_assert_str_eq(exo_status_name(-12345), "EXO_ERR_UNKNOWN");
    ck_assert_str_eq(exo_status_str(777), "unknown status code");
}
END_TEST

START_TEST(last_error_is_per_thread_and_starts_empty) {
    ck_assert_str_eq(exo_last_error(), "");
}
END_TEST

/* A failure that recorded no detail still replaces an object's last error, with the status's words. */
START_TEST(a_failure_without_detail_replaces_the_old_message) {
    exo_error_slot slot;
    memset(&slot, 0, sizeof slot);
    exo_error_keep(&slot, exo_errorf(EXO_ERR_FORMAT, "old detail from an earlier call"));
    ck_assert_str_eq(slot.message, "old detail from an earlier call");
    exo_error_clear(); /* what each entry point does first */
    ck_assert_int_eq(exo_error_keep(&slot, EXO_ERR_IO), EXO_ERR_IO);
    ck_assert_int_eq(slot.status, EXO_ERR_IO);
    ck_assert_str_eq(slot.message, "EXO_ERR_IO: input/output error");
    ck_assert_str_eq(exo_last_error(), "EXO_ERR_IO: input/output error");
}
END_TEST

int main(void) {
    Suite *s = suite_create("status");
    TCase *tc = tcase_create("status");
    tcase_add_test(tc, every_status_has_a_distinct_name_and_message);
    tcase_add_test(tc, names_match_the_codes);
    tcase_add_test(tc, unknown_codes_are_named_unknown);
    tcase_add_test(tc, last_error_is_per_thread_and_starts_empty);
    tcase_add_test(tc, a_failure_without_detail_replaces_the_old_message);
    suite_add_tcase(s, tc);
    return exo_check_run(s, CK_FORK_GETENV);
}
