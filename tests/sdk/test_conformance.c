/* test_conformance.c - every bundled plugin passes the test kit's conformance suite.
 * chat needs a database (CHATD_TEST_DB_SOCKET, set by scripts/test) and to be the
 * authenticator, as in the sample config. */
#include <chatd/testkit.h>

#include <stddef.h>

int main(void)
{
    static const char *const chat_settings[] = {"plugins.authenticator=chat", NULL};
    return chatd_testkit_run_suites(
        chatd_testkit_conformance_suite(CHATD_PLUGIN_DIR "/ping.so", NULL),
        chatd_testkit_conformance_suite(CHATD_PLUGIN_DIR "/chat.so", chat_settings), NULL);
}
