/* Runs a check suite and turns its verdict into the exit status CTest reads (0 pass, 1 fail).
 * fork: CK_FORK_GETENV (check's default: CK_FORK=no in the environment turns forking off) or
 * CK_FORK where every case must run in its own process (a loader's global state). */
#ifndef EXO_TEST_CHECK_RUN_H
#define EXO_TEST_CHECK_RUN_H

#include <check.h>

static inline int exo_check_run(Suite *suite, enum fork_status fork) {
    SRunner *sr = srunner_create(suite);
    if (fork != CK_FORK_GETENV) srunner_set_fork_status(sr, fork);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

#endif
