/* cluster_presence.c - the node's lease and users in Redis, and its replica of the
 * other nodes' users (cluster.h).
 *
 * Every change a node makes to its hash carries its change counter (seq, started at
 * the clock's microseconds so a new incarnation counts above the old one): the hash
 * holds it under the empty field, written in the same command (or MULTI) as the
 * change, and the change is published as "u <node> <seq> <count> <user>". Counts are
 * absolute, so applying one twice changes nothing, and a full read of a node's hash
 * (after a (re)connect, or when the node says "s <node> <seq>": I rewrote my hash)
 * never undoes a newer change that arrived before its reply: per user the replica keeps
 * the seq it was last set at, and a user removed while a read is in flight stays as a
 * tombstone (count 0) until the read is applied.
 *
 * A node whose lease key is gone is dropped by a Lua script that checks the lease and
 * deletes the hash atomically (so a node restarting meanwhile keeps its new hash), and
 * publishes "d <node>"; every node drops it from its replica on that message or on not
 * finding it in chatd:nodes at its next check.
 *
 * Crossed last logouts: a user's last session here ends while the replica still counts
 * one of theirs elsewhere, so this node leaves telling their friends to that node's last
 * logout. When both end at the same moment, each node sees the other's still there and
 * nobody would tell. Redis orders the two changes, and every node receives them in that
 * order, its own included: this node remembers its change (a crossing) until it comes
 * back. If the user goes offline everywhere before that, the other node's change came
 * first in Redis's order, so that node saw this one's session still there and told
 * nobody: this node, whose change came last, raises the logout. If its own change comes
 * back first, the other node's change is later in that order and the same rule is that
 * node's (or it saw this one gone and told the friends itself). So exactly one node
 * raises.
 *
 * Changes made while Redis is down: this node's sessions are told of them, by its own
 * view (other nodes' users count as offline then), and nobody else. So from the loss of
 * the link (or the start) the node keeps who was online in its view then and which
 * users' sessions here changed; a lease after the link is back, when every node has
 * written its users again, each of those users whose presence in the cluster is not
 * what it was has the change raised here: a logout when they are offline everywhere, a
 * login when they are online here. (This node's own sessions are told a second time.)
 * A change here while the link is up in that lease is told as usual and updates what
 * the others were told. */
#include "cluster.h"

#include "clock.h"
#include "cluster_link.h"
#include "log.h"
#include "server.h"
#include "users.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/util.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define NODES_KEY   "chatd:nodes"
#define ALL_CHANNEL "chatd:all"
/* The other nodes' leases are checked every CHECK_MS (less with a short lease), and a
 * lease key lives lease_ms minus that, so a dead node is found within lease_ms. */
#define CHECK_MS 1000
/* Users per HSET when the whole hash is written. */
#define HSET_CHUNK 500

/* The lease is this node's to take when nobody holds it or this incarnation does:
 * 1 taken, 0 held by another incarnation (a node of the same name still running, or
 * this node's previous run, until its lease lapses), 2 free but the previous run's
 * hash still there (unless ARGV[3] is "1"): another node's check is about to drop it
 * and tell its users' friends they are offline, which this node lets happen first. */
static const char claim_script[] = "local v = redis.call('GET', KEYS[1]) "
                                   "if v and v ~= ARGV[1] then return 0 end "
                                   "if not v and ARGV[3] ~= '1' and "
                                   "redis.call('EXISTS', KEYS[2]) == 1 then return 2 end "
                                   "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) "
                                   "return 1";
/* Extends the lease only while this incarnation holds it: 1 extended, 0 lapsed,
 * -1 taken by another incarnation. */
static const char renew_script[] = "local v = redis.call('GET', KEYS[1]) "
                                   "if not v then return 0 end "
                                   "if v ~= ARGV[1] then return -1 end "
                                   "redis.call('PEXPIRE', KEYS[1], ARGV[2]) "
                                   "return 1";
/* Returns 0 when the node holds its lease, else the users its hash held. */
static const char drop_script[] = "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end "
                                  "local users = redis.call('HKEYS', KEYS[2]) "
                                  "redis.call('DEL', KEYS[2]) "
                                  "redis.call('SREM', KEYS[3], ARGV[1]) "
                                  "redis.call('PUBLISH', ARGV[2], 'd ' .. ARGV[1]) "
                                  "return users";

struct remote_user {
    char *name;
    uint64_t count; /* 0: a tombstone, while a read of the node is in flight */
    uint64_t seq;
    UT_hash_handle hh;
};

/* This node's last session of `user` ended while another node had one, at change seq. */
struct crossing {
    char *user;
    uint64_t seq;
    UT_hash_handle hh;
};

/* A set of user names. */
struct name {
    char *name;
    UT_hash_handle hh;
};

struct remote_node {
    char *name;
    uint64_t applied; /* the highest of its change counters applied here */
    struct remote_user *users;
    unsigned reads; /* full reads in flight */
    int listed;     /* found in chatd:nodes by the last check */
    struct remote_node *next;
};

struct cluster {
    struct server *srv;
    struct cluster_link *link;
    const char *node; /* srv->cfg->cluster.node */
    char lease_key[64], users_key[64], channel[64];
    char incarnation[33];
    uint64_t seq;
    int64_t lease_ms;
    int64_t check_ms;   /* min(CHECK_MS, lease_ms / 10) */
    char lease_ttl[24]; /* the lease key's time to live, ms: lease_ms - check_ms */
    int64_t up_at_ms;   /* when the link last came up (monotonic) */
    struct event *renew_ev, *check_ev;
    int renew_pending;
    int registered;        /* this incarnation holds the lease and wrote its hash */
    int claim_pending;     /* a claim of the lease is in flight */
    int64_t refused_at_ms; /* when a claim first found the lease held by another */
    int stale_seen;        /* a claim found the previous run's hash: the next one takes it */
    int lapsed;            /* the lease lapsed while this node ran: the others dropped its users */
    struct remote_node *nodes;
    struct crossing *crossings; /* by user */
    /* Since the link was lost (or the start), until a lease after it is back: */
    int outage;
    struct name *before;  /* users online in this node's view when it was lost */
    struct name *touched; /* users whose sessions here changed meanwhile */
    struct event *outage_ev;
    cluster_receive_fn receive;
    void *receive_arg;
    cluster_presence_fn presence;
    void *presence_arg;
    uint64_t published, received, nodes_dropped;
};

/* A command about one other node (a full read, a lease check), until it is answered. */
struct node_call {
    struct cluster *c;
    char *node;
};

static int command(struct cluster *c, cluster_reply_fn done, void *arg, int argc, const char **argv)
{
    size_t lens[16];
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    return cluster_link_command(c->link, done, arg, argc, argv, lens);
}

static struct remote_node *node_find(struct cluster *c, const char *name, size_t len)
{
    for (struct remote_node *n = c->nodes; n; n = n->next)
        if (strlen(n->name) == len && memcmp(n->name, name, len) == 0)
            return n;
    return NULL;
}

static struct remote_node *node_get(struct cluster *c, const char *name, size_t len)
{
    struct remote_node *n = node_find(c, name, len);
    if (n)
        return n;
    if (!(n = calloc(1, sizeof(*n))) || !(n->name = strndup(name, len))) {
        free(n);
        return NULL;
    }
    n->next = c->nodes;
    c->nodes = n;
    return n;
}

static uint64_t remote_count(const struct cluster *c, const char *user)
{
    uint64_t total = 0;
    for (const struct remote_node *n = c->nodes; n; n = n->next) {
        struct remote_user *u;
        HASH_FIND_STR(n->users, user, u);
        if (u)
            total += u->count;
    }
    return total;
}

static int online(struct cluster *c, const char *user)
{
    return users_find(c->srv, user) != NULL || remote_count(c, user) > 0;
}

static int name_in(struct name *set, const char *user)
{
    struct name *n;
    HASH_FIND_STR(set, user, n);
    return n != NULL;
}

static void name_add(struct name **set, const char *user)
{
    struct name *n = name_in(*set, user) ? NULL : calloc(1, sizeof(*n));
    if (n && (n->name = strdup(user))) {
        HASH_ADD_KEYPTR(hh, *set, n->name, strlen(n->name), n);
        return;
    }
    if (n)
        log_error("cluster: out of memory: if %s's presence changes while Redis is down, the "
                  "other nodes' sessions are not told",
                  user);
    free(n);
}

static void name_remove(struct name **set, const char *user)
{
    struct name *n;
    HASH_FIND_STR(*set, user, n);
    if (!n)
        return;
    HASH_DEL(*set, n);
    free(n->name);
    free(n);
}

static void names_free(struct name **set)
{
    struct name *n, *tmp;
    HASH_ITER (hh, *set, n, tmp) {
        HASH_DEL(*set, n);
        free(n->name);
        free(n);
    }
}

static void crossing_forget(struct cluster *c, const char *user)
{
    struct crossing *x;
    HASH_FIND_STR(c->crossings, user, x);
    if (!x)
        return;
    HASH_DEL(c->crossings, x);
    free(x->user);
    free(x);
}

static void crossings_forget_all(struct cluster *c)
{
    struct crossing *x, *tmp;
    HASH_ITER (hh, c->crossings, x, tmp) {
        HASH_DEL(c->crossings, x);
        free(x->user);
        free(x);
    }
}

/* This node's last session of user ended at change seq: remember it while the replica
 * counts a session of theirs elsewhere (see the top of the file). */
static void crossing_note(struct cluster *c, const char *user, uint64_t seq)
{
    crossing_forget(c, user);
    if (remote_count(c, user) == 0)
        return;
    struct crossing *x = calloc(1, sizeof(*x));
    if (!x || !(x->user = strdup(user))) {
        free(x);
        log_error("cluster: %s's last session here ended with one elsewhere, out of memory: "
                  "if that one ends at the same moment, nobody tells their friends",
                  user);
        return;
    }
    x->seq = seq;
    HASH_ADD_KEYPTR(hh, c->crossings, x->user, strlen(x->user), x);
}

/* This node's change seq of user came back from Redis. */
static void crossing_echo(struct cluster *c, const char *user, uint64_t seq)
{
    struct crossing *x;
    HASH_FIND_STR(c->crossings, user, x);
    if (x && x->seq == seq)
        crossing_forget(c, user);
}

/* user is offline everywhere now, through another node's change. */
static void went_offline(struct cluster *c, const char *user)
{
    struct crossing *x;
    HASH_FIND_STR(c->crossings, user, x);
    enum cluster_raise raise = x ? CLUSTER_RAISE_CROSSED : CLUSTER_RAISE_NONE;
    crossing_forget(c, user);
    if (c->presence)
        c->presence(c->srv, user, 0, raise, c->presence_arg);
}

/* Tell the listener when user's presence in the cluster is not what it was. */
static void presence_after(struct cluster *c, const char *user, int before)
{
    int now = online(c, user);
    if (now == before)
        return;
    if (!now)
        went_offline(c, user);
    else if (c->presence)
        c->presence(c->srv, user, 1, CLUSTER_RAISE_NONE, c->presence_arg);
}

static void user_remove(struct remote_node *n, struct remote_user *u)
{
    HASH_DEL(n->users, u);
    free(u->name);
    free(u);
}

/* Set user's count on node n at seq (0: gone), unless the replica knows a later one. */
static void user_set(struct cluster *c, struct remote_node *n, const char *user, size_t len,
                     uint64_t count, uint64_t seq)
{
    char *name = strndup(user, len);
    if (!name)
        return;
    struct remote_user *u;
    HASH_FIND_STR(n->users, name, u);
    if (u && u->seq >= seq) {
        free(name);
        return;
    }
    int before = online(c, name);
    if (!u && (count > 0 || n->reads)) {
        if (!(u = calloc(1, sizeof(*u)))) {
            free(name);
            return;
        }
        u->name = strdup(name);
        if (!u->name) {
            free(u);
            free(name);
            return;
        }
        HASH_ADD_KEYPTR(hh, n->users, u->name, strlen(u->name), u);
    }
    if (u && count == 0 && !n->reads) {
        user_remove(n, u);
    } else if (u) {
        u->count = count;
        u->seq = seq;
    }
    presence_after(c, name, before);
    free(name);
}

static void node_drop(struct cluster *c, struct remote_node *n)
{
    for (struct remote_node **at = &c->nodes; *at; at = &(*at)->next) {
        if (*at == n) {
            *at = n->next;
            break;
        }
    }
    struct remote_user *u, *tmp;
    HASH_ITER (hh, n->users, u, tmp) {
        HASH_DEL(n->users, u);
        if (u->count > 0 && !online(c, u->name))
            went_offline(c, u->name);
        free(u->name);
        free(u);
    }
    free(n->name);
    free(n);
}

static void drop_all(struct cluster *c)
{
    while (c->nodes)
        node_drop(c, c->nodes);
}

/* A full read of one node's hash: the users at the hash's seq. A hash that is gone
 * means the node is. */
static void on_node_read(redisReply *r, void *arg)
{
    struct node_call *rd = arg;
    struct cluster *c = rd->c;
    struct remote_node *n = r ? node_find(c, rd->node, strlen(rd->node)) : NULL;
    if (n)
        n->reads--;
    if (n && r->type == REDIS_REPLY_ARRAY && r->elements == 0) {
        node_drop(c, n);
    } else if (n && r->type == REDIS_REPLY_ARRAY && r->elements % 2 == 0) {
        uint64_t seq = 0;
        for (size_t i = 0; i < r->elements; i += 2)
            if (r->element[i]->len == 0)
                seq = strtoull(r->element[i + 1]->str, NULL, 10);
        if (seq > n->applied)
            n->applied = seq;
        /* Users the read does not hold, set at or before it, are gone. */
        struct remote_user *u, *tmp;
        HASH_ITER (hh, n->users, u, tmp) {
            if (u->seq > seq)
                continue;
            int listed = 0;
            for (size_t i = 0; !listed && i < r->elements; i += 2)
                listed = r->element[i]->len == strlen(u->name) &&
                         memcmp(r->element[i]->str, u->name, r->element[i]->len) == 0;
            if (!listed) {
                char *name = u->name;
                u->name = NULL;
                int before = online(c, name);
                HASH_DEL(n->users, u);
                free(u);
                presence_after(c, name, before);
                free(name);
            }
        }
        for (size_t i = 0; i < r->elements; i += 2)
            if (r->element[i]->len > 0)
                user_set(c, n, r->element[i]->str, r->element[i]->len,
                         strtoull(r->element[i + 1]->str, NULL, 10), seq);
        /* Tombstones have done their work once no read is in flight. */
        HASH_ITER (hh, n->users, u, tmp)
            if (!n->reads && u->count == 0)
                user_remove(n, u);
    }
    free(rd->node);
    free(rd);
}

static void read_node(struct cluster *c, const char *name, size_t len)
{
    struct remote_node *n = node_get(c, name, len);
    struct node_call *rd = malloc(sizeof(*rd));
    char key[96];
    snprintf(key, sizeof(key), "chatd:users:%.*s", (int)len, name);
    const char *argv[] = {"HGETALL", key};
    if (!n || !rd || !(rd->node = strndup(name, len))) {
        free(rd);
        return;
    }
    rd->c = c;
    if (command(c, on_node_read, rd, 2, argv) < 0) {
        free(rd->node);
        free(rd);
        return;
    }
    n->reads++;
}

static void on_drop_script(redisReply *r, void *arg)
{
    struct node_call *rd = arg;
    struct cluster *c = rd->c;
    if (r && r->type == REDIS_REPLY_ARRAY) {
        c->nodes_dropped++;
        log_info("cluster: node %s lost its lease: its users are offline", rd->node);
        /* This node raises their logout below: not a second time as a crossing. */
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *u = r->element[i];
            char *name = u->type == REDIS_REPLY_STRING ? strndup(u->str, u->len) : NULL;
            if (name)
                crossing_forget(c, name);
            free(name);
        }
        struct remote_node *n = node_find(c, rd->node, strlen(rd->node));
        if (n)
            node_drop(c, n);
        /* Its "d" may have come first and dropped it already: this node raises their
         * logout either way, being the one whose script dropped it. */
        for (size_t i = 0; c->presence && i < r->elements; i++) {
            const redisReply *u = r->element[i];
            if (u->type != REDIS_REPLY_STRING || u->len == 0)
                continue;
            char *name = strndup(u->str, u->len);
            if (name && !online(c, name))
                c->presence(c->srv, name, 0, CLUSTER_RAISE_NODE_LOST, c->presence_arg);
            free(name);
        }
    } else if (r && r->type == REDIS_REPLY_ERROR) {
        log_warn("cluster: the lease check failed: %s", r->str);
    }
    free(rd->node);
    free(rd);
}

/* The check: drop nodes whose lease is gone, read nodes the replica misses, forget
 * those no longer listed. */
static void on_members(redisReply *r, void *arg)
{
    struct cluster *c = arg;
    if (!r || r->type != REDIS_REPLY_ARRAY)
        return;
    for (struct remote_node *n = c->nodes; n; n = n->next)
        n->listed = 0;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *m = r->element[i];
        if (m->type != REDIS_REPLY_STRING ||
            (m->len == strlen(c->node) && memcmp(m->str, c->node, m->len) == 0))
            continue;
        if (!node_find(c, m->str, m->len))
            read_node(c, m->str, m->len);
        struct remote_node *n = node_find(c, m->str, m->len);
        if (n)
            n->listed = 1;
        struct node_call *rd = malloc(sizeof(*rd));
        if (!rd || !(rd->node = strndup(m->str, m->len))) {
            free(rd);
            continue;
        }
        rd->c = c;
        char lease[96], users[96];
        snprintf(lease, sizeof(lease), "chatd:node:%s", rd->node);
        snprintf(users, sizeof(users), "chatd:users:%s", rd->node);
        const char *argv[] = {"EVAL", drop_script, "3",      lease,
                              users,  NODES_KEY,   rd->node, ALL_CHANNEL};
        if (command(c, on_drop_script, rd, 8, argv) < 0) {
            free(rd->node);
            free(rd);
        }
    }
    for (struct remote_node *n = c->nodes, *next; n; n = next) {
        next = n->next;
        if (!n->listed && !n->reads)
            node_drop(c, n);
    }
}

static void on_check(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct cluster *c = arg;
    const char *argv[] = {"SMEMBERS", NODES_KEY};
    command(c, on_members, c, 2, argv);
}

static void publish_all(struct cluster *c, const char *text)
{
    const char *argv[] = {"PUBLISH", ALL_CHANNEL, text};
    if (command(c, NULL, NULL, 3, argv) == 0)
        c->published++;
}

static void on_registered(redisReply *r, void *arg)
{
    struct cluster *c = arg;
    if (r && r->type != REDIS_REPLY_ARRAY)
        cluster_link_fail(c->link, r->type == REDIS_REPLY_ERROR ? r->str : "EXEC failed");
}

/* Write this node's whole hash, lease and membership in one transaction, then tell
 * the others to read it. Only once the lease is claimed: two nodes of one name would
 * overwrite each other's users. */
static void write_node(struct cluster *c)
{
    char seq[24];
    snprintf(seq, sizeof(seq), "%" PRIu64, ++c->seq);
    const char *multi[] = {"MULTI"};
    const char *del[] = {"DEL", c->users_key};
    command(c, NULL, NULL, 1, multi);
    command(c, NULL, NULL, 2, del);
    const char *argv[4 + 2 * HSET_CHUNK];
    size_t lens[4 + 2 * HSET_CHUNK];
    char counts[HSET_CHUNK][24];
    int argc = 0;
    struct user *u = c->srv->users;
    do {
        argc = 0;
        argv[argc++] = "HSET";
        argv[argc++] = c->users_key;
        argv[argc++] = "";
        argv[argc++] = seq;
        for (size_t k = 0; u && k < HSET_CHUNK; k++, u = u->hh.next) {
            snprintf(counts[k], sizeof(counts[k]), "%zu", u->n_sessions);
            argv[argc++] = u->name;
            argv[argc++] = counts[k];
        }
        for (int i = 0; i < argc; i++)
            lens[i] = strlen(argv[i]);
        cluster_link_command(c->link, NULL, NULL, argc, argv, lens);
    } while (u);
    const char *set[] = {"SET", c->lease_key, c->incarnation, "PX", c->lease_ttl};
    const char *sadd[] = {"SADD", NODES_KEY, c->node};
    const char *exec[] = {"EXEC"};
    command(c, NULL, NULL, 5, set);
    command(c, NULL, NULL, 3, sadd);
    command(c, on_registered, c, 1, exec);
    char text[96];
    snprintf(text, sizeof(text), "s %s %s", c->node, seq);
    publish_all(c, text);
    c->registered = 1;
}

/* Back after a lapse: the node that dropped this one told its users' friends they
 * were offline (those with no session elsewhere); they are online again. */
static void raise_returned(struct cluster *c)
{
    c->lapsed = 0;
    struct name *back = NULL, *n, *tmp;
    for (struct user *u = c->srv->users; u; u = u->hh.next)
        if (remote_count(c, u->name) == 0)
            name_add(&back, u->name);
    HASH_ITER (hh, back, n, tmp)
        if (c->presence && users_find(c->srv, n->name))
            c->presence(c->srv, n->name, 1, CLUSTER_RAISE_OUTAGE, c->presence_arg);
    names_free(&back);
}

static void on_claimed(redisReply *r, void *arg)
{
    struct cluster *c = arg;
    if (!r)
        return;
    c->claim_pending = 0;
    if (r->type == REDIS_REPLY_INTEGER && r->integer == 1) {
        if (c->refused_at_ms)
            log_warn("cluster: node %s holds its lease again; registering", c->node);
        c->refused_at_ms = 0;
        c->stale_seen = 0;
        write_node(c);
        if (c->lapsed)
            raise_returned(c);
        return;
    }
    if (r->type != REDIS_REPLY_INTEGER) {
        cluster_link_fail(c->link, r->type == REDIS_REPLY_ERROR ? r->str : "lease claim failed");
        return;
    }
    if (r->integer == 2) {
        c->stale_seen = 1;
        return;
    }
    /* Held by another incarnation: this node's previous run (its lease lapses within
     * lease_ms) or another running chatd with the same [cluster] node. Meanwhile this
     * node's users are not in Redis, so other nodes store what they send them. */
    int64_t now = now_ns() / 1000000;
    if (!c->refused_at_ms) {
        c->refused_at_ms = now;
        log_warn("cluster: the lease of node %s is held by another incarnation (this node's "
                 "previous run, until its lease lapses); waiting for it",
                 c->node);
    } else if (now - c->refused_at_ms > c->lease_ms + c->check_ms) {
        c->refused_at_ms = now;
        log_error("cluster: another chatd is running as node %s (its lease is renewed): give "
                  "each node its own [cluster] node; this one stays out of the cluster",
                  c->node);
    }
}

/* Claim the lease, then write the hash (on_claimed); retried at every renewal tick
 * while another incarnation holds it. */
static void register_node(struct cluster *c)
{
    if (c->claim_pending)
        return;
    c->registered = 0;
    const char *argv[] = {"EVAL",       claim_script,   "2",          c->lease_key,
                          c->users_key, c->incarnation, c->lease_ttl, c->stale_seen ? "1" : "0"};
    if (command(c, on_claimed, c, 8, argv) == 0)
        c->claim_pending = 1;
}

static void on_renewed(redisReply *r, void *arg)
{
    struct cluster *c = arg;
    if (!r)
        return;
    c->renew_pending = 0;
    if (r->type == REDIS_REPLY_INTEGER && r->integer == 0) {
        /* The lease lapsed and the others dropped this node: write it all again. */
        log_warn("cluster: this node's lease had lapsed; registering again");
        c->lapsed = 1;
        register_node(c);
    } else if (r->type == REDIS_REPLY_INTEGER && r->integer < 0) {
        log_error("cluster: the lease of node %s was taken by another incarnation while "
                  "this one's had lapsed: is another chatd running as node %s?",
                  c->node, c->node);
        c->lapsed = 1;
        register_node(c);
    } else if (r->type == REDIS_REPLY_ERROR) {
        cluster_link_fail(c->link, r->str);
    }
}

static void on_renew(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct cluster *c = arg;
    struct cluster_link_stats st;
    cluster_link_get_stats(c->link, &st);
    if (!st.up)
        return;
    if (!c->registered) {
        register_node(c);
        return;
    }
    if (c->renew_pending) {
        /* Redis took a third of the lease without answering: the others will soon
         * count this node as gone; a fresh connection registers it again. */
        cluster_link_fail(c->link, "the lease renewal was not answered in time");
        return;
    }
    const char *argv[] = {"EVAL", renew_script, "1", c->lease_key, c->incarnation, c->lease_ttl};
    if (command(c, on_renewed, c, 6, argv) == 0)
        c->renew_pending = 1;
}

static void on_up(void *arg)
{
    struct cluster *c = arg;
    c->renew_pending = 0;
    c->claim_pending = 0;
    c->up_at_ms = now_ns() / 1000000;
    register_node(c);
    /* Subscribed before reading: no change is missed between the two. */
    on_check(-1, 0, c);
    struct timeval lease = {(time_t)(c->lease_ms / 1000), (suseconds_t)(c->lease_ms % 1000) * 1000};
    if (c->outage)
        event_add(c->outage_ev, &lease);
}

/* The link is lost: note who is online in this node's view, unless an earlier loss
 * whose changes are not raised yet did (the others heard nothing since). */
static void outage_begin(struct cluster *c)
{
    event_del(c->outage_ev);
    if (c->outage)
        return;
    c->outage = 1;
    for (struct user *u = c->srv->users; u; u = u->hh.next)
        name_add(&c->before, u->name);
    for (const struct remote_node *n = c->nodes; n; n = n->next) {
        const struct remote_user *u, *tmp;
        HASH_ITER (hh, n->users, u, tmp)
            if (u->count > 0)
                name_add(&c->before, u->name);
    }
}

/* A lease after the link came back: raise what changed here meanwhile. */
static void on_outage_over(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct cluster *c = arg;
    /* Taken out first: what the raises make plugins do is told as usual. */
    struct name *touched = c->touched, *before = c->before, *n, *tmp;
    c->touched = c->before = NULL;
    c->outage = 0;
    HASH_ITER (hh, touched, n, tmp) {
        int was = name_in(before, n->name), now = online(c, n->name);
        /* Online elsewhere only: that node raises it (it changed there too) or it was. */
        if (now != was && c->presence && (!now || users_find(c->srv, n->name)))
            c->presence(c->srv, n->name, now, CLUSTER_RAISE_OUTAGE, c->presence_arg);
    }
    names_free(&touched);
    names_free(&before);
}

static void on_down(void *arg)
{
    struct cluster *c = arg;
    c->renew_pending = 0;
    c->claim_pending = 0;
    c->registered = 0;
    outage_begin(c);
    /* Their changes may never come back: nobody is offline through them. */
    crossings_forget_all(c);
    drop_all(c);
}

/* "u <node> <seq> <count> <user>", "s <node> <seq>", "d <node>". */
static void on_all(struct cluster *c, const char *p, size_t len)
{
    const char *end = p + len;
    if (len < 3 || p[1] != ' ')
        return;
    char kind = p[0];
    const char *node = p + 2;
    const char *node_end = memchr(node, ' ', (size_t)(end - node));
    size_t node_len = (size_t)((node_end ? node_end : end) - node);
    int own = node_len == strlen(c->node) && memcmp(node, c->node, node_len) == 0;
    if (own && kind != 'u')
        return;
    if (kind == 'd') {
        struct remote_node *n = node_find(c, node, node_len);
        if (n)
            node_drop(c, n);
        return;
    }
    if (kind == 's') {
        read_node(c, node, node_len);
        return;
    }
    if (kind != 'u' || !node_end)
        return;
    char fields[64];
    size_t flen = (size_t)(end - node_end - 1);
    memcpy(fields, node_end + 1, flen < sizeof(fields) - 1 ? flen : sizeof(fields) - 1);
    fields[flen < sizeof(fields) - 1 ? flen : sizeof(fields) - 1] = '\0';
    unsigned long long seq, count;
    int user_at = 0;
    if (sscanf(fields, "%llu %llu %n", &seq, &count, &user_at) != 2 || user_at == 0)
        return;
    const char *user = node_end + 1 + user_at;
    if (own) {
        char *name = user < end ? strndup(user, (size_t)(end - user)) : NULL;
        if (name)
            crossing_echo(c, name, seq);
        free(name);
        return;
    }
    struct remote_node *n = user < end ? node_get(c, node, node_len) : NULL;
    if (n) {
        user_set(c, n, user, (size_t)(end - user), count, seq);
        if (seq > n->applied)
            n->applied = seq;
    }
}

static void on_message(void *arg, const char *channel, size_t channel_len, const char *payload,
                       size_t len)
{
    struct cluster *c = arg;
    c->received++;
    if (channel_len == strlen(c->channel) && memcmp(channel, c->channel, channel_len) == 0) {
        if (c->receive)
            c->receive(c->srv, payload, len, c->receive_arg);
        return;
    }
    on_all(c, payload, len);
}

void cluster_local_sessions(struct server *srv, const char *user, size_t local)
{
    struct cluster *c = srv->cluster;
    if (!c)
        return;
    struct cluster_link_stats st;
    cluster_link_get_stats(c->link, &st);
    if (!st.up || !c->registered) {
        crossing_forget(c, user);
        name_add(&c->touched, user);
        return; /* written whole when the link is back and the lease is this node's */
    }
    if (c->outage) { /* told as usual: what the others now know */
        name_remove(&c->touched, user);
        if (local > 0 || remote_count(c, user) > 0)
            name_add(&c->before, user);
        else
            name_remove(&c->before, user);
    }
    char seq[24], count[24];
    snprintf(seq, sizeof(seq), "%" PRIu64, ++c->seq);
    if (local == 0)
        crossing_note(c, user, c->seq);
    else
        crossing_forget(c, user);
    snprintf(count, sizeof(count), "%zu", local);
    if (local > 0) {
        const char *argv[] = {"HSET", c->users_key, user, count, "", seq};
        command(c, NULL, NULL, 6, argv);
    } else {
        const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"};
        const char *hdel[] = {"HDEL", c->users_key, user};
        const char *hset[] = {"HSET", c->users_key, "", seq};
        command(c, NULL, NULL, 1, multi);
        command(c, NULL, NULL, 3, hdel);
        command(c, NULL, NULL, 4, hset);
        command(c, NULL, NULL, 1, exec);
    }
    size_t n = strlen(c->node) + strlen(user) + 64;
    char *text = malloc(n);
    if (!text)
        return;
    snprintf(text, n, "u %s %s %s %s", c->node, seq, count, user);
    publish_all(c, text);
    free(text);
}

size_t cluster_remote_sessions(const struct server *srv, const char *user)
{
    return srv->cluster && user ? (size_t)remote_count(srv->cluster, user) : 0;
}

size_t cluster_user_nodes(const struct server *srv, const char *user, const char **nodes,
                          size_t cap)
{
    size_t found = 0;
    for (const struct remote_node *n = srv->cluster && user ? srv->cluster->nodes : NULL; n;
         n = n->next) {
        struct remote_user *u;
        HASH_FIND_STR(n->users, user, u);
        if (!u || u->count == 0)
            continue;
        if (found < cap)
            nodes[found] = n->name;
        found++;
    }
    return found;
}

size_t cluster_nodes(const struct server *srv, const char **nodes, size_t cap)
{
    size_t found = 0;
    for (const struct remote_node *n = srv->cluster ? srv->cluster->nodes : NULL; n; n = n->next) {
        if (found < cap)
            nodes[found] = n->name;
        found++;
    }
    return found;
}

uint64_t cluster_change_seq(const struct server *srv)
{
    return srv->cluster ? srv->cluster->seq : 0;
}

uint64_t cluster_node_applied(const struct server *srv, const char *node)
{
    const struct remote_node *n =
        srv->cluster && node ? node_find(srv->cluster, node, strlen(node)) : NULL;
    return n ? n->applied : 0;
}

int cluster_publish(struct server *srv, const char *node, const char *payload, size_t len)
{
    struct cluster *c = srv->cluster;
    if (!c || !node)
        return -1;
    char channel[96];
    snprintf(channel, sizeof(channel), "chatd:node:%s", node);
    const char *argv[] = {"PUBLISH", channel, payload};
    const size_t lens[] = {7, strlen(channel), len};
    if (cluster_link_command(c->link, NULL, NULL, 3, argv, lens) < 0)
        return -1;
    c->published++;
    return 0;
}

void cluster_on_receive(struct server *srv, cluster_receive_fn fn, void *arg)
{
    if (srv->cluster) {
        srv->cluster->receive = fn;
        srv->cluster->receive_arg = arg;
    }
}

void cluster_on_presence(struct server *srv, cluster_presence_fn fn, void *arg)
{
    if (srv->cluster) {
        srv->cluster->presence = fn;
        srv->cluster->presence_arg = arg;
    }
}

int cluster_redis_up(const struct server *srv)
{
    if (!srv->cluster)
        return 1;
    struct cluster_link_stats st;
    cluster_link_get_stats(srv->cluster->link, &st);
    return st.up;
}

int cluster_presence_known(const struct server *srv)
{
    const struct cluster *c = srv->cluster;
    return !c || (cluster_redis_up(srv) && now_ns() / 1000000 - c->up_at_ms >= c->lease_ms);
}

void cluster_render_metrics(const struct server *srv, struct evbuffer *out)
{
    const struct cluster *c = srv->cluster;
    if (!c)
        return;
    struct cluster_link_stats st;
    cluster_link_get_stats(c->link, &st);
    size_t nodes = 0, users = 0;
    for (const struct remote_node *n = c->nodes; n; n = n->next) {
        nodes++;
        const struct remote_user *u, *tmp;
        HASH_ITER (hh, n->users, u, tmp)
            users += u->count > 0;
    }
    metrics_gauge(out, "chatd_cluster_redis_up", "1 while the link to Redis is up.", st.up);
    metrics_counter(out, "chatd_cluster_reconnects_total",
                    "Times the link to Redis came back after a loss.", st.reconnects);
    metrics_counter(out, "chatd_cluster_connect_failures_total",
                    "Attempts to connect to Redis that failed or timed out.", st.connect_failures);
    metrics_counter(out, "chatd_cluster_published_total", "Messages published to Redis.",
                    c->published);
    metrics_counter(out, "chatd_cluster_received_total",
                    "Messages received from Redis (presence and for this node).", c->received);
    metrics_counter(out, "chatd_cluster_nodes_dropped_total",
                    "Other nodes this node found without a lease and dropped.", c->nodes_dropped);
    metrics_gauge(out, "chatd_cluster_nodes", "Other nodes in this node's replica.", (double)nodes);
    metrics_gauge(out, "chatd_cluster_remote_users",
                  "Users online on other nodes, counted once per node.", (double)users);
}

int cluster_start(struct server *srv, char *err, size_t errlen)
{
    const struct config_cluster *cfg = &srv->cfg->cluster;
    if (!cfg->enable)
        return 0;
    struct cluster *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    c->srv = srv;
    c->node = cfg->node;
    c->lease_ms = cfg->lease_ms;
    c->check_ms = c->lease_ms / 10 < CHECK_MS ? c->lease_ms / 10 : CHECK_MS;
    snprintf(c->lease_ttl, sizeof(c->lease_ttl), "%" PRId64, c->lease_ms - c->check_ms);
    snprintf(c->lease_key, sizeof(c->lease_key), "chatd:node:%s", c->node);
    snprintf(c->users_key, sizeof(c->users_key), "chatd:users:%s", c->node);
    snprintf(c->channel, sizeof(c->channel), "chatd:node:%s", c->node);
    unsigned char random[16];
    evutil_secure_rng_get_bytes(random, sizeof(random));
    for (size_t i = 0; i < sizeof(random); i++)
        snprintf(c->incarnation + 2 * i, 3, "%02x", random[i]);
    struct timeval now;
    gettimeofday(&now, NULL);
    c->seq = (uint64_t)now.tv_sec * 1000000 + (uint64_t)now.tv_usec;
    const char *channels[] = {ALL_CHANNEL, c->channel};
    const struct cluster_link_handlers handlers = {
        .up = on_up, .down = on_down, .message = on_message, .arg = c};
    c->link = cluster_link_new(srv->base, cfg, channels, 2, &handlers, err, errlen);
    c->renew_ev = event_new(srv->base, -1, EV_PERSIST, on_renew, c);
    c->check_ev = event_new(srv->base, -1, EV_PERSIST, on_check, c);
    c->outage_ev = event_new(srv->base, -1, 0, on_outage_over, c);
    /* Until the link is up, as while it is down: nobody else knows this node's users. */
    c->outage = 1;
    if (!c->link || !c->renew_ev || !c->check_ev || !c->outage_ev) {
        if (c->link)
            snprintf(err, errlen, "out of memory");
        srv->cluster = c;
        cluster_stop(srv);
        return -1;
    }
    struct timeval renew = {(time_t)(c->lease_ms / 3 / 1000),
                            (suseconds_t)(c->lease_ms / 3 % 1000) * 1000};
    struct timeval check = {(time_t)(c->check_ms / 1000), (suseconds_t)(c->check_ms % 1000) * 1000};
    event_add(c->renew_ev, &renew);
    event_add(c->check_ev, &check);
    srv->cluster = c;
    log_info("cluster: node %s (incarnation %s), Redis at %s, lease %lld ms", c->node,
             c->incarnation, cfg->redis, (long long)c->lease_ms);
    return 0;
}

void cluster_stop(struct server *srv)
{
    struct cluster *c = srv->cluster;
    if (!c)
        return;
    srv->cluster = NULL;
    /* First the link: the callbacks of its commands in flight still see c. */
    cluster_link_free(c->link);
    if (c->renew_ev)
        event_free(c->renew_ev);
    if (c->check_ev)
        event_free(c->check_ev);
    if (c->outage_ev)
        event_free(c->outage_ev);
    c->presence = NULL;
    drop_all(c);
    crossings_forget_all(c);
    names_free(&c->touched);
    names_free(&c->before);
    free(c);
}
