/* test_conformance.c - every bundled plugin passes the test kit's conformance suite.
 * The chat's plugins need a database (CHATD_TEST_DB_SOCKET, set by scripts/test);
 * accounts must be the authenticator, and friends, private_chat and groups need it
 * (their "accounts" service) loaded beside them, as in the sample config. The suite of
 * each then also sends its requests to the commands of accounts. */
#include <chatd/testkit.h>

#include <stddef.h>

int main(void)
{
    static const char *const accounts[] = {"plugins.authenticator=accounts", NULL};
    static const char *const friends[] = {"plugins.enable=accounts, friends",
                                          "plugins.authenticator=accounts", NULL};
    static const char *const private_chat[] = {"plugins.enable=accounts, private_chat",
                                               "plugins.authenticator=accounts", NULL};
    static const char *const groups[] = {"plugins.enable=accounts, groups",
                                         "plugins.authenticator=accounts", NULL};
    return chatd_testkit_run_suites(
        chatd_testkit_conformance_suite(CHATD_PLUGIN_DIR "/ping.so", NULL),
        chatd_testkit_conformance_suite(CHATD_PLUGIN_DIR "/accounts.so", accounts),
        chatd_testkit_conformance_suite(CHATD_PLUGIN_DIR "/friends.so", friends),
        chatd_testkit_conformance_suite(CHATD_PLUGIN_DIR "/private_chat.so", private_chat),
        chatd_testkit_conformance_suite(CHATD_PLUGIN_DIR "/groups.so", groups), NULL);
}
