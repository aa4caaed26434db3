/* cluster_suite.c - see cluster_suite.h. */
#include "cluster_suite.h"

#include "chatd_proc.h"
#include "client.h"
#include "haproxy_proc.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The test's cluster; each test runs in its own forked process. */
static struct cluster_nodes nodes;
static long long next_id = 1;
static unsigned next_marker;

/* ---- the cluster ---- */

void cluster_up(size_t n)
{
    cluster_nodes_init(&nodes, n, CLUSTER_LEASE_MS);
    cluster_nodes_start_all(&nodes);
}

void cluster_down(void)
{
    cluster_nodes_stop(&nodes);
}

struct cluster_nodes *cluster(void)
{
    return &nodes;
}

int cluster_suite_main(Suite *suite, int with_haproxy)
{
    const char *needed[] = {"redis-server", "haproxy"};
    char path[PATH_MAX];
    for (size_t i = 0; i < (with_haproxy ? 2u : 1u); i++)
        if (test_program_path(needed[i], path, sizeof(path)) < 0) {
            printf("SKIP: %s is not installed (scripts/common.sh installs it); the cluster "
                   "tests need it\n",
                   needed[i]);
            return 77;
        }
    return chatd_proc_run_suite(suite);
}

/* ---- clients ---- */

static struct peer *peer_wrap(struct test_client *c)
{
    struct peer *p = calloc(1, sizeof(*p));
    ck_assert_ptr_nonnull(p);
    p->c = c;
    p->pushes = json_array();
    p->messages = json_array();
    return p;
}

struct peer *peer_at(int port)
{
    struct test_client *c = test_client_connect("127.0.0.1", port, 0);
    ck_assert_msg(c != NULL, "cannot connect to 127.0.0.1:%d", port);
    struct peer *p = peer_wrap(c);
    p->port = port;
    return p;
}

struct peer *peer_on(size_t node)
{
    return peer_at(nodes.node[node].port);
}

void peer_close(struct peer *p)
{
    test_client_close(p->c);
    json_decref(p->pushes);
    json_decref(p->messages);
    free(p);
}

/* Keep one line the server sent: a message push (checked for seq order), another push,
 * or a reply (returned; the caller frees). */
static json_t *keep(struct peer *p, json_t *msg)
{
    const char *cmd = chatd_json_str(msg, "cmd");
    if (json_object_get(msg, "id"))
        return msg;
    if (strcmp(cmd, "private_chat_recv") == 0 || strcmp(cmd, "group_chat_recv") == 0) {
        json_t *seq = json_object_get(msg, "seq");
        ck_assert_msg(json_is_integer(seq), "%s: a message without seq: %s", p->user,
                      json_dumps(msg, JSON_COMPACT));
        ck_assert_msg(json_integer_value(seq) > p->last_seq,
                      "%s: seq %lld after %lld on one connection: %s", p->user,
                      (long long)json_integer_value(seq), p->last_seq,
                      json_dumps(msg, JSON_COMPACT));
        p->last_seq = json_integer_value(seq);
        json_array_append_new(p->messages, msg);
    } else {
        json_array_append_new(p->pushes, msg);
    }
    return NULL;
}

/* Read one line within timeout_ms and keep it. 1: a line was read (a reply goes to
 * *reply when reply is not NULL), 0: nothing in time, -1: the connection closed. */
static int read_one(struct peer *p, int timeout_ms, json_t **reply)
{
    if (p->eof)
        return -1;
    if (test_client_wait_readable(p->c, timeout_ms) <= 0)
        return 0;
    char line[TEST_CLIENT_BUF_SIZE];
    ssize_t n = test_client_read_line(p->c, line, sizeof(line), TEST_CLIENT_TIMEOUT_MS);
    if (n == TEST_CLIENT_EOF || (n == TEST_CLIENT_ERROR && p->c->reset)) {
        p->eof = 1;
        return -1;
    }
    ck_assert_msg(n > 0, "%s: no complete line (%zd)", p->user, n);
    json_error_t err;
    json_t *msg = json_loads(line, 0, &err);
    ck_assert_msg(json_is_object(msg), "%s: not a JSON object: %s", p->user, line);
    json_t *r = keep(p, msg);
    if (r && reply)
        *reply = r;
    else if (r)
        ck_abort_msg("%s: a reply nobody waits for: %s", p->user, line);
    return 1;
}

static long long vsend(struct peer *p, const char *fmt, va_list ap)
{
    json_error_t err;
    json_t *req = json_vpack_ex(&err, 0, fmt, ap);
    ck_assert_msg(req != NULL, "json_pack: %s", err.text);
    long long id = next_id++;
    json_object_set_new(req, "id", json_integer(id));
    ck_assert_msg(test_client_send_json(p->c, req) == 0, "%s: send failed", p->user);
    json_decref(req);
    return id;
}

long long peer_send(struct peer *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    long long id = vsend(p, fmt, ap);
    va_end(ap);
    return id;
}

json_t *peer_reply(struct peer *p, long long id)
{
    long long deadline = chatd_now_ms() + CLUSTER_WAIT_MS;
    for (;;) {
        json_t *reply = NULL;
        int got = read_one(p, 100, &reply);
        ck_assert_msg(got >= 0, "%s: the connection closed before the reply to %lld", p->user, id);
        if (reply) {
            ck_assert_msg(json_integer_value(json_object_get(reply, "id")) == id,
                          "%s: wanted the reply to %lld, got %s", p->user, id,
                          json_dumps(reply, JSON_COMPACT));
            return reply;
        }
        ck_assert_msg(chatd_now_ms() < deadline, "%s: no reply to %lld", p->user, id);
    }
}

json_t *peer_call(struct peer *p, const char *result, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    long long id = vsend(p, fmt, ap);
    va_end(ap);
    json_t *reply = peer_reply(p, id);
    if (result)
        ck_assert_msg(strcmp(chatd_json_str(reply, "result"), result) == 0, "%s: wanted %s, got %s",
                      p->user, result, json_dumps(reply, JSON_COMPACT));
    return reply;
}

void peer_drain(struct peer *p, int timeout_ms)
{
    long long deadline = chatd_now_ms() + timeout_ms;
    while (read_one(p, 0, NULL) > 0)
        ;
    while (chatd_now_ms() < deadline && read_one(p, 10, NULL) >= 0)
        ;
}

void peer_read_to_eof(struct peer *p)
{
    long long deadline = chatd_now_ms() + CLUSTER_WAIT_MS;
    while (read_one(p, 100, NULL) >= 0)
        ck_assert_msg(chatd_now_ms() < deadline, "%s: the connection stays open", p->user);
}

/* The index in p->pushes of a push of cmd whose key is value, or -1. */
static long find_push(const struct peer *p, const char *cmd, const char *key, const char *value)
{
    size_t i;
    json_t *msg;
    json_array_foreach(p->pushes, i, msg)
    {
        if (strcmp(chatd_json_str(msg, "cmd"), cmd) == 0 &&
            strcmp(chatd_json_str(msg, key), value) == 0)
            return (long)i;
    }
    return -1;
}

json_t *peer_wait_push_until(struct peer *p, const char *cmd, const char *key, const char *value,
                             long long deadline_ms)
{
    long at;
    while ((at = find_push(p, cmd, key, value)) < 0) {
        if (chatd_now_ms() >= deadline_ms || read_one(p, 20, NULL) < 0)
            return NULL;
    }
    json_t *msg = json_incref(json_array_get(p->pushes, (size_t)at));
    json_array_remove(p->pushes, (size_t)at);
    return msg;
}

json_t *peer_wait_push(struct peer *p, const char *cmd, const char *key, const char *value)
{
    json_t *msg = peer_wait_push_until(p, cmd, key, value, chatd_now_ms() + CLUSTER_WAIT_MS);
    ck_assert_msg(msg != NULL, "%s never got a %s with %s %s (pushes: %s)", p->user, cmd, key,
                  value, json_dumps(p->pushes, JSON_COMPACT));
    return msg;
}

int peer_has_push(struct peer *p, const char *cmd, const char *key, const char *value)
{
    peer_drain(p, 0);
    return find_push(p, cmd, key, value) >= 0;
}

static const json_t *find_message(const struct peer *p, const char *msg_id)
{
    size_t i;
    json_t *msg;
    json_array_foreach(p->messages, i, msg)
    {
        if (strcmp(chatd_json_str(msg, "msg_id"), msg_id) == 0)
            return msg;
    }
    return NULL;
}

const json_t *peer_wait_message(struct peer *p, const char *msg_id)
{
    long long deadline = chatd_now_ms() + CLUSTER_WAIT_MS;
    const json_t *msg;
    while (!(msg = find_message(p, msg_id))) {
        ck_assert_msg(read_one(p, 20, NULL) >= 0, "%s: closed before message %s", p->user, msg_id);
        ck_assert_msg(chatd_now_ms() < deadline, "%s never got message %s", p->user, msg_id);
    }
    return msg;
}

/* ---- users ---- */

void register_users(const char *const *users)
{
    struct peer *p = peer_on(0);
    for (size_t i = 0; users[i]; i++)
        json_decref(peer_call(p, "success", "{s:s, s:s, s:s}", "cmd", "register", "user", users[i],
                              "passwd", CLUSTER_PASSWD));
    peer_close(p);
}

static struct peer *login(struct peer *p, const char *user, json_t *fields)
{
    snprintf(p->user, sizeof(p->user), "%s", user);
    json_t *req =
        json_pack("{s:s, s:s, s:s}", "cmd", "login", "user", user, "passwd", CLUSTER_PASSWD);
    json_object_update(req, fields);
    json_decref(fields);
    json_decref(peer_call(p, "success", "O", req));
    json_decref(req);
    return p;
}

struct peer *login_on(size_t node, const char *user)
{
    return login(peer_on(node), user, json_object());
}

struct peer *login_device_at(int port, const char *user, const char *device, long long since)
{
    json_t *fields = json_pack("{s:s, s:b}", "device", device, "ack", 1);
    if (since >= 0)
        json_object_set_new(fields, "since", json_integer(since));
    return login(peer_at(port), user, fields);
}

void befriend_all(const char *const *users)
{
    for (size_t i = 0; users[i]; i++) {
        struct peer *p = login_on(0, users[i]);
        for (size_t j = i + 1; users[j]; j++)
            json_decref(
                peer_call(p, "success", "{s:s, s:s}", "cmd", "add_friend", "friend", users[j]));
        peer_close(p);
    }
}

/* The online flag of the entry `who` in reply[list], or -1. */
static int online_in(const json_t *reply, const char *list, const char *who)
{
    size_t i;
    json_t *entry;
    json_array_foreach(json_object_get(reply, list), i, entry)
    {
        if (strcmp(chatd_json_str(entry, "user"), who) == 0)
            return json_is_true(json_object_get(entry, "online"));
    }
    return -1;
}

int friend_online(struct peer *p, const char *who)
{
    json_t *reply = peer_call(p, "success", "{s:s}", "cmd", "friends");
    int online = online_in(reply, "friends", who);
    json_decref(reply);
    return online;
}

int member_online(struct peer *p, const char *group, const char *who)
{
    json_t *reply = peer_call(p, "success", "{s:s, s:s}", "cmd", "group_members", "group", group);
    int online = online_in(reply, "members", who);
    json_decref(reply);
    return online;
}

void wait_friend_online(struct peer *p, const char *who, int online)
{
    long long deadline = chatd_now_ms() + CLUSTER_WAIT_MS;
    while (friend_online(p, who) != online) {
        ck_assert_msg(chatd_now_ms() < deadline, "%s never saw %s %s", p->user, who,
                      online ? "online" : "offline");
        chatd_sleep_ms(20);
    }
}

/* ---- counting ---- */

json_t *ledger_new(void)
{
    return json_object();
}

int ledger_count(json_t *ledger, const json_t *reply, const char *const *to, const char *text)
{
    const char *result = chatd_json_str(reply, "result");
    if (strcmp(result, "success") != 0 && strcmp(result, "offline") != 0)
        return 0;
    const char *msg_id = chatd_json_str(reply, "msg_id");
    ck_assert_msg(*msg_id, "an accepted message without msg_id: %s",
                  json_dumps(reply, JSON_COMPACT));
    for (size_t i = 0; to[i]; i++) {
        json_t *mine = json_object_get(ledger, to[i]);
        if (!mine) {
            mine = json_object();
            json_object_set_new(ledger, to[i], mine);
        }
        ck_assert_msg(!json_object_get(mine, msg_id), "msg_id %s accepted twice", msg_id);
        json_object_set_new(mine, msg_id, json_string(text));
    }
    return 1;
}

const char *send_counted(json_t *ledger, struct peer *p, const char *to, const char *text)
{
    json_t *reply =
        peer_call(p, NULL, "{s:s, s:s, s:s}", "cmd", "private_chat", "user_to", to, "text", text);
    const char *const recipients[] = {to, NULL};
    ck_assert_msg(ledger_count(ledger, reply, recipients, text), "%s to %s: %s", p->user, to,
                  json_dumps(reply, JSON_COMPACT));
    /* The ledger holds the msg_id as a key; return that copy. */
    const char *key = NULL;
    void *iter = json_object_iter_at(json_object_get(ledger, to), chatd_json_str(reply, "msg_id"));
    key = json_object_iter_key(iter);
    json_decref(reply);
    return key;
}

/* How many times msg_id was received over the connections. */
static size_t times_received(struct peer *const *got, size_t n, const char *msg_id)
{
    size_t count = 0, i;
    json_t *msg;
    for (size_t k = 0; k < n; k++)
        json_array_foreach(got[k]->messages, i,
                           msg) if (strcmp(chatd_json_str(msg, "msg_id"), msg_id) == 0) count++;
    return count;
}

void wait_all_received(json_t *ledger, struct peer *p, struct peer *const *earlier, size_t n)
{
    struct peer *all[8];
    ck_assert_uint_lt(n, 8);
    for (size_t k = 0; k < n; k++)
        all[k] = earlier[k];
    all[n] = p;
    json_t *mine = json_object_get(ledger, p->user);
    long long deadline = chatd_now_ms() + CLUSTER_WAIT_MS;
    const char *msg_id;
    json_t *text;
    json_object_foreach(mine, msg_id, text)
    {
        while (times_received(all, n + 1, msg_id) == 0) {
            ck_assert_msg(read_one(p, 20, NULL) >= 0, "%s: closed while waiting for %s", p->user,
                          msg_id);
            ck_assert_msg(chatd_now_ms() < deadline,
                          "%s (connected to port %d) never got message %s (\"%s\"), "
                          "acknowledged to its sender",
                          p->user, p->port, msg_id, json_string_value(text));
        }
    }
}

void assert_exactly_once(json_t *ledger, const char *user, struct peer *const *got, size_t n)
{
    json_t *mine = json_object_get(ledger, user);
    const char *msg_id;
    json_t *text;
    size_t acknowledged = 0, received = 0;
    json_object_foreach(mine, msg_id, text)
    {
        size_t times = times_received(got, n, msg_id);
        ck_assert_msg(times == 1, "%s got message %s (\"%s\") %zu times, want once", user, msg_id,
                      json_string_value(text), times);
        acknowledged++;
    }
    for (size_t k = 0; k < n; k++) {
        size_t i;
        json_t *msg;
        json_array_foreach(got[k]->messages, i, msg)
        {
            ck_assert_msg(json_object_get(mine, chatd_json_str(msg, "msg_id")),
                          "%s got a message nobody was answered for: %s", user,
                          json_dumps(msg, JSON_COMPACT));
            received++;
        }
    }
    printf("%s: %zu messages acknowledged to senders, %zu received\n", user, acknowledged,
           received);
    ck_assert_uint_eq(acknowledged, received);
}

void settle(json_t *ledger, struct peer *sender, struct peer *p, struct peer *const *earlier,
            size_t n)
{
    wait_all_received(ledger, p, earlier, n);
    char text[64];
    snprintf(text, sizeof(text), "marker %u", next_marker++);
    peer_wait_message(p, send_counted(ledger, sender, p->user, text));
}

void settle_and_count(json_t *ledger, struct peer *sender, struct peer *p,
                      struct peer *const *earlier, size_t n)
{
    settle(ledger, sender, p, earlier, n);
    struct peer *all[8];
    ck_assert_uint_lt(n, 8);
    for (size_t k = 0; k < n; k++)
        all[k] = earlier[k];
    all[n] = p;
    assert_exactly_once(ledger, p->user, all, n + 1);
}

const char *numbered(char *out, const char *from, int k)
{
    snprintf(out, 64, "%s#%d", from, k);
    return out;
}

void assert_sender_order(struct peer *const *got, size_t n, const char *from)
{
    long last = -1;
    size_t len = strlen(from);
    for (size_t k = 0; k < n; k++) {
        size_t i;
        json_t *msg;
        json_array_foreach(got[k]->messages, i, msg)
        {
            const char *text = chatd_json_str(msg, "text");
            if (strcmp(chatd_json_str(msg, "user_from"), from) != 0 ||
                strncmp(text, from, len) != 0 || text[len] != '#')
                continue;
            long number = strtol(text + len + 1, NULL, 10);
            if (number <= last)
                fprintf(stderr, "%s's messages: %s\n", got[k]->user,
                        json_dumps(got[k]->messages, JSON_COMPACT));
            ck_assert_msg(number > last, "%s: \"%s\" came after %s#%ld", got[k]->user, text, from,
                          last);
            last = number;
        }
    }
}

void expect_presence(struct peer *p, const char *user, const char *status)
{
    json_t *msg = peer_wait_push(p, "presence", "user", user);
    ck_assert_msg(strcmp(chatd_json_str(msg, "status"), status) == 0, "%s: wanted %s %s, got %s",
                  p->user, user, status, json_dumps(msg, JSON_COMPACT));
    json_decref(msg);
}
