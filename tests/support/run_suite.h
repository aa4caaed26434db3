/* run_suite.h - the one main() body every Check suite here shares: run it (forking each
 * test, Check's default), and exit non-zero if anything failed. */
#ifndef CHATD_TEST_RUN_SUITE_H
#define CHATD_TEST_RUN_SUITE_H

#include <check.h>
#include <stdlib.h>

static inline int chatd_run_suite(Suite *suite)
{
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
