/* test_reload.c - black-box tests of live reload (SIGHUP and the admin listener's POST
 * /reload) on the real chatd binary: a plugin upgraded on disk, enabled, disabled or
 * reconfigured while clients stay connected; bad configs and refused plugins that change
 * nothing; the chat plugin reloaded under logged-in users and under a steady stream of
 * messages (with a real MariaDB); and --check-plugin on the ABI fixtures.
 *
 * Plugins are installed the way docs/plugins.md tells operators to: copied next to the
 * target and renamed over it, so the file chatd reads is always whole. */
#include "chatd_proc.h"
#include "ws_client.h"
#include "client.h"
#include "../db/db_test_env.h"

#include <chatd/plugin.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RELOAD_TIMEOUT_MS 15000

static struct chatd_proc srv;
static char plugin_dir[PATH_MAX];
static char conf_path[PATH_MAX + 32];
static struct config_database db;
static int have_db;

/* ---- files ---- */

/* Copy src to dst, in place (same inode) or through a new file renamed over it. */
static void copy_file(const char *src, const char *dst, int in_place)
{
    char tmp[PATH_MAX + 16];
    snprintf(tmp, sizeof(tmp), "%s.new", dst);
    int in = open(src, O_RDONLY);
    ck_assert_msg(in >= 0, "cannot open %s: %s", src, strerror(errno));
    int out = open(in_place ? dst : tmp, O_WRONLY | O_CREAT | O_TRUNC, 0755);
    ck_assert_msg(out >= 0, "cannot write %s: %s", in_place ? dst : tmp, strerror(errno));
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof(buf))) > 0)
        ck_assert_int_eq(write(out, buf, (size_t)n), n);
    close(in);
    close(out);
    if (!in_place)
        ck_assert_msg(rename(tmp, dst) == 0, "rename to %s: %s", dst, strerror(errno));
}

/* Install plugin file `src` as NAME.so in the test's plugin folder. */
static void install(const char *src, const char *name)
{
    char dst[PATH_MAX + 64];
    snprintf(dst, sizeof(dst), "%s/%s.so", plugin_dir, name);
    copy_file(src, dst, 0);
}

/* The chat's plugins, each as NAME.so. */
static void install_chat(void)
{
    static const char *const chat[] = {"accounts", "friends", "private_chat", "groups"};
    for (size_t i = 0; i < sizeof(chat) / sizeof(chat[0]); i++) {
        char src[PATH_MAX];
        snprintf(src, sizeof(src), "%s/%s.so", CHATD_PLUGIN_DIR, chat[i]);
        install(src, chat[i]);
    }
}

static void write_conf(const char *text)
{
    FILE *f = fopen(conf_path, "w");
    ck_assert_msg(f != NULL, "cannot write %s", conf_path);
    fputs(text, f);
    fclose(f);
}

/* A config of [plugins] with `enable` and `more` lines after it. */
static void write_plugins_conf(const char *enable, const char *more)
{
    char text[8192];
    snprintf(text, sizeof(text),
             "; reload test\n"
             "[log]\n"
             "level = info\n"
             "[plugins]\n"
             "dir = %s\n"
             "enable = %s\n"
             "%s",
             plugin_dir, enable, more ? more : "");
    write_conf(text);
}

/* ---- the server ---- */

/* start, with the [web] listener on a free port when `web`. */
static void start_with(const char *enable, const char *more, const char *const *sets, int web)
{
    char dir[PATH_MAX];
    ck_assert_int_eq(chatd_tmpdir_make(dir, sizeof(dir)), 0);
    snprintf(plugin_dir, sizeof(plugin_dir), "%s", dir);
    snprintf(conf_path, sizeof(conf_path), "%s/reload.conf", dir);
    install(CHATD_FIXTURE_DIR "/ping.so", "ping");
    install(CHATD_FIXTURE_DIR "/versioned_v1.so", "versioned");
    install_chat();
    write_plugins_conf(enable, more);
    struct chatd_proc_options opts = {
        .config_path = conf_path, .plugin_dir = plugin_dir, .sets = sets, .web = web};
    ck_assert_msg(chatd_proc_start(&srv, &opts) == 0, "chatd did not start");
}

static void start(const char *enable, const char *more, const char *const *sets)
{
    start_with(enable, more, sets, 0);
}

static void stop(void)
{
    int rc = chatd_proc_stop(&srv, CHATD_PROC_STOP_TIMEOUT_MS);
    chatd_proc_cleanup(&srv);
    chatd_tmpdir_remove(plugin_dir);
    if (have_db)
        db_test_cleanup(&db);
    ck_assert_msg(rc == 0, "chatd exited with %d after SIGTERM, want 0", rc);
}

static size_t log_count(const char *needle)
{
    return chatd_proc_log_count(&srv, needle);
}

static int log_has(const char *needle)
{
    return log_count(needle) > 0;
}

/* Reloads finished so far, applied or refused. */
static size_t reloads_done(void)
{
    return log_count(" applied:") + log_count("reload refused");
}

static void wait_log(const char *needle, size_t count)
{
    chatd_proc_wait_log(&srv, needle, count, RELOAD_TIMEOUT_MS);
}

/* A line of the last reload's report: they are logged one by one after its "applied:"
 * line, which is all sighup() waits for. */
static void expect_log(const char *needle)
{
    wait_log(needle, 1);
}

/* Send SIGHUP and wait until chatd has dealt with it. */
static void sighup(void)
{
    size_t before = reloads_done();
    ck_assert_int_eq(chatd_proc_signal(&srv, SIGHUP), 0);
    long long deadline = chatd_now_ms() + RELOAD_TIMEOUT_MS;
    while (reloads_done() == before && chatd_now_ms() < deadline)
        chatd_sleep_ms(10);
    ck_assert_msg(reloads_done() > before, "chatd did not finish a reload after SIGHUP");
}

/* ---- clients ---- */

static struct test_client *connect_client(void)
{
    return chatd_proc_connect(&srv);
}

#define request chatd_proc_request
#define str     chatd_json_str

/* The version the `version` command answers with, or the result word when it fails. */
static char *version_of(struct test_client *c)
{
    json_t *r = request(c, "{\"cmd\":\"version\"}");
    char *v =
        strdup(strcmp(str(r, "result"), "success") == 0 ? str(r, "version") : str(r, "result"));
    json_decref(r);
    return v;
}

static void assert_version(struct test_client *c, const char *want)
{
    char *got = version_of(c);
    ck_assert_msg(strcmp(got, want) == 0, "version answered '%s', want '%s'", got, want);
    free(got);
}

static void assert_ping(struct test_client *c)
{
    json_t *r = request(c, "{\"cmd\":\"ping\"}");
    ck_assert_str_eq(str(r, "result"), "success");
    json_decref(r);
}

/* The token of the admin listener's POST /reload. */
#define ADMIN_TOKEN "reload-test-token-0123456789"

/* One HTTP/1.0 request to the admin listener, with its token; the whole response (caller
 * frees). */
static char *http(int port, const char *method, const char *path)
{
    char *text = test_http_with(port, method, path, "Authorization: Bearer " ADMIN_TOKEN "\r\n");
    ck_assert_msg(text != NULL, "cannot connect to the admin listener");
    return text;
}

/* ---- plugins upgraded, enabled, disabled, reconfigured ---- */

START_TEST(plugin_upgraded_on_disk_answers_as_v2_after_sighup)
{
    start("ping, versioned", NULL, NULL);
    struct test_client *c = connect_client();
    struct test_client *waiting = connect_client();
    assert_version(c, "1.0.0");
    /* A request in flight in v1 across the upgrade is answered by v1. */
    ck_assert_int_eq(test_client_send_str(waiting, "{\"cmd\":\"slow\",\"ms\":700}"), 0);
    chatd_sleep_ms(100);
    install(CHATD_FIXTURE_DIR "/versioned_v2.so", "versioned");
    sighup();
    assert_version(c, "2.0.0");
    json_t *late = test_client_read_json(waiting, TEST_CLIENT_TIMEOUT_MS);
    ck_assert_msg(late != NULL, "the request in flight during the upgrade got no reply");
    ck_assert_str_eq(str(late, "result"), "success");
    ck_assert_str_eq(str(late, "version"), "1.0.0");
    json_decref(late);
    /* v1 is unloaded once that request is over. */
    wait_log("plugin versioned 1.0.0 unloaded", 1);
    assert_version(waiting, "2.0.0");
    assert_ping(c);
    /* Overwritten in place (same inode): chatd runs a private copy, so that is safe, and
     * the new contents are seen. */
    char dst[PATH_MAX + 64];
    snprintf(dst, sizeof(dst), "%s/versioned.so", plugin_dir);
    copy_file(CHATD_FIXTURE_DIR "/versioned_v1.so", dst, 1);
    sighup();
    assert_version(c, "1.0.0");
    test_client_close(c);
    test_client_close(waiting);
    stop();
}
END_TEST

START_TEST(disabled_plugin_answers_unknown_cmd_and_enabled_one_answers)
{
    int admin_port = test_free_port("127.0.0.1");
    char token_dir[PATH_MAX], token[PATH_MAX + 32], admin[PATH_MAX + 128];
    ck_assert_int_eq(chatd_tmpdir_make(token_dir, sizeof(token_dir)), 0);
    ck_assert_int_eq(
        chatd_file_write(token_dir, "admin.token", ADMIN_TOKEN "\n", token, sizeof(token)), 0);
    ck_assert_int_eq(chmod(token, 0600), 0);
    snprintf(admin, sizeof(admin),
             "[admin]\nenable = yes\nlisten = 127.0.0.1:%d\ntoken_file = %s\n", admin_port, token);
    start("ping", admin, NULL);
    struct test_client *c = connect_client();
    assert_version(c, "unknown_cmd");

    write_plugins_conf("ping, versioned", admin);
    char *answer = http(admin_port, "POST", "/reload");
    ck_assert_msg(strstr(answer, "200 OK") && strstr(answer, "plugin versioned 1.0.0"),
                  "POST /reload answered: %s", answer);
    free(answer);
    assert_version(c, "1.0.0");

    /* In a job, and held with request_hold, while the plugin is disabled: both are
     * answered, then the plugin unloads. */
    struct test_client *waiting = connect_client();
    struct test_client *held = connect_client();
    ck_assert_int_eq(test_client_send_str(waiting, "{\"cmd\":\"slow\",\"ms\":500}"), 0);
    ck_assert_int_eq(test_client_send_str(held, "{\"cmd\":\"later\",\"ms\":700}"), 0);
    chatd_sleep_ms(100);
    write_plugins_conf("ping", admin);
    sighup();
    assert_version(c, "unknown_cmd");
    json_t *late = test_client_read_json(waiting, TEST_CLIENT_TIMEOUT_MS);
    ck_assert_msg(late != NULL, "the request in flight when its plugin was disabled got no reply");
    ck_assert_str_eq(str(late, "result"), "success");
    json_decref(late);
    ck_assert(!log_has("plugin versioned 1.0.0 unloaded"));
    late = test_client_read_json(held, TEST_CLIENT_TIMEOUT_MS);
    ck_assert_msg(late != NULL, "the held request got no reply");
    ck_assert_str_eq(str(late, "result"), "success");
    json_decref(late);
    wait_log("plugin versioned 1.0.0 unloaded", 1);
    assert_ping(c);

    /* A plugin built for ABI 1.0 is enabled live like any other. */
    install(CHATD_FIXTURE_DIR "/abi_1_0.so", "abi_1_0");
    write_plugins_conf("ping, abi_1_0", admin);
    sighup();
    expect_log("plugin abi_1_0 9.0.0: newly enabled, serving");
    assert_ping(c);

    write_plugins_conf("ping, abi_1_0, nosuch", admin);
    answer = http(admin_port, "POST", "/reload");
    ck_assert_msg(strstr(answer, "409 Conflict") &&
                      strstr(answer, "reload refused, the running config is kept: ") &&
                      strstr(answer, "reload.conf:6: plugin 'nosuch': cannot read"),
                  "POST /reload of a bad config answered: %s", answer);
    free(answer);
    assert_ping(c);

    answer = http(admin_port, "GET", "/reload");
    ck_assert_msg(strstr(answer, "405"), "GET /reload answered: %s", answer);
    free(answer);
    test_client_close(c);
    test_client_close(waiting);
    test_client_close(held);
    stop();
}
END_TEST

START_TEST(changed_options_reach_the_plugin)
{
    start("ping, versioned", NULL, NULL);
    struct test_client *c = connect_client();
    json_t *r = request(c, "{\"cmd\":\"version\"}");
    ck_assert_str_eq(str(r, "greeting"), "hello");
    json_decref(r);
    write_plugins_conf("ping, versioned", "[plugin.versioned]\ngreeting = bonjour\n");
    sighup();
    r = request(c, "{\"cmd\":\"version\"}");
    ck_assert_str_eq(str(r, "greeting"), "bonjour");
    json_decref(r);
    /* A new instance whose init fails: the running one keeps serving. */
    write_plugins_conf("ping, versioned",
                       "[plugin.versioned]\ngreeting = hallo\nfail_init = yes\n");
    sighup();
    expect_log("reload: plugin versioned not started: init failed: told to fail by "
               "fail_init");
    wait_log("plugin versioned 1.0.0: the instance that did not start is closed", 1);
    r = request(c, "{\"cmd\":\"version\"}");
    ck_assert_str_eq(str(r, "greeting"), "bonjour");
    json_decref(r);
    /* Named as the authenticator: a new instance, as its init may depend on it. */
    write_plugins_conf("ping, versioned",
                       "authenticator = versioned\n[plugin.versioned]\ngreeting = bonjour\n");
    sighup();
    expect_log("plugin versioned 1.0.0: it was named or unnamed as the authenticator");
    assert_version(c, "1.0.0");
    /* Live settings are applied, the others are reported as needing a restart. */
    write_plugins_conf("ping, versioned",
                       "[plugin.versioned]\ngreeting = bonjour\n[server]\nmax_connections = 77\n"
                       "proxy_protocol = v2\n[database]\nworkers = 3\n");
    sighup();
    expect_log("[server] max_connections: ");
    expect_log("[database] changed: it needs a restart");
    expect_log("[server] proxy_protocol/proxy_from changed: it needs a restart");
    assert_ping(c);
    test_client_close(c);
    stop();
}
END_TEST

/* SIGHUP with the current config changed by `conf` (NULL: unchanged) and, if `plugin`
 * is set, that file installed as versioned.so: refused, naming `where`; v1 still
 * answers. */
static void assert_refused(struct test_client *c, const char *conf, const char *plugin,
                           const char *where)
{
    if (conf)
        write_conf(conf);
    if (plugin)
        install(plugin, "versioned");
    size_t refused = log_count("reload refused");
    sighup();
    ck_assert_msg(log_count("reload refused") == refused + 1, "the reload was not refused");
    if (!log_has(where))
        chatd_proc_dump_log(&srv);
    ck_assert_msg(log_has(where), "the refusal does not name '%s'", where);
    assert_version(c, "1.0.0");
    assert_ping(c);
}

START_TEST(bad_config_changes_nothing)
{
    start("ping, versioned", NULL, NULL);
    struct test_client *c = connect_client();
    assert_version(c, "1.0.0");
    char conf[8192];

    snprintf(conf, sizeof(conf), "[plugins]\ndir = %s\nenable = ping, versioned\nthis is not ini\n",
             plugin_dir);
    assert_refused(c, conf, NULL, "reload.conf:4:");

    snprintf(conf, sizeof(conf),
             "[server]\nmax_connection = 5\n[plugins]\ndir = %s\n"
             "enable = ping, versioned\n",
             plugin_dir);
    assert_refused(c, conf, NULL, "reload.conf:2: unknown key 'max_connection'");

    snprintf(conf, sizeof(conf), "[plugins]\ndir = %s\nenable = ping, versioned, nosuch\n",
             plugin_dir);
    assert_refused(c, conf, NULL, "reload.conf:3: plugin 'nosuch': cannot read");

    snprintf(conf, sizeof(conf),
             "[plugins]\ndir = %s\nenable = ping, versioned\n"
             "[plugin.versioned]\nfarewell = bye\n",
             plugin_dir);
    assert_refused(c, conf, NULL, "reload.conf:5: unknown key 'farewell' in [plugin.versioned]");

    /* Another ABI on disk: refused with both versions, before any of its code runs. */
    snprintf(conf, sizeof(conf), "[plugins]\ndir = %s\nenable = ping, versioned\n", plugin_dir);
    char want[PATH_MAX + 256];
    snprintf(want, sizeof(want),
             "reload.conf:3: plugin 'versioned': %s/versioned.so was built for chatd plugin ABI "
             "%d.0, but this chatd provides ABI %d.%d",
             plugin_dir, CHATD_ABI_MAJOR + 1, CHATD_ABI_MAJOR, CHATD_ABI_MINOR);
    assert_refused(c, conf, CHATD_FIXTURE_DIR "/wrong_major.so", want);
    snprintf(want, sizeof(want), "needs chatd plugin ABI %d.%d, but this chatd provides ABI %d.%d",
             CHATD_ABI_MAJOR, CHATD_ABI_MINOR + 1, CHATD_ABI_MAJOR, CHATD_ABI_MINOR);
    assert_refused(c, NULL, CHATD_FIXTURE_DIR "/newer_minor.so", want);
    /* A good file again: applied. */
    install(CHATD_FIXTURE_DIR "/versioned_v2.so", "versioned");
    sighup();
    assert_version(c, "2.0.0");
    test_client_close(c);
    stop();
}
END_TEST

/* ---- --check-plugin on the ABI fixtures ---- */

static void check_plugin(const char *file, int want_status, const char *want)
{
    const char *const args[] = {"--check-plugin", file, NULL};
    struct chatd_run_result r;
    ck_assert_int_eq(chatd_run(args, 10000, &r), 0);
    ck_assert_msg(r.status == want_status, "--check-plugin %s exited %d: %s%s", file, r.status,
                  r.out, r.err);
    ck_assert_msg(strstr(r.out, want), "--check-plugin %s does not say '%s': %s", file, want,
                  r.out);
    chatd_run_result_free(&r);
}

START_TEST(check_plugin_tells_which_abi_fixtures_would_load)
{
    char want[256];
    check_plugin(CHATD_FIXTURE_DIR "/abi_1_0.so", 0, "loadable:      yes");
    check_plugin(CHATD_FIXTURE_DIR "/versioned_v2.so", 0, "loadable:      yes");
    snprintf(want, sizeof(want),
             "loadable:      no: " CHATD_FIXTURE_DIR "/newer_minor.so needs chatd plugin ABI "
             "%d.%d, but this chatd provides ABI %d.%d",
             CHATD_ABI_MAJOR, CHATD_ABI_MINOR + 1, CHATD_ABI_MAJOR, CHATD_ABI_MINOR);
    check_plugin(CHATD_FIXTURE_DIR "/newer_minor.so", 1, want);
    snprintf(want, sizeof(want),
             "loadable:      no: " CHATD_FIXTURE_DIR "/wrong_major.so was built for chatd plugin "
             "ABI %d.0, but this chatd provides ABI %d.%d",
             CHATD_ABI_MAJOR + 1, CHATD_ABI_MAJOR, CHATD_ABI_MINOR);
    check_plugin(CHATD_FIXTURE_DIR "/wrong_major.so", 1, want);
    check_plugin(CHATD_FIXTURE_DIR "/unresolved.so", 1, "loadable:      no: cannot load plugin");
    check_plugin(CHATD_FIXTURE_DIR "/no_descriptor.so", 1, "loadable:      no:");
}
END_TEST

/* ---- the chat plugin reloaded under logged-in users ---- */

static long long next_id = 1;
static int chat_admin_port;

static void start_chat(void)
{
    db_test_config(&db);
    have_db = 1;
    static char socket[4200], name[200], user[200];
    snprintf(socket, sizeof(socket), "database.socket=%s", db.socket);
    snprintf(user, sizeof(user), "database.user=%s", db.user);
    snprintf(name, sizeof(name), "database.name=%s", db.name);
    static const char *sets[8];
    sets[0] = socket;
    sets[1] = name;
    sets[2] = user;
    sets[3] = "database.password_file=";
    sets[4] = NULL;
    chat_admin_port = test_free_port("127.0.0.1");
    char more[512];
    snprintf(more, sizeof(more),
             "authenticator = accounts\n[plugin.accounts]\npassword_opslimit = 1\n"
             "password_memlimit_kib = 8\n[database]\nenable = yes\n[admin]\nenable = yes\n"
             "listen = 127.0.0.1:%d\n",
             chat_admin_port);
    start("ping, accounts, friends, private_chat, groups", more, sets);
}

/* Send `cmd` and read until its reply, keeping pushes in `pushes` (may be NULL). */
static json_t *chat_request(struct test_client *c, json_t *cmd, json_t *pushes)
{
    json_int_t id = next_id++;
    json_object_set_new(cmd, "id", json_integer(id));
    ck_assert_int_eq(test_client_send_json(c, cmd), 0);
    json_decref(cmd);
    for (;;) {
        /* Generous: the database may be slow while other suites run against it. */
        json_t *msg = test_client_read_json(c, 4 * TEST_CLIENT_TIMEOUT_MS);
        ck_assert_msg(msg != NULL, "no reply");
        if (json_integer_value(json_object_get(msg, "id")) == id)
            return msg;
        if (pushes)
            json_array_append(pushes, msg);
        json_decref(msg);
    }
}

static struct test_client *user(const char *name)
{
    struct test_client *c = connect_client();
    json_t *r = chat_request(
        c, json_pack("{ssssss}", "cmd", "register", "user", name, "passwd", "pw"), NULL);
    json_decref(r);
    r = chat_request(c, json_pack("{ssssss}", "cmd", "login", "user", name, "passwd", "pw"), NULL);
    ck_assert_msg(strcmp(str(r, "result"), "success") == 0, "login of %s: %s", name,
                  str(r, "result"));
    json_decref(r);
    return c;
}

/* private_chat from c to `to`; retried while the reloaded chat is still loading the
 * sender's account (answered busy). Returns the result word (static). */
static const char *send_private(struct test_client *c, const char *to, const char *text,
                                json_t *pushes)
{
    static char result[32];
    for (int attempt = 0; attempt < 200; attempt++) {
        json_t *r = chat_request(
            c, json_pack("{ssssss}", "cmd", "private_chat", "user_to", to, "text", text), pushes);
        snprintf(result, sizeof(result), "%s", str(r, "result"));
        json_decref(r);
        if (strcmp(result, "busy") != 0)
            return result;
        chatd_sleep_ms(5);
    }
    return result;
}

/* Read pushes on c until `count` private messages arrived (those already in `pushes`,
 * which may be NULL, count), checking their texts are "<prefix>0".. in order, each once. */
static void expect_privates(struct test_client *c, json_t *pushes, const char *prefix, int count)
{
    int seen = 0;
    size_t i = 0;
    while (seen < count) {
        json_t *msg;
        if (pushes && i < json_array_size(pushes)) {
            msg = json_incref(json_array_get(pushes, i++));
        } else {
            msg = test_client_read_json(c, TEST_CLIENT_TIMEOUT_MS);
            ck_assert_msg(msg != NULL, "only %d of %d messages arrived", seen, count);
        }
        if (strcmp(str(msg, "cmd"), "private_chat_recv") == 0) {
            char want[64];
            snprintf(want, sizeof(want), "%s%d", prefix, seen);
            ck_assert_msg(strcmp(str(msg, "text"), want) == 0, "got '%s'%s, want '%s'",
                          str(msg, "text"),
                          json_is_true(json_object_get(msg, "offline")) ? " (stored)" : "", want);
            seen++;
        }
        json_decref(msg);
    }
}

START_TEST(client_logged_in_before_a_reload_keeps_chatting)
{
    start_chat();
    struct test_client *alice = user("alice");
    struct test_client *bob = user("bob");
    ck_assert_str_eq(send_private(alice, "bob", "m0", NULL), "success");
    expect_privates(bob, NULL, "m", 1);
    /* A group message moves bob's read position in memory: the old instance's
     * shutdown then has positions to save, and must not leave a job behind that would
     * call into it once it is unmapped. */
    json_decref(
        chat_request(alice, json_pack("{ssss}", "cmd", "create_group", "group", "g"), NULL));
    json_decref(chat_request(bob, json_pack("{ssss}", "cmd", "join_group", "group", "g"), NULL));
    json_t *sent = chat_request(
        alice, json_pack("{ssssss}", "cmd", "group_chat", "group", "g", "text", "g0"), NULL);
    ck_assert_str_eq(str(sent, "result"), "success");
    json_decref(sent);
    for (;;) {
        json_t *msg = test_client_read_json(bob, TEST_CLIENT_TIMEOUT_MS);
        ck_assert_msg(msg != NULL, "bob did not get the group message");
        int is_group = strcmp(str(msg, "cmd"), "group_chat_recv") == 0;
        json_decref(msg);
        if (is_group)
            break;
    }

    install_chat();
    sighup();
    wait_log("plugin private_chat 1.0.0 unloaded", 1);
    wait_log("plugin friends 1.0.0 unloaded", 1);
    ck_assert_str_eq(send_private(alice, "bob", "n0", NULL), "success");
    json_t *pushes = json_array();
    ck_assert_str_eq(send_private(bob, "alice", "r0", pushes), "success");
    expect_privates(bob, pushes, "n", 1);
    json_decref(pushes);
    expect_privates(alice, NULL, "r", 1);
    /* Still logged in as the same users: the reloaded chat knows their accounts. */
    json_t *r =
        chat_request(alice, json_pack("{ssss}", "cmd", "add_friend", "friend", "bob"), NULL);
    while (strcmp(str(r, "result"), "busy") == 0) {
        json_decref(r);
        chatd_sleep_ms(5);
        r = chat_request(alice, json_pack("{ssss}", "cmd", "add_friend", "friend", "bob"), NULL);
    }
    ck_assert_msg(strcmp(str(r, "result"), "success") == 0, "add_friend after reload: %s",
                  str(r, "result"));
    json_decref(r);
    test_client_close(alice);
    test_client_close(bob);
    stop();
}
END_TEST

/* Take the private messages that have arrived at c (waiting up to timeout_ms for the
 * first), checking they are "x<n>" in order from *seen on, each once. */
static void take_privates(struct test_client *c, int *seen, int timeout_ms)
{
    char line[4096];
    ssize_t n;
    while ((n = test_client_read_line(c, line, sizeof(line), timeout_ms)) > 0) {
        timeout_ms = 0;
        json_t *msg = json_loadb(line, (size_t)n, 0, NULL);
        ck_assert_msg(msg != NULL, "not JSON: %s", line);
        if (strcmp(str(msg, "cmd"), "private_chat_recv") == 0) {
            char want[32];
            snprintf(want, sizeof(want), "x%d", *seen);
            ck_assert_msg(strcmp(str(msg, "text"), want) == 0, "got '%s'%s, want '%s'",
                          str(msg, "text"),
                          json_is_true(json_object_get(msg, "offline")) ? " (stored)" : "", want);
            (*seen)++;
        }
        json_decref(msg);
    }
    ck_assert_msg(n == TEST_CLIENT_TIMEOUT, "bob's connection failed (%zd)", n);
}

/* How many reloads of the chat have finished: every one of its plugins unloaded the
 * instance it replaced (a plugin with migrations takes longer than one without, and a
 * reload sent before they are done is refused). */
static size_t chat_reloads_done(void)
{
    static const char *const unloaded[] = {
        "plugin accounts 1.0.0 unloaded", "plugin friends 1.0.0 unloaded",
        "plugin private_chat 1.0.0 unloaded", "plugin groups 1.0.0 unloaded"};
    size_t done = SIZE_MAX;
    for (size_t i = 0; i < sizeof(unloaded) / sizeof(unloaded[0]); i++) {
        size_t n = log_count(unloaded[i]);
        done = n < done ? n : done;
    }
    return done;
}

START_TEST(reload_under_load_loses_no_message)
{
    start_chat();
    struct test_client *alice = user("alice");
    struct test_client *bob = user("bob");
    json_t *alice_pushes = json_array();
    /* alice sends without pause and bob reads as they come; each reload starts while
     * messages flow, and the next one once the chat it replaced has been unloaded,
     * until four have gone through. */
    const size_t reloads = 4;
    size_t sent_reloads = 0;
    int total = 0, seen = 0;
    long long deadline = chatd_now_ms() + 60000;
    for (;;) {
        size_t unloaded = chat_reloads_done();
        if (total >= 300 && unloaded >= reloads)
            break;
        ck_assert_msg(chatd_now_ms() < deadline, "the reloads did not finish: %zu of %zu", unloaded,
                      reloads);
        char text[32];
        snprintf(text, sizeof(text), "x%d", total);
        const char *result = send_private(alice, "bob", text, alice_pushes);
        ck_assert_msg(strcmp(result, "success") == 0, "message %d answered %s", total, result);
        total++;
        take_privates(bob, &seen, 1);
        if (total % 20 == 10 && unloaded == sent_reloads && sent_reloads < reloads) {
            install_chat();
            ck_assert_int_eq(chatd_proc_signal(&srv, SIGHUP), 0);
            sent_reloads++;
        }
    }
    while (seen < total) {
        int before = seen;
        take_privates(bob, &seen, TEST_CLIENT_TIMEOUT_MS);
        ck_assert_msg(seen > before, "only %d of %d messages arrived", seen, total);
    }
    ck_assert(chatd_proc_alive(&srv));
    ck_assert_uint_eq(log_count("reload refused"), 0);
    test_client_close(alice);
    test_client_close(bob);
    json_decref(alice_pushes);
    stop();
}
END_TEST

/* The status of a WebSocket handshake from a page of `origin`. */
static int handshake_from(const char *origin)
{
    struct ws_client *c = ws_client_open(srv.host, srv.web_port, 0);
    ck_assert_ptr_nonnull(c);
    int status = ws_client_handshake(c, "h", origin, NULL, NULL, 0);
    ws_client_close(c);
    return status;
}

/* The body of GET / from the web listener. */
static void assert_index(const char *want)
{
    struct ws_client *c = ws_client_open(srv.host, srv.web_port, 0);
    ck_assert_ptr_nonnull(c);
    const char *get = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    char head[4096], body[64];
    ck_assert_int_eq(ws_client_send_raw(c, get, strlen(get)), 0);
    ck_assert_int_eq(ws_client_read_head(c, head, sizeof(head), RELOAD_TIMEOUT_MS), 200);
    ck_assert_int_eq(ws_client_read_body(c, body, strlen(want), RELOAD_TIMEOUT_MS), 0);
    ck_assert_str_eq(body, want);
    ws_client_close(c);
}

/* [web] allowed_origins, root and the keepalive are taken at a reload; a WebSocket open
 * before it goes on. */
START_TEST(web_origins_and_root_follow_a_reload)
{
    char one[PATH_MAX], two[PATH_MAX], more[3 * PATH_MAX];
    ck_assert_int_eq(chatd_tmpdir_make(one, sizeof(one)), 0);
    ck_assert_int_eq(chatd_tmpdir_make(two, sizeof(two)), 0);
    ck_assert_int_eq(chatd_file_write(one, "index.html", "one", NULL, 0), 0);
    ck_assert_int_eq(chatd_file_write(two, "index.html", "two", NULL, 0), 0);
    snprintf(more, sizeof(more), "[web]\nallowed_origins = http://a.example\nroot = %s\n", one);
    start_with("ping", more, NULL, 1);
    ck_assert_int_eq(handshake_from("http://a.example"), 101);
    ck_assert_int_eq(handshake_from("http://b.example"), 403);
    assert_index("one");
    struct ws_client *open = ws_client_open(srv.host, srv.web_port, 0);
    ck_assert_int_eq(ws_client_handshake(open, "h", NULL, NULL, NULL, 0), 101);

    snprintf(more, sizeof(more),
             "[web]\nallowed_origins = http://b.example\nroot = %s\nping_interval = 5\n", two);
    write_plugins_conf("ping", more);
    sighup();
    expect_log("[web] allowed_origins/root changed");
    expect_log("[web] ping_interval: 30 -> 5");
    ck_assert_int_eq(handshake_from("http://b.example"), 101);
    ck_assert_int_eq(handshake_from("http://a.example"), 403);
    assert_index("two");
    ck_assert_int_eq(ws_client_send_text(open, "{\"cmd\":\"ping\"}"), 0);
    json_t *reply = ws_client_read_json(open, RELOAD_TIMEOUT_MS);
    ck_assert_ptr_nonnull(reply);
    json_decref(reply);
    ws_client_close(open);
    stop();
    chatd_tmpdir_remove(one);
    chatd_tmpdir_remove(two);
}
END_TEST

static Suite *reload_suite(void)
{
    Suite *s = suite_create("reload");
    TCase *tc = tcase_create("plugins");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, plugin_upgraded_on_disk_answers_as_v2_after_sighup);
    tcase_add_test(tc, disabled_plugin_answers_unknown_cmd_and_enabled_one_answers);
    tcase_add_test(tc, changed_options_reach_the_plugin);
    tcase_add_test(tc, web_origins_and_root_follow_a_reload);
    tcase_add_test(tc, bad_config_changes_nothing);
    tcase_add_test(tc, check_plugin_tells_which_abi_fixtures_would_load);
    suite_add_tcase(s, tc);
    TCase *chat = tcase_create("chat");
    tcase_set_timeout(chat, 120);
    tcase_add_test(chat, client_logged_in_before_a_reload_keeps_chatting);
    tcase_add_test(chat, reload_under_load_loses_no_message);
    suite_add_tcase(s, chat);
    return s;
}

int main(void)
{
    return chatd_proc_run_suite(reload_suite());
}
