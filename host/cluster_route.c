/* cluster_route.c - cross-node delivery (cluster_route.h).
 *
 * What goes on a node's channel (cluster_publish), as compact JSON:
 *   {"k":"b","lo":L,"hi":H,"xs":X,"m":[{"seq":S,"msg":{...},"u":[users],"rs":"sender"}]}
 *       a commit batch of the sender's: every id in L..H is committed, and these are
 *       its messages with recipients online on the receiving node ("rs" only for a
 *       private message: who gets the delivered receipt), as the sender knew them
 *       having applied the receiver's presence changes up to X. One per node per
 *       batch, also with no message, so that the node knows the range without reading
 *       it.
 *   {"k":"l","d":0|1,"msg":{...},"u":[users]}
 *       a live push for these users (d: push_user's, not held behind a drain).
 * Live pushes are not ordered against messages, as on one node.
 *
 * Recipients elsewhere always have timeline rows (stream_needs_row), so a lost
 * announcement costs only a gap read (cluster_order.c), and a lost live push is lost as
 * a push to a session that just ended would be. */
#include "cluster_route.h"

#include "cluster.h"
#include "cluster_order.h"
#include "hooks.h"
#include "log.h"
#include "metrics.h"
#include "server.h"
#include "stream.h"
#include "users.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The most other nodes a batch or a push is published to (more are read as gaps). */
#define ROUTE_NODES_MAX 64

struct route_stats {
    uint64_t announced, announce_failures, received, dropped, waited, live_published, live_received,
        lost_users, crossed_logouts, outage_changes;
};

struct cluster_route {
    struct server *srv;
    struct route_stats stats;
};

/* What one node is sent. */
struct route_node {
    const char *name;
    json_t *list; /* batch: the messages; live: the users */
    json_t *cur;  /* batch: the users of the message being added */
    int64_t cur_seq;
};

struct cluster_route_batch {
    struct server *srv;
    int64_t lo, hi;
    int waits;
    int overtaken; /* a gap read released ids at or above lo before this batch came */
    size_t n_nodes;
    struct route_node nodes[ROUTE_NODES_MAX];
};

static struct route_node *node_of(struct route_node *nodes, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (nodes[i].name == name || strcmp(nodes[i].name, name) == 0)
            return &nodes[i];
    return NULL;
}

static void publish(struct server *srv, const char *node, json_t *payload, uint64_t *count)
{
    char *text = payload ? json_dumps(payload, JSON_COMPACT) : NULL;
    struct cluster_route *r = srv->cluster_route;
    if (text && cluster_publish(srv, node, text, strlen(text)) == 0)
        (*count)++;
    else
        r->stats.announce_failures++;
    free(text);
    json_decref(payload);
}

/* ---- after a commit ------------------------------------------------------------- */

struct cluster_route_batch *cluster_route_batch_begin(struct server *srv, int64_t lo, int64_t hi)
{
    if (!srv->cluster_route || lo <= 0 || hi < lo)
        return NULL;
    struct cluster_route_batch *rb = calloc(1, sizeof(*rb));
    if (!rb)
        return NULL;
    rb->srv = srv;
    rb->lo = lo;
    rb->hi = hi;
    rb->waits = cluster_order_waits(srv, lo);
    rb->overtaken = srv->cluster_order && cluster_order_released(srv) >= lo;
    const char *names[ROUTE_NODES_MAX];
    size_t n = cluster_nodes(srv, names, ROUTE_NODES_MAX);
    for (size_t i = 0; i < n && i < ROUTE_NODES_MAX; i++) {
        rb->nodes[rb->n_nodes] = (struct route_node){names[i], json_array(), NULL, 0};
        if (rb->nodes[rb->n_nodes].list)
            rb->n_nodes++;
    }
    if (rb->waits)
        srv->cluster_route->stats.waited++;
    return rb;
}

int cluster_route_batch_waits(const struct cluster_route_batch *rb)
{
    return rb->waits;
}

int cluster_route_batch_unsure(const struct cluster_route_batch *rb)
{
    return rb->waits || rb->overtaken;
}

/* Add user to node's entry for this message (made on its first user). */
static void announce_to(struct route_node *node, int64_t seq, json_t *msg, const char *user,
                        const char *receipt_sender)
{
    if (node->cur_seq != seq) {
        json_t *entry = json_pack("{sIsOs[]}", "seq", (json_int_t)seq, "msg", msg, "u");
        if (entry && receipt_sender)
            json_object_set_new(entry, "rs", json_string(receipt_sender));
        if (!entry || json_array_append_new(node->list, entry) != 0)
            return; /* that node reads it as a gap */
        node->cur = json_object_get(entry, "u");
        node->cur_seq = seq;
    }
    json_array_append_new(node->cur, json_string(user));
}

void cluster_route_batch_message(struct cluster_route_batch *rb, int64_t seq, json_t *msg,
                                 char *const *users, size_t n, const char *receipt_sender)
{
    struct server *srv = rb->srv;
    const char **here = rb->waits ? calloc(n ? n : 1, sizeof(*here)) : NULL;
    size_t n_here = 0;
    for (size_t i = 0; i < n; i++) {
        if (here && users_find(srv, users[i]))
            here[n_here++] = users[i];
        const char *nodes[ROUTE_NODES_MAX];
        size_t found = cluster_user_nodes(srv, users[i], nodes, ROUTE_NODES_MAX);
        for (size_t k = 0; k < found && k < ROUTE_NODES_MAX; k++) {
            struct route_node *node = node_of(rb->nodes, rb->n_nodes, nodes[k]);
            if (node)
                announce_to(node, seq, msg, users[i], receipt_sender);
        }
    }
    /* Those here got timeline rows (post.c): out of memory, the next login sends it. */
    if (rb->waits && (!here || cluster_order_add(srv, seq, msg, here, n_here, receipt_sender) != 0))
        log_error("cluster: message %lld waits for its recipients' next login: out of memory",
                  (long long)seq);
    free(here);
}

void cluster_route_batch_end(struct cluster_route_batch *rb)
{
    struct server *srv = rb->srv;
    struct cluster_route *r = srv->cluster_route;
    for (size_t i = 0; i < rb->n_nodes; i++) {
        struct route_node *node = &rb->nodes[i];
        /* xs: the node's logins this one knew of when it chose whom to send it. */
        json_t *payload =
            json_pack("{sssIsIsIso}", "k", "b", "lo", (json_int_t)rb->lo, "hi", (json_int_t)rb->hi,
                      "xs", (json_int_t)cluster_node_applied(srv, node->name), "m", node->list);
        publish(srv, node->name, payload, &r->stats.announced);
    }
    if (cluster_order_known(srv, rb->lo, rb->hi) != 0)
        log_error("cluster: ids %lld..%lld could not be marked known: read again as a gap",
                  (long long)rb->lo, (long long)rb->hi);
    free(rb);
}

/* ---- live pushes ---------------------------------------------------------------- */

static size_t push_here(struct server *srv, const char *user, json_t *msg, int direct)
{
    return direct ? users_push(srv, user, msg) : stream_push_live(srv, user, msg);
}

size_t cluster_route_push_live(struct server *srv, const char *const *users, size_t n, json_t *msg,
                               int direct, size_t *online_users)
{
    size_t sessions = 0, online = 0;
    for (size_t i = 0; i < n; i++) {
        size_t reached =
            push_here(srv, users[i], msg, direct) + cluster_remote_sessions(srv, users[i]);
        sessions += reached;
        online += reached > 0;
    }
    if (online_users)
        *online_users = online;
    struct cluster_route *r = srv->cluster_route;
    if (!r)
        return sessions;
    struct route_node nodes[ROUTE_NODES_MAX];
    size_t n_nodes = 0;
    for (size_t i = 0; i < n; i++) {
        const char *names[ROUTE_NODES_MAX];
        size_t found = cluster_user_nodes(srv, users[i], names, ROUTE_NODES_MAX);
        for (size_t k = 0; k < found && k < ROUTE_NODES_MAX; k++) {
            struct route_node *node = node_of(nodes, n_nodes, names[k]);
            if (!node) {
                node = &nodes[n_nodes++];
                *node = (struct route_node){names[k], json_array(), NULL, 0};
            }
            json_array_append_new(node->list, json_string(users[i]));
        }
    }
    for (size_t i = 0; i < n_nodes; i++) {
        json_t *payload =
            json_pack("{sssisOso}", "k", "l", "d", direct ? 1 : 0, "msg", msg, "u", nodes[i].list);
        publish(srv, nodes[i].name, payload, &r->stats.live_published);
    }
    return sessions;
}

/* ---- what this node receives ---------------------------------------------------- */

/* The users of an entry, borrowed from it, into *out (malloc'd). */
static size_t users_of(const json_t *list, const char ***out)
{
    size_t n = json_array_size(list), kept = 0;
    *out = calloc(n ? n : 1, sizeof(**out));
    for (size_t i = 0; *out && i < n; i++) {
        const char *name = json_string_value(json_array_get(list, i));
        if (name)
            (*out)[kept++] = name;
    }
    return kept;
}

static void receive_batch(struct server *srv, struct cluster_route *r, const json_t *in)
{
    json_int_t lo = json_integer_value(json_object_get(in, "lo"));
    json_int_t hi = json_integer_value(json_object_get(in, "hi"));
    const json_t *list = json_object_get(in, "m");
    if (lo <= 0 || hi < lo || hi == INT64_MAX || !json_is_array(list))
        return; /* INT64_MAX: range_add looks at hi + 1 */
    if (!cluster_order_room(srv, json_array_size(list))) {
        r->stats.dropped++; /* read from the database once its wait is over */
        return;
    }
    size_t i;
    json_t *entry;
    json_array_foreach(list, i, entry)
    {
        json_int_t seq = json_integer_value(json_object_get(entry, "seq"));
        json_t *msg = json_object_get(entry, "msg");
        const char **users;
        size_t n = users_of(json_object_get(entry, "u"), &users);
        if (seq >= lo && seq <= hi && json_is_object(msg) && users &&
            cluster_order_add(srv, seq, msg, users, n,
                              json_string_value(json_object_get(entry, "rs"))) != 0)
            log_error("cluster: message %lld waits for its recipients' next login: out of memory",
                      (long long)seq);
        free(users);
    }
    json_int_t applied = json_integer_value(json_object_get(in, "xs"));
    cluster_order_announced(srv, lo, hi, applied > 0 ? (uint64_t)applied : 0);
}

static void receive_live(struct server *srv, const json_t *in)
{
    json_t *msg = json_object_get(in, "msg");
    const char **users;
    size_t n = users_of(json_object_get(in, "u"), &users);
    int direct = json_integer_value(json_object_get(in, "d")) != 0;
    for (size_t i = 0; json_is_object(msg) && users && i < n; i++)
        push_here(srv, users[i], msg, direct);
    free(users);
}

static void on_receive(struct server *srv, const char *payload, size_t len, void *arg)
{
    struct cluster_route *r = arg;
    json_error_t error;
    json_t *in = json_loadb(payload, len, 0, &error);
    const char *kind = json_string_value(json_object_get(in, "k"));
    if (kind && strcmp(kind, "b") == 0) {
        r->stats.received++;
        receive_batch(srv, r, in);
    } else if (kind && strcmp(kind, "l") == 0) {
        r->stats.live_received++;
        receive_live(srv, in);
    } else {
        log_warn("cluster: a message on this node's channel makes no sense: %.*s",
                 (int)(len > 200 ? 200 : len), payload);
    }
    json_decref(in);
}

/* A user's presence changed and no session's event told the cluster: their last
 * session was on a node this node found dead, their last sessions here and elsewhere
 * ended at once, or it changed here while Redis was down. This node raises the change,
 * once in the cluster (cluster_presence.c chooses the one node). */
static void on_presence(struct server *srv, const char *user, int online, enum cluster_raise raise,
                        void *arg)
{
    struct cluster_route *r = arg;
    if (raise == CLUSTER_RAISE_NONE)
        return;
    if (raise == CLUSTER_RAISE_NODE_LOST)
        r->stats.lost_users++;
    else if (raise == CLUSTER_RAISE_CROSSED)
        r->stats.crossed_logouts++;
    else
        r->stats.outage_changes++;
    users_raise_presence(srv, user, online);
}

/* ---- life ----------------------------------------------------------------------- */

int cluster_route_start(struct server *srv)
{
    if (!srv->cluster)
        return 0;
    struct cluster_route *r = calloc(1, sizeof(*r));
    /* The merge needs the database (no posts without it). */
    int with_db = srv->pool && srv->cfg->db.enable && !srv->check_only;
    if (!r || (with_db && cluster_order_start(srv) != 0)) {
        free(r);
        return -1;
    }
    r->srv = srv;
    srv->cluster_route = r;
    cluster_on_receive(srv, on_receive, r);
    cluster_on_presence(srv, on_presence, r);
    return 0;
}

void cluster_route_free(struct server *srv)
{
    cluster_order_free(srv);
    free(srv->cluster_route);
    srv->cluster_route = NULL;
}

void cluster_route_render_metrics(const struct server *srv, struct evbuffer *out)
{
    const struct cluster_route *r = srv->cluster_route;
    if (!r)
        return;
    const struct route_stats *s = &r->stats;
    metrics_counter(out, "chatd_cluster_announcements_published_total",
                    "Commit batches announced to another node (one per node per batch).",
                    s->announced);
    metrics_counter(out, "chatd_cluster_publish_failures_total",
                    "Announcements and live pushes that could not be published (Redis down).",
                    s->announce_failures);
    metrics_counter(out, "chatd_cluster_announcements_received_total",
                    "Commit batches announced by other nodes.", s->received);
    metrics_counter(out, "chatd_cluster_announcements_dropped_total",
                    "Announcements dropped past the merge's bounds (read as gaps).", s->dropped);
    metrics_counter(out, "chatd_cluster_batches_waited_total",
                    "This node's commit batches whose pushes waited for an id below them.",
                    s->waited);
    metrics_counter(out, "chatd_cluster_live_published_total",
                    "Live pushes published to another node (one per node per push).",
                    s->live_published);
    metrics_counter(out, "chatd_cluster_live_received_total", "Live pushes from other nodes.",
                    s->live_received);
    metrics_counter(out, "chatd_cluster_users_lost_total",
                    "Users whose last session was on a node this node found dead.", s->lost_users);
    metrics_counter(out, "chatd_cluster_crossed_logouts_total",
                    "Users whose last sessions here and on another node ended at once, whose "
                    "logout this node raised.",
                    s->crossed_logouts);
    metrics_counter(out, "chatd_cluster_outage_presence_total",
                    "Users whose presence changed here while Redis was down, raised for the "
                    "cluster once it was back.",
                    s->outage_changes);
    cluster_order_render_metrics(srv, out);
}
