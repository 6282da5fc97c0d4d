/* core/base/clock.h: the one monotonic clock the core times and waits with (generation stats,
 * the isolated probe's deadline, plugins' host->now_ns). */
#include <check.h>
#include <time.h>

#include "check_run.h"

#include "base/clock.h"

START_TEST(a_sleep_is_measured_and_never_runs_backwards) {
    uint64_t before_ns = exo_now_ns(), before_ms = exo_now_ms();
    struct timespec nap = {.tv_sec = 0, .tv_nsec = 30 * 1000000L};
    while (nanosleep(&nap, &nap) != 0) {
    }
    uint64_t after_ns = exo_now_ns(), after_ms = exo_now_ms();
    ck_assert_uint_ge(after_ns - before_ns, 30u * 1000000u);
    /* Whole milliseconds truncate: 30 ms of sleep may read as 29 from two truncated samples. */
    ck_assert_uint_ge(after_ms - before_ms, 29u);
    /* Both units read one clock: each ms reading lies between the ns readings around it. */
    uint64_t later_ns = exo_now_ns();
    ck_assert_uint_le(before_ns / 1000000u, before_ms);
    ck_assert_uint_le(after_ns / 1000000u, after_ms);
    ck_assert_uint_le(after_ms, later_ns / 1000000u);
    uint64_t last = exo_now_ns();
    for (int i = 0; i < 100000; i++) {
        uint64_t now = exo_now_ns();
        ck_assert_uint_ge(now, last);
        last = now;
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("clock");
    TCase *tc = tcase_create("clock");
    tcase_add_test(tc, a_sleep_is_measured_and_never_runs_backwards);
    suite_add_tcase(s, tc);
    return exo_check_run(s, CK_FORK_GETENV);
}
