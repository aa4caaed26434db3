/* test_loader.c - the plugin loader against fixture plugins: the good one loads with
 * its options; each broken one is refused with its exact message and nothing crashes. */
#include "commands.h"
#include "config.h"
#include "log.h"
#include "plugin_elf.h"
#include "plugin_loader.h"
#include "server.h"

#include "run_suite.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FIXTURE(name) CHATD_FIXTURE_DIR "/" name ".so"

/* The same for a name known only at run time. */
static const char *FIXTURE_PATH(const char *name)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s.so", CHATD_FIXTURE_DIR, name);
    return path;
}

static struct config cfg;
static struct server *srv;
static char err[2048];

/* A config enabling `enable` (comma list) from the fixture folder, plus `extra` lines. */
static void setup_config(const char *enable, const char *extra)
{
    char path[] = "/tmp/chatd-test-loader-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "[plugins]\ndir = %s\nenable = %s\n%s", CHATD_FIXTURE_DIR, enable, extra);
    fclose(f);
    int rc = config_load(&cfg, path, err, sizeof(err));
    unlink(path);
    ck_assert_msg(rc == 0, "config: %s", err);
    srv = server_new(&cfg);
    ck_assert_ptr_nonnull(srv);
}

static void teardown(void)
{
    server_free(srv);
    srv = NULL;
    config_free(&cfg);
}

/* Load with the config of setup_config and expect a refusal containing `needle`. */
static void assert_load_refused(const char *needle)
{
    ck_assert_int_eq(server_load_plugins(srv, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, needle) != NULL, "message was: %s", err);
    teardown();
}

START_TEST(loader_loads_good_plugin_with_defaults)
{
    setup_config("good", "");
    ck_assert_int_eq(server_load_plugins(srv, err, sizeof(err)), 0);
    ck_assert_uint_eq(srv->n_plugins, 1);
    struct command *c = commands_find(srv, "good_echo");
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(c->plugin->name, "good");
    int64_t repeat = 0;
    int loud = -1;
    ck_assert_int_eq(host_api.option_int(c->plugin, "repeat", &repeat), 0);
    ck_assert_int_eq(repeat, 1);
    ck_assert_int_eq(host_api.option_bool(c->plugin, "loud", &loud), 0);
    ck_assert_int_eq(loud, 0);
    ck_assert_str_eq(host_api.option_string(c->plugin, "greeting"), "hello");
    ck_assert_int_eq(host_api.option_int(c->plugin, "nope", &repeat), CHATD_ENOENT);
    ck_assert_int_eq(host_api.option_int(c->plugin, "loud", &repeat), CHATD_EINVAL);
    teardown();
}
END_TEST

START_TEST(loader_passes_configured_options)
{
    setup_config("good", "[plugin.good]\nrepeat = 7\nloud = yes\ngreeting = hi there\n");
    ck_assert_int_eq(server_load_plugins(srv, err, sizeof(err)), 0);
    struct chatd_plugin *p = srv->plugins[0];
    int64_t repeat = 0;
    int loud = 0;
    host_api.option_int(p, "repeat", &repeat);
    host_api.option_bool(p, "loud", &loud);
    ck_assert_int_eq(repeat, 7);
    ck_assert_int_eq(loud, 1);
    ck_assert_str_eq(host_api.option_string(p, "greeting"), "hi there");
    teardown();
}
END_TEST

START_TEST(loader_refuses_unknown_plugin_option)
{
    setup_config("good", "[plugin.good]\nrepeat = 2\ncolour = red\n");
    assert_load_refused(":6: unknown key 'colour' in [plugin.good] (it knows: greeting, "
                        "repeat, loud)");
}
END_TEST

START_TEST(loader_refuses_plugin_option_out_of_range)
{
    setup_config("good", "[plugin.good]\nrepeat = 11\n");
    assert_load_refused(":5: [plugin.good] repeat: 11 is out of range [1, 10]");
}
END_TEST

START_TEST(loader_refuses_plugin_string_option_too_long)
{
    setup_config("good", "[plugin.good]\ngreeting = a greeting far too long\n");
    assert_load_refused(":5: [plugin.good] greeting: longer than 16 bytes");
}
END_TEST

START_TEST(loader_refuses_wrong_major)
{
    char expected[300];
    snprintf(expected, sizeof(expected),
             "wrong_major.so was built for chatd plugin ABI %d.0, but this chatd provides ABI "
             "%d.%d: rebuild the plugin against this chatd's <chatd/plugin.h>, or run a chatd "
             "with ABI %d.x",
             CHATD_ABI_MAJOR + 1, CHATD_ABI_MAJOR, CHATD_ABI_MINOR, CHATD_ABI_MAJOR + 1);
    setup_config("wrong_major", "");
    assert_load_refused(expected);
}
END_TEST

START_TEST(loader_loads_a_plugin_built_for_abi_1_0)
{
    setup_config("abi_1_0", "");
    ck_assert_msg(server_load_plugins(srv, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(srv->n_plugins, 1);
    teardown();
}
END_TEST

/* What the version gate of a host of ABI 1.<host_minor> says of fixture `name`. */
static int gate_of_host(const char *name, uint32_t host_minor)
{
    struct elf_plugin *ep;
    ck_assert_msg(elf_plugin_open(FIXTURE_PATH(name), &ep, err, sizeof(err)) == 0, "%s", err);
    uint32_t major, minor, size, jansson;
    elf_plugin_versions(ep, &major, &minor, &size, &jansson);
    elf_plugin_close(ep);
    return plugin_version_gate(name, major, minor, size, jansson, host_minor, err, sizeof(err));
}

START_TEST(loader_loads_plugins_built_for_1_1_and_built_for_1_2_needing_1_1)
{
    setup_config("old_1_1, needs_1_1", "");
    ck_assert_msg(server_load_plugins(srv, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(srv->n_plugins, 2);
    ck_assert_uint_eq(PLUGIN_BUILT_MINOR(srv->plugins[0]), 1);
    ck_assert_ptr_null(srv->plugins[0]->instance);
    ck_assert_uint_eq(srv->plugins[1]->desc->abi_minor, 1);
    ck_assert_uint_eq(PLUGIN_BUILT_MINOR(srv->plugins[1]), CHATD_ABI_MINOR);
    /* On this host the 1.2 plugin found instance_set and used it. */
    ck_assert_ptr_nonnull(srv->plugins[1]->instance);
    ck_assert_ptr_nonnull(commands_find(srv, "old_echo"));
    ck_assert_ptr_nonnull(commands_find(srv, "needs_probe"));
    teardown();
}
END_TEST

START_TEST(a_1_1_host_takes_what_needs_1_1_and_refuses_what_needs_1_2)
{
    ck_assert_int_eq(gate_of_host("old_1_1", 1), 0);
    ck_assert_int_eq(gate_of_host("needs_1_1", 1), 0);
    ck_assert_int_eq(gate_of_host("abi_1_0", 1), 0);
    ck_assert_int_eq(gate_of_host("good", 1), -1);
    /* good is built for this header's minor (1.2 or newer). */
    char want[96];
    snprintf(want, sizeof(want),
             "good needs chatd plugin ABI 1.%d, but this chatd provides ABI 1.1", CHATD_ABI_MINOR);
    ck_assert_msg(strstr(err, want) != NULL, "%s", err);
    ck_assert_int_eq(gate_of_host("good", CHATD_ABI_MINOR), 0);
}
END_TEST

START_TEST(loader_refuses_other_abi_without_running_its_code)
{
    char mark[] = "/tmp/chatd-loader-mark-XXXXXX";
    int fd = mkstemp(mark);
    ck_assert_int_ge(fd, 0);
    close(fd);
    unlink(mark);
    setenv("CHATD_FIXTURE_MARK", mark, 1);
    struct chatd_plugin *p;
    ck_assert_int_eq(plugin_open(FIXTURE("wrong_major"), NULL, &p, err, sizeof(err)), -1);
    ck_assert_int_eq(plugin_open(FIXTURE("newer_minor"), NULL, &p, err, sizeof(err)), -1);
    char out[4096];
    FILE *f = fmemopen(out, sizeof(out), "w");
    plugin_describe(FIXTURE("wrong_major"), f);
    fclose(f);
    ck_assert_msg(access(mark, F_OK) != 0, "the refused plugin's constructor ran");
    unsetenv("CHATD_FIXTURE_MARK");
}
END_TEST

START_TEST(loader_refuses_newer_minor)
{
    char expected[300];
    snprintf(expected, sizeof(expected),
             "newer_minor.so needs chatd plugin ABI %d.%d, but this chatd provides ABI %d.%d: "
             "upgrade chatd, or use a build of the plugin for ABI %d.%d or older",
             CHATD_ABI_MAJOR, CHATD_ABI_MINOR + 1, CHATD_ABI_MAJOR, CHATD_ABI_MINOR,
             CHATD_ABI_MAJOR, CHATD_ABI_MINOR);
    setup_config("newer_minor", "");
    assert_load_refused(expected);
}
END_TEST

START_TEST(loader_refuses_object_without_descriptor)
{
    setup_config("no_descriptor", "");
    assert_load_refused("no_descriptor.so has no 'chatd_plugin' symbol: it is not a chatd "
                        "plugin, or it was built without CHATD_PLUGIN_DEFINE");
}
END_TEST

START_TEST(loader_refuses_unresolved_symbol)
{
    setup_config("unresolved", "");
    assert_load_refused("undefined symbol: chatd_fixture_missing_function");
}
END_TEST

START_TEST(loader_refuses_missing_file)
{
    setup_config("absent", "");
    assert_load_refused("plugin 'absent': cannot load plugin " CHATD_FIXTURE_DIR
                        "/absent.so: No such file or directory");
}
END_TEST

START_TEST(loader_refuses_failing_init_with_its_message)
{
    setup_config("good, init_fails", "");
    assert_load_refused(":3: plugin 'init_fails': init failed: cannot reach the moon (invalid "
                        "argument)");
}
END_TEST

START_TEST(loader_refuses_duplicate_command_naming_both)
{
    setup_config("good, dup_command", "");
    assert_load_refused("command 'good_echo' is registered by both plugin 'good' and plugin "
                        "'dup_command': disable one of them in [plugins] enable");
}
END_TEST

START_TEST(loader_refuses_name_mismatch)
{
    struct chatd_plugin *p;
    ck_assert_int_eq(plugin_open(FIXTURE("good"), "other", &p, err, sizeof(err)), -1);
    ck_assert_str_eq(err, FIXTURE("good") " calls itself 'good', but was enabled as 'other'");
    ck_assert_ptr_null(p);
}
END_TEST

START_TEST(loader_allows_registration_only_during_init)
{
    setup_config("good", "");
    ck_assert_int_eq(server_load_plugins(srv, err, sizeof(err)), 0);
    static const struct chatd_command late = {.name = "late"};
    ck_assert_int_eq(host_api.register_command(srv->plugins[0], &late), CHATD_ESTATE);
    ck_assert_ptr_null(commands_find(srv, "late"));
    teardown();
}
END_TEST

START_TEST(loader_unregisters_commands_on_close)
{
    setup_config("good", "");
    ck_assert_int_eq(server_load_plugins(srv, err, sizeof(err)), 0);
    plugin_close(srv->plugins[0]);
    srv->n_plugins = 0;
    ck_assert_ptr_null(commands_find(srv, "good_echo"));
    teardown();
}
END_TEST

/* Run plugin_describe into a string. */
static int describe(const char *path, char *out, size_t len)
{
    FILE *f = fmemopen(out, len, "w");
    int rc = plugin_describe(path, f);
    fclose(f);
    return rc;
}

START_TEST(check_plugin_prints_descriptor_and_options)
{
    char out[4096];
    ck_assert_int_eq(describe(FIXTURE("good"), out, sizeof(out)), 0);
    ck_assert_ptr_nonnull(strstr(out, "name:          good\n"));
    ck_assert_ptr_nonnull(strstr(out, "version:       2.3.4\n"));
    ck_assert_ptr_nonnull(strstr(out, "migrations:    0\n"));
    ck_assert_ptr_nonnull(strstr(out, "repeat"));
    ck_assert_ptr_nonnull(strstr(out, "range [1, 10]"));
    ck_assert_ptr_nonnull(strstr(out, "loadable:      yes\n"));
}
END_TEST

START_TEST(check_plugin_counts_migrations)
{
    char out[4096];
    ck_assert_int_eq(describe(FIXTURE("dbprobe"), out, sizeof(out)), 0);
    ck_assert_ptr_nonnull(strstr(out, "migrations:    2\n"));
}
END_TEST

START_TEST(loader_refuses_migrations_without_database)
{
    setup_config("dbprobe", "");
    assert_load_refused(":3: plugin 'dbprobe': it has schema migrations, so it needs [database] "
                        "enable = yes");
}
END_TEST

START_TEST(check_plugin_says_why_not_loadable)
{
    char out[4096];
    ck_assert_int_eq(describe(FIXTURE("wrong_major"), out, sizeof(out)), 1);
    char abi_line[100];
    snprintf(abi_line, sizeof(abi_line), "abi:           %d.0 (this chatd: %d.%d)\n",
             CHATD_ABI_MAJOR + 1, CHATD_ABI_MAJOR, CHATD_ABI_MINOR);
    ck_assert_ptr_nonnull(strstr(out, abi_line));
    ck_assert_ptr_nonnull(strstr(out, "loadable:      no: "));
    ck_assert_ptr_nonnull(strstr(out, "was built for chatd plugin ABI 2.0"));
    ck_assert_int_eq(describe(FIXTURE("no_descriptor"), out, sizeof(out)), 1);
    ck_assert_ptr_nonnull(strstr(out, "loadable:      no: "));
}
END_TEST

static Suite *loader_suite(void)
{
    Suite *s = suite_create("loader");
    TCase *tc = tcase_create("loader");
    tcase_add_test(tc, loader_loads_good_plugin_with_defaults);
    tcase_add_test(tc, loader_passes_configured_options);
    tcase_add_test(tc, loader_refuses_unknown_plugin_option);
    tcase_add_test(tc, loader_refuses_plugin_option_out_of_range);
    tcase_add_test(tc, loader_refuses_plugin_string_option_too_long);
    tcase_add_test(tc, loader_refuses_wrong_major);
    tcase_add_test(tc, loader_loads_a_plugin_built_for_abi_1_0);
    tcase_add_test(tc, loader_refuses_newer_minor);
    tcase_add_test(tc, loader_loads_plugins_built_for_1_1_and_built_for_1_2_needing_1_1);
    tcase_add_test(tc, a_1_1_host_takes_what_needs_1_1_and_refuses_what_needs_1_2);
    tcase_add_test(tc, loader_refuses_other_abi_without_running_its_code);
    tcase_add_test(tc, loader_refuses_object_without_descriptor);
    tcase_add_test(tc, loader_refuses_unresolved_symbol);
    tcase_add_test(tc, loader_refuses_missing_file);
    tcase_add_test(tc, loader_refuses_failing_init_with_its_message);
    tcase_add_test(tc, loader_refuses_duplicate_command_naming_both);
    tcase_add_test(tc, loader_refuses_name_mismatch);
    tcase_add_test(tc, loader_allows_registration_only_during_init);
    tcase_add_test(tc, loader_unregisters_commands_on_close);
    tcase_add_test(tc, check_plugin_prints_descriptor_and_options);
    tcase_add_test(tc, check_plugin_says_why_not_loadable);
    tcase_add_test(tc, check_plugin_counts_migrations);
    tcase_add_test(tc, loader_refuses_migrations_without_database);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    log_configure(CHATD_LOG_ERROR, 0, "test");
    return chatd_run_suite(loader_suite());
}
