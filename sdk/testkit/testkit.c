/* testkit.c - the test kit's host: chatd's server (config, loader, pool, sessions)
 * driven from a test, with sessions over socket pairs whose client ends the kit reads
 * and records. See chatd_testkit.h. */
#include "testkit_internal.h"

#include "db.h"
#include "log.h"
#include "plugin_loader.h"
#include "session.h"
#include "stream_sessions.h"
#include "transport.h"
#include "users.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* How often a waiting kit looks at what it waits for. */
#define TICK_MS 2
/* request() sends what fits in one frame of this size at most, formatted. */
#define REQUEST_MAX (1024 * 1024)

static struct chatd_testkit *kits; /* alive in this process, for the host table's hooks */

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    ck_assert_msg(p != NULL, "testkit: out of memory");
    return p;
}

static char *xstrdup(const char *s)
{
    char *copy = strdup(s);
    ck_assert_msg(copy != NULL, "testkit: out of memory");
    return copy;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_error(struct chatd_testkit *kit, const char *fmt, ...) CHATD_PRINTF(2, 3);
static void set_error(struct chatd_testkit *kit, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(kit->error, sizeof(kit->error), fmt, ap);
    va_end(ap);
}

struct chatd_testkit *testkit_of_server(const struct server *srv)
{
    for (struct chatd_testkit *k = kits; k; k = k->next_kit)
        if (k->srv == srv)
            return k;
    return NULL;
}

void testkit_violation(struct chatd_testkit *kit, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    char **grown = realloc(kit->violations, (kit->n_violations + 1) * sizeof(*grown));
    ck_assert_msg(grown != NULL, "testkit: out of memory");
    kit->violations = grown;
    kit->violations[kit->n_violations++] = xstrdup(text);
}

void testkit_report_violations(struct chatd_testkit *kit)
{
    if (!kit->strict || kit->n_reported == kit->n_violations)
        return;
    const char *first = kit->violations[kit->n_reported];
    kit->n_reported = kit->n_violations;
    ck_abort_msg("plugin contract broken: %s", first);
}

/* ---------------------------------------------------------------------------------
 * The kit's database: one of its own per kit, on the server the environment names
 * ------------------------------------------------------------------------------- */

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

static void db_settings(struct chatd_testkit *kit, const char *socket)
{
    struct config_database *db = &kit->db;
    memset(db, 0, sizeof(*db));
    db->enable = 1;
    db->socket = xstrdup(socket);
    db->host = xstrdup("localhost");
    db->port = 3306;
    /* scripts/mariadb's administrator is MariaDB's account of the user running it (root
     * for the system's root), through unix_socket authentication. */
    const struct passwd *pw = getpwuid(geteuid());
    db->user = xstrdup(env_or("CHATD_TESTKIT_DB_USER", pw ? pw->pw_name : "root"));
    db->password = xstrdup(env_or("CHATD_TESTKIT_DB_PASSWORD", ""));
    db->password_file = xstrdup("");
    db->name = xstrdup("mysql");
    db->tls_ca = xstrdup("");
    db->tls_cert = xstrdup("");
    db->tls_key = xstrdup("");
    db->connect_timeout_s = 3;
}

static void db_settings_free(struct config_database *db)
{
    char **strings[] = {&db->socket, &db->host,   &db->user,     &db->password, &db->password_file,
                        &db->name,   &db->tls_ca, &db->tls_cert, &db->tls_key};
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
        free(*strings[i]);
        *strings[i] = NULL;
    }
}

/* Run one statement on the kit's server as its own user, outside any plugin's
 * database. The SQL is made by the kit from its own names, never from test input. */
static int db_admin(struct chatd_testkit *kit, const char *sql)
{
    struct chatd_db conn = {0};
    char err[512];
    if (db_open(&conn, &kit->db, kit->db.password, err, sizeof(err)) < 0) {
        set_error(kit, "testkit: %s", err);
        return -1;
    }
    int rc = db_simple(&conn, sql);
    if (rc != 0)
        set_error(kit, "testkit: %s: %s", sql, conn.last_error);
    db_close(&conn);
    return rc == 0 ? 0 : -1;
}

static int db_create(struct chatd_testkit *kit)
{
    static unsigned counter;
    char sql[160];
    snprintf(kit->db_name, sizeof(kit->db_name), "chatd_kit_%ld_%u", (long)getpid(), counter++);
    snprintf(sql, sizeof(sql), "CREATE DATABASE `%s` CHARACTER SET utf8mb4", kit->db_name);
    if (db_admin(kit, sql) < 0) {
        kit->db_name[0] = '\0';
        return -1;
    }
    return 0;
}

static void db_drop(struct chatd_testkit *kit)
{
    if (!kit->db_name[0] || getenv("CHATD_TESTKIT_KEEP_DB"))
        return;
    char sql[160];
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS `%s`", kit->db_name);
    db_admin(kit, sql);
    kit->db_name[0] = '\0';
}

/* ---------------------------------------------------------------------------------
 * Loading
 * ------------------------------------------------------------------------------- */

struct chatd_testkit *chatd_testkit_new(const char *path)
{
    struct chatd_testkit *kit = xcalloc(1, sizeof(*kit));
    kit->path = xstrdup(path);
    const char *slash = strrchr(path, '/');
    kit->dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : xstrdup(".");
    ck_assert_msg(kit->dir != NULL, "testkit: out of memory");
    const char *base = slash ? slash + 1 : path;
    size_t len = strlen(base);
    kit->name = strndup(base, len > 3 && strcmp(base + len - 3, ".so") == 0 ? len - 3 : len);
    ck_assert_msg(kit->name != NULL, "testkit: out of memory");
    kit->timeout_ms = 5000;
    kit->strict = 1;
    kit->hook_outcomes = json_array();
    ck_assert_msg(kit->hook_outcomes != NULL, "testkit: out of memory");
    const char *socket = env_or("CHATD_TESTKIT_DB_SOCKET", env_or("CHATD_TEST_DB_SOCKET", NULL));
    if (socket) {
        db_settings(kit, socket);
        kit->has_db = 1;
    }
    testkit_host_table(&kit->table);
    kit->next_kit = kits;
    kits = kit;
    return kit;
}

int chatd_testkit_set(struct chatd_testkit *kit, const char *assignment)
{
    if (kit->started) {
        set_error(kit, "testkit: settings must come before chatd_testkit_start");
        return -1;
    }
    char **grown = realloc(kit->settings, (kit->n_settings + 1) * sizeof(*grown));
    ck_assert_msg(grown != NULL, "testkit: out of memory");
    kit->settings = grown;
    kit->settings[kit->n_settings++] = xstrdup(assignment);
    return 0;
}

int chatd_testkit_option(struct chatd_testkit *kit, const char *key, const char *value)
{
    size_t n = strlen(kit->name) + strlen(key) + strlen(value) + 16;
    char *assignment = xcalloc(1, n);
    snprintf(assignment, n, "plugin.%s.%s=%s", kit->name, key, value);
    int rc = chatd_testkit_set(kit, assignment);
    free(assignment);
    return rc;
}

static int apply(struct chatd_testkit *kit, const char *fmt, ...) CHATD_PRINTF(2, 3);
static int apply(struct chatd_testkit *kit, const char *fmt, ...)
{
    char assignment[4096], err[CONFIG_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(assignment, sizeof(assignment), fmt, ap);
    va_end(ap);
    if (config_override(&kit->cfg, assignment, err, sizeof(err)) < 0) {
        set_error(kit, "%s", err);
        return -1;
    }
    return 0;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

int chatd_testkit_start(struct chatd_testkit *kit)
{
    if (kit->started) {
        set_error(kit, "testkit: already started");
        return -1;
    }
    kit->started = 1;
    kit->error[0] = '\0';
    config_defaults(&kit->cfg);
    kit->have_cfg = 1;
    kit->cfg.path = xstrdup("testkit");
    /* What the kit itself needs comes first, so that the test's settings win. */
    if (apply(kit, "plugins.dir=%s", kit->dir) < 0 ||
        apply(kit, "plugins.enable=%s", kit->name) < 0 ||
        apply(kit, "log.level=%s", env_or("CHATD_TESTKIT_LOG_LEVEL", "warn")) < 0)
        return -1;
    /* Every kit session comes from one address: [limits] are off unless a test sets them. */
    static const char *const limits_off[] = {
        "limits.login_per_address=off", "limits.failed_login_per_name=off",
        "limits.requests_per_session=off", "limits.connections_per_address=off",
        "limits.max_connections_per_address=0"};
    for (size_t i = 0; i < sizeof(limits_off) / sizeof(limits_off[0]); i++)
        if (apply(kit, "%s", limits_off[i]) < 0)
            return -1;
    if (kit->has_db &&
        (db_create(kit) < 0 || apply(kit, "database.enable=yes") < 0 ||
         apply(kit, "database.socket=%s", kit->db.socket) < 0 ||
         apply(kit, "database.user=%s", kit->db.user) < 0 ||
         apply(kit, "database.password=%s", kit->db.password) < 0 ||
         apply(kit, "database.name=%s", kit->db_name) < 0 || apply(kit, "database.workers=2") < 0))
        return -1;
    for (size_t i = 0; i < kit->n_settings; i++)
        if (apply(kit, "%s", kit->settings[i]) < 0)
            return -1;
    char err[2048];
    if (config_check_plugins(&kit->cfg, err, sizeof(err)) < 0) {
        set_error(kit, "%s", err);
        return -1;
    }
    log_configure((enum chatd_log_level)kit->cfg.log_level, 0, "chatd-testkit");

    kit->srv = server_new(&kit->cfg);
    if (!kit->srv) {
        set_error(kit, "testkit: cannot create the event loop");
        return -1;
    }
    kit->srv->host_table = &kit->table;
    kit->tick = event_new(kit->srv->base, -1, 0, on_tick, NULL);
    ck_assert_msg(kit->tick != NULL, "testkit: out of memory");
    if (server_load_plugins(kit->srv, err, sizeof(err)) < 0) {
        set_error(kit, "%s", err);
        return -1;
    }
    return 0;
}

const char *chatd_testkit_error(const struct chatd_testkit *kit)
{
    return kit->error;
}

int chatd_testkit_has_database(const struct chatd_testkit *kit)
{
    return kit->has_db;
}

static void close_client(struct chatd_testkit_session *s)
{
    if (s->client) {
        bufferevent_free(s->client);
        s->client = NULL;
    }
}

void chatd_testkit_free(struct chatd_testkit *kit)
{
    if (!kit)
        return;
    for (struct chatd_testkit_session *s = kit->sessions; s; s = s->next)
        close_client(s);
    if (kit->tick)
        event_free(kit->tick);
    /* chatd's own teardown: sessions (LOGOUT events), jobs, then the plugin. */
    server_free(kit->srv);
    testkit_report_violations(kit);
    while (kit->sessions) {
        struct chatd_testkit_session *s = kit->sessions;
        kit->sessions = s->next;
        json_decref(s->replies);
        json_decref(s->pushes);
        free(s);
    }
    json_decref(kit->hook_outcomes);
    if (kit->have_cfg)
        config_free(&kit->cfg);
    db_drop(kit);
    db_settings_free(&kit->db);
    for (struct chatd_testkit **k = &kits; *k; k = &(*k)->next_kit) {
        if (*k == kit) {
            *k = kit->next_kit;
            break;
        }
    }
    for (size_t i = 0; i < kit->n_settings; i++)
        free(kit->settings[i]);
    for (size_t i = 0; i < kit->n_violations; i++)
        free(kit->violations[i]);
    free(kit->settings);
    free(kit->violations);
    free(kit->path);
    free(kit->dir);
    free(kit->name);
    free(kit);
}

/* ---------------------------------------------------------------------------------
 * The loop
 * ------------------------------------------------------------------------------- */

typedef int (*wait_done_fn)(void *arg);

/* Run the host's loop until done(arg) or ms have passed. 0 when done. */
static int run_until(struct chatd_testkit *kit, wait_done_fn done, void *arg, unsigned ms)
{
    int64_t deadline = now_ms() + ms;
    int rc = -1;
    for (;;) {
        if (done && done(arg)) {
            rc = 0;
            break;
        }
        if (now_ms() >= deadline)
            break;
        struct timeval tick = {0, TICK_MS * 1000};
        event_add(kit->tick, &tick);
        event_base_loop(kit->srv->base, EVLOOP_ONCE);
    }
    event_del(kit->tick);
    testkit_report_violations(kit);
    return rc;
}

void chatd_testkit_run(struct chatd_testkit *kit, unsigned ms)
{
    if (kit->srv)
        run_until(kit, NULL, NULL, ms);
}

void chatd_testkit_set_timeout(struct chatd_testkit *kit, unsigned ms)
{
    kit->timeout_ms = ms;
}

/* ---------------------------------------------------------------------------------
 * Sessions
 * ------------------------------------------------------------------------------- */

static int is_reply(const json_t *msg)
{
    const char *cmd = json_string_value(json_object_get(msg, "cmd"));
    if (!cmd)
        return 0;
    size_t n = strlen(cmd);
    return strcmp(cmd, "error") == 0 || (n > 6 && strcmp(cmd + n - 6, "_reply") == 0);
}

static const char forgotten_reason[] = "the command's plugin did not answer";

static void on_client_read(struct bufferevent *bev, void *arg)
{
    struct chatd_testkit_session *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    char *line;
    size_t len;
    while ((line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF)) != NULL) {
        json_error_t error;
        json_t *msg = json_loadb(line, len, 0, &error);
        if (!json_is_object(msg)) {
            testkit_violation(s->kit, "session %llu received a line that is not a JSON object: %s",
                              (unsigned long long)s->id, line);
            json_decref(msg);
        } else if (is_reply(msg)) {
            const char *reason = json_string_value(json_object_get(msg, "reason"));
            if (reason && strcmp(reason, forgotten_reason) == 0)
                testkit_violation(s->kit, "a request was left without a reply: %s", line);
            json_array_append_new(s->replies, msg);
        } else {
            json_array_append_new(s->pushes, msg);
        }
        free(line);
    }
}

static void on_client_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    struct chatd_testkit_session *s = arg;
    on_client_read(s->client, s); /* whatever came before the end */
    close_client(s);
}

/* The host's record of the session, or NULL once it is closed. */
static struct session *host_session(struct chatd_testkit_session *s)
{
    return session_find(s->kit->srv, s->id);
}

struct chatd_testkit_session *chatd_testkit_connect(struct chatd_testkit *kit)
{
    if (!kit->srv || !kit->srv->n_plugins) {
        set_error(kit, "testkit: the kit has not started");
        return NULL;
    }
    int fds[2];
    ck_assert_msg(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0,
                  "testkit: socketpair failed");
    evutil_make_socket_nonblocking(fds[0]);
    evutil_make_socket_nonblocking(fds[1]);
    struct chatd_testkit_session *s = xcalloc(1, sizeof(*s));
    s->kit = kit;
    s->replies = json_array();
    s->pushes = json_array();
    chatd_session_id before = kit->srv->next_session_id;
    struct sockaddr_un peer = {.sun_family = AF_UNIX};
    session_accept(kit->srv, &transport_tcp, fds[0], (const struct sockaddr *)&peer,
                   (int)sizeof(peer));
    s->id = kit->srv->next_session_id;
    s->next = kit->sessions;
    kit->sessions = s;
    if (s->id == before || !host_session(s)) {
        /* Refused (max_connections): the host closed its end. */
        close(fds[1]);
        set_error(kit, "testkit: the host refused the connection");
        return NULL;
    }
    s->client = bufferevent_socket_new(kit->srv->base, fds[1], BEV_OPT_CLOSE_ON_FREE);
    ck_assert_msg(s->client != NULL, "testkit: out of memory");
    bufferevent_setcb(s->client, on_client_read, NULL, on_client_event, s);
    bufferevent_enable(s->client, EV_READ | EV_WRITE);
    return s;
}

struct chatd_testkit_session *chatd_testkit_login(struct chatd_testkit *kit, const char *user)
{
    struct chatd_testkit_session *s = chatd_testkit_connect(kit);
    if (!s)
        return NULL;
    /* As session_login does: the stream holds the session's pushes until the login is
     * answered, then sends what waits for it (a version 1 login). */
    struct session *hs = host_session(s);
    const struct stream_login v1 = {.ack = 0, .device = NULL, .since = -1};
    uint64_t login = stream_login_bound(kit->srv, hs, user, &v1);
    int rc = users_bind(kit->srv, hs, user);
    if (rc != 0)
        stream_session_end(kit->srv, hs);
    ck_assert_msg(rc == 0, "testkit: cannot log a session in as %s: %s", user, chatd_strerror(rc));
    stream_login_replied(kit->srv, hs->id, login, 1);
    testkit_report_violations(kit);
    return s;
}

void chatd_testkit_logout(struct chatd_testkit_session *s)
{
    struct session *hs = host_session(s);
    if (hs)
        users_unbind(s->kit->srv, hs);
    testkit_report_violations(s->kit);
}

static int session_gone(void *arg)
{
    struct chatd_testkit_session *s = arg;
    struct session *hs;
    HASH_FIND(hh, s->kit->srv->sessions, &s->id, sizeof(s->id), hs);
    return hs == NULL;
}

void chatd_testkit_disconnect(struct chatd_testkit_session *s)
{
    close_client(s);
    /* The host sees the end of the stream, closes, and its reaper unbinds the user. */
    run_until(s->kit, session_gone, s, s->kit->timeout_ms);
}

chatd_session_id chatd_testkit_session_id(const struct chatd_testkit_session *s)
{
    return s->id;
}

/* ---------------------------------------------------------------------------------
 * Requests and pushes
 * ------------------------------------------------------------------------------- */

struct request_wait {
    struct chatd_testkit_session *s;
    size_t replies_before;
};

static int request_over(void *arg)
{
    struct request_wait *w = arg;
    if (json_array_size(w->s->replies) <= w->replies_before)
        return !w->s->client; /* the host closed the session: nothing more will come */
    struct session *hs = host_session(w->s);
    return !hs || !hs->busy;
}

json_t *chatd_testkit_request_raw(struct chatd_testkit_session *s, const char *bytes, size_t len)
{
    struct chatd_testkit *kit = s->kit;
    kit->error[0] = '\0';
    if (!s->client) {
        set_error(kit, "testkit: session %llu is closed", (unsigned long long)s->id);
        return NULL;
    }
    struct request_wait w = {.s = s, .replies_before = json_array_size(s->replies)};
    bufferevent_write(s->client, bytes, len);
    if (run_until(kit, request_over, &w, kit->timeout_ms) < 0) {
        set_error(kit, "testkit: no reply within %u ms to %.*s", kit->timeout_ms,
                  len > 200 ? 200 : (int)len, bytes);
        return NULL;
    }
    if (json_array_size(s->replies) <= w.replies_before) {
        set_error(kit, "testkit: the host closed the session without a reply");
        return NULL;
    }
    return json_array_get(s->replies, w.replies_before);
}

/* printf into a new string of at most REQUEST_MAX bytes; its length in *len. */
static char *vformat(const char *fmt, va_list ap, size_t *len) CHATD_PRINTF(1, 0);
static char *vformat(const char *fmt, va_list ap, size_t *len)
{
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    ck_assert_msg(n >= 0 && n < REQUEST_MAX, "testkit: request too long");
    char *text = xcalloc(1, (size_t)n + 1);
    vsnprintf(text, (size_t)n + 1, fmt, ap);
    *len = (size_t)n;
    return text;
}

json_t *chatd_testkit_request(struct chatd_testkit_session *s, const char *fmt, ...)
{
    va_list ap;
    size_t len;
    va_start(ap, fmt);
    char *text = vformat(fmt, ap, &len);
    va_end(ap);
    json_t *reply = chatd_testkit_request_raw(s, text, len);
    free(text);
    return reply;
}

static int has_push(void *arg)
{
    struct chatd_testkit_session *s = arg;
    return json_array_size(s->pushes) > s->pushes_taken || !s->client;
}

json_t *chatd_testkit_push(struct chatd_testkit_session *s)
{
    if (json_array_size(s->pushes) <= s->pushes_taken)
        run_until(s->kit, has_push, s, s->kit->timeout_ms);
    if (json_array_size(s->pushes) <= s->pushes_taken)
        return NULL;
    return json_array_get(s->pushes, s->pushes_taken++);
}

size_t chatd_testkit_pending_pushes(const struct chatd_testkit_session *s)
{
    return json_array_size(s->pushes) - s->pushes_taken;
}

const char *chatd_testkit_result(const json_t *reply)
{
    return json_string_value(json_object_get(reply, "result"));
}

const char *chatd_testkit_string(const json_t *msg, const char *key)
{
    return json_string_value(json_object_get(msg, key));
}

void chatd_testkit_check_reply_(const json_t *msg, const char *cmd, const char *result,
                                const char *file, int line)
{
    if (!msg)
        _ck_assert_failed(file, line, "Assertion failed", "expected %s/%s, got no message", cmd,
                          result ? result : "*");
    const char *got_cmd = json_string_value(json_object_get(msg, "cmd"));
    const char *got_result = chatd_testkit_result(msg);
    if (got_cmd && strcmp(got_cmd, cmd) == 0 &&
        (!result || (got_result && strcmp(got_result, result) == 0))) {
        _mark_point(file, line);
        return;
    }
    char *text = json_dumps(msg, JSON_COMPACT);
    _ck_assert_failed(file, line, "Assertion failed", "expected %s/%s, got %s", cmd,
                      result ? result : "*", text ? text : "?");
}

/* ---------------------------------------------------------------------------------
 * Settling, and hooks
 * ------------------------------------------------------------------------------- */

/* The plugin under test: the one named after the file, which the kit enables. */
static struct chatd_plugin *kit_plugin(struct chatd_testkit *kit)
{
    for (size_t i = 0; kit->srv && i < kit->srv->n_plugins; i++)
        if (strcmp(kit->srv->plugins[i]->name, kit->name) == 0)
            return kit->srv->plugins[i];
    return NULL;
}

/* No job left to finish, nothing queued by the host for a session whose client is
 * there, and nothing in a client's socket that the kit has not read. */
static int settled(void *arg)
{
    struct chatd_testkit *kit = arg;
    for (size_t i = 0; i < kit->srv->n_plugins; i++)
        if (kit->srv->plugins[i]->pending_jobs > 0)
            return 0;
    for (struct chatd_testkit_session *s = kit->sessions; s; s = s->next) {
        if (!s->client)
            continue;
        struct session *hs = host_session(s);
        if (hs && !hs->dead && (hs->flush.prev || session_output_pending(hs) > 0))
            return 0;
        int unread = 0;
        if (ioctl(bufferevent_getfd(s->client), FIONREAD, &unread) == 0 && unread > 0)
            return 0;
    }
    return 1;
}

int chatd_testkit_settle(struct chatd_testkit *kit)
{
    kit->error[0] = '\0';
    if (!kit->srv) {
        set_error(kit, "testkit: the kit has not started");
        return -1;
    }
    if (run_until(kit, settled, kit, kit->timeout_ms) < 0) {
        set_error(kit, "testkit: jobs or output still pending after %u ms", kit->timeout_ms);
        return -1;
    }
    return 0;
}

/* One chatd_testkit_run_hook waiting for its run's end. On the heap: when the kit
 * gives up waiting, the run's done may still come, and frees it. */
struct hook_wait {
    json_t *outcome; /* set by the done callback */
    int abandoned;
};

static void hook_done(const struct chatd_hook_outcome *outcome, json_t *payload, void *arg)
{
    struct hook_wait *w = arg;
    json_t *out = json_pack("{sbso}", "refused", outcome->refused != 0, "payload",
                            payload ? json_deep_copy(payload) : json_null());
    ck_assert_msg(out != NULL, "testkit: out of memory");
    if (outcome->refused) {
        json_object_set_new(out, "result",
                            outcome->result ? json_string(outcome->result) : json_null());
        json_object_set_new(out, "reason",
                            outcome->reason ? json_string(outcome->reason) : json_null());
    }
    if (w->abandoned) {
        json_decref(out);
        free(w);
        return;
    }
    w->outcome = out;
}

static int hook_over(void *arg)
{
    const struct hook_wait *w = arg;
    return w->outcome != NULL;
}

json_t *chatd_testkit_run_hook(struct chatd_testkit *kit, const char *hook, const char *fmt, ...)
{
    kit->error[0] = '\0';
    struct chatd_plugin *plugin = kit_plugin(kit);
    if (!plugin) {
        set_error(kit, "testkit: the kit has not started");
        return NULL;
    }
    if (!CHATD_HOST_HAS(&kit->table, hook_run) || !kit->table.hook_run) {
        set_error(kit,
                  "testkit: this chatd does not run hooks (no hook_run in its ABI %u.%u "
                  "host table)",
                  kit->table.abi_major, kit->table.abi_minor);
        return NULL;
    }
    va_list ap;
    size_t len;
    va_start(ap, fmt);
    char *text = vformat(fmt, ap, &len);
    va_end(ap);
    json_error_t error;
    json_t *payload = json_loadb(text, len, 0, &error);
    if (!json_is_object(payload)) {
        set_error(kit, "testkit: the payload is not a JSON object (%s): %.200s",
                  payload ? "another JSON value" : error.text, text);
        json_decref(payload);
        free(text);
        return NULL;
    }
    free(text);
    struct hook_wait *w = xcalloc(1, sizeof(*w));
    int rc = kit->table.hook_run(plugin, hook, payload, hook_done, w); /* takes payload */
    if (rc != 0) {
        set_error(kit, "testkit: hook_run(\"%s\"): %s", hook, chatd_strerror(rc));
        free(w); /* done is not called */
        return NULL;
    }
    if (run_until(kit, hook_over, w, kit->timeout_ms) < 0) {
        set_error(kit, "testkit: the run of hook point %s did not end within %u ms", hook,
                  kit->timeout_ms);
        w->abandoned = 1;
        return NULL;
    }
    json_t *outcome = w->outcome;
    free(w);
    json_array_append_new(kit->hook_outcomes, outcome); /* the kit keeps it until free */
    return outcome;
}

int chatd_testkit_hook_refused(const json_t *outcome)
{
    return json_is_true(json_object_get(outcome, "refused"));
}

/* ---------------------------------------------------------------------------------
 * Contract breaches and running suites
 * ------------------------------------------------------------------------------- */

void chatd_testkit_strict(struct chatd_testkit *kit, int on)
{
    kit->strict = on;
    if (!on)
        kit->n_reported = kit->n_violations;
}

size_t chatd_testkit_violations(const struct chatd_testkit *kit)
{
    return kit->n_violations;
}

const char *chatd_testkit_violation(const struct chatd_testkit *kit, size_t i)
{
    return i < kit->n_violations ? kit->violations[i] : NULL;
}

int chatd_testkit_run_suites(Suite *first, ...)
{
    SRunner *runner = srunner_create(first);
    va_list ap;
    va_start(ap, first);
    for (Suite *s; (s = va_arg(ap, Suite *)) != NULL;)
        srunner_add_suite(runner, s);
    va_end(ap);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
