/* server.h - the host's shared state (the event loop, sessions, users, plugins, commands)
 * and server.c's functions: the server's life. Everything here runs on the loop thread.
 * The files working on this state have their own headers: session.h, listener.h,
 * dispatch.h, reload.h, plugin_registry.h. */
#ifndef CHATD_HOST_SERVER_H
#define CHATD_HOST_SERVER_H

#include "config.h"
#include "fields.h"
#include "framer.h"
#include "line_buffer.h"
#include "metrics.h"
#include "proxy_accept.h"
#include "ratelimit.h"

#include <chatd/plugin.h>
#include <event2/event.h>
#include <uthash.h>

struct bufferevent;
struct evhttp;
struct result_count;
struct listener;
struct user;
struct hook_entry;
struct hook_run;
struct service_entry;
struct service_pin;
struct ssl_ctx_st;
struct ws_conn;
struct ws_linger;
struct transport;
struct io_conn;
struct io_threads;

/* A command as registered by a plugin. The name and the field table are copied
 * (spec.fields points at the copy). */
struct command {
    char *name;
    struct chatd_command spec;
    struct field_table fields;
    struct chatd_plugin *plugin;
    char *reply_prefix;           /* `{"cmd":"<name>_reply","result":` */
    struct result_count *results; /* replies by result word, for /metrics */
    UT_hash_handle hh;
};

struct subscription {
    struct chatd_plugin *plugin;
    enum chatd_event event;
    chatd_event_fn fn;
    void *arg;
};

/* A client connection. Its fields are ordered to leave no holes: every idle session
 * holds one (docs/performance.md, "Memory per idle session"). */
/* A session's place on one of the server's lists of sessions (output.c), kept in the
 * session itself: linked while prev is set (prev points at the pointer to it). */
struct session_link {
    struct session *next, **prev;
};

struct session {
    chatd_session_id id;
    struct server *server;
    const struct transport *transport; /* plain TCP or TLS (transport.h) */
    /* Output; input too for a transport that reads through it. With a transport that
     * makes it when needed (output_new), NULL while the session's output stays empty
     * (output.c frees it). */
    struct bufferevent *bev;
    struct event *read_ev; /* input is there, or the session was idle too long */
    struct user *user;     /* the user it is logged in as, or NULL */
    struct framer framer;
    /* Bytes taken from the socket but not yet consumed by the framer. Freed whenever
     * empty, so an idle session holds no input buffer. */
    char *in;
    size_t in_start, in_end, in_cap;
    char peer[64];
    struct rate_key source;      /* its address, for the per-address limits */
    unsigned counted : 1;        /* counted as open by ratelimit_connection_open */
    unsigned busy : 1;           /* the next frame waits (a request in flight, dispatch.c) */
    unsigned serial : 1;         /* a request that is not pipelined is in flight */
    unsigned in_process : 1;     /* inside session_process() */
    unsigned read_eof : 1;       /* the peer has closed its side */
    unsigned closing : 1;        /* no more requests; close once the output is flushed */
    unsigned dead : 1;           /* queued for the reaper; nothing is sent any more */
    unsigned write_armed : 1;    /* a backlog: the bufferevent's write event sends it */
    unsigned output_paused : 1;  /* too many unread replies: requests wait (session.c) */
    unsigned reading : 1;        /* read_ev is armed */
    unsigned socket_drained : 1; /* the last read took all the kernel had */
    unsigned stream_ended : 1;   /* TLS: the bufferevent saw the end of the stream */
    unsigned handshaking : 1;    /* TLS on an I/O thread, not yet established */
    unsigned cut_off : 1;        /* disconnected as a slow reader: takes no more output */
    unsigned n_inflight : 11;    /* at most [server] max_pipelined, 1024 */
    evutil_socket_t fd;          /* its socket (the transport's), for the hang-up watch */
    struct rate_bucket requests; /* [limits] requests_per_session */
    /* The requests in flight, oldest first (reply_order.c), marked gone when the
     * session closes; with pipelined commands there can be several. */
    struct reply_slot *slots;
    /* A request that is not pipelined, waiting for those in flight to be done. */
    struct chatd_request *parked;
    /* While a request is in flight: watches for the client resetting the connection.
     * Made at the first such wait; freed when the session is idle (output.c). */
    struct event *hangup_ev;
    uint64_t out_added;            /* bytes ever queued to its output (written: less what waits) */
    struct stream_session *stream; /* its part of the message stream (stream.c), or NULL */
    struct ws_conn *ws;            /* the WebSocket transport's state (transport_ws.c), or NULL */
    struct io_conn *io;            /* its socket on an I/O thread (transport_io.c), or NULL */
    struct session *next_dead;
    /* On the server's end-of-turn flush list (output.c) while flush.prev is set. */
    struct session_link flush;
    /* Its output emptied: on the server's spare_fresh or spare_aged list (output.c)
     * while spare.prev is set, for its bufferevent to be freed if that lasts. */
    struct session_link spare;
    /* The frame and login deadlines (session_limits.c), on a monotonic clock in ms. */
    struct event *deadline_ev; /* fires at deadline_at_ms when that is not 0; NULL: none */
    int64_t deadline_at_ms;
    int64_t login_by_ms;      /* closed then unless logged in (users_bind clears it) */
    int64_t partial_since_ms; /* since when a begun frame waits for its rest; 0: none */
    UT_hash_handle hh;
};

/* A user with at least one logged-in session: one allocation with its name, and room
 * for one session in it (most users have one). */
struct user {
    chatd_session_id *sessions; /* &one, or allocated once a second session came */
    size_t n_sessions, cap;
    UT_hash_handle hh;
    chatd_session_id one;
    char name[];
};

struct server {
    struct event_base *base;
    struct config *cfg;
    struct listener **listeners;
    /* The TLS listeners' context (tls_context.h), replaced at a reload; each TLS
     * session holds a reference to the one it was accepted with. NULL: no TLS. */
    struct ssl_ctx_st *tls_ctx;
    struct admin *admin;     /* the admin listener (admin.c), or NULL */
    struct cluster *cluster; /* the link to the other nodes (cluster.h), or NULL */
    /* Cross-node delivery (cluster_route.h, cluster_order.h): with [cluster] only. */
    struct cluster_route *cluster_route;
    struct cluster_order *cluster_order;
    struct metrics metrics;
    struct ratelimits limits;
    size_t n_listeners;
    struct event *sigterm, *sigint, *sighup, *shutdown_timer, *reaper;
    struct event *accept_pause; /* re-enables accepting after running out of descriptors */
    struct proxy_waits proxy;   /* connections waiting for their PROXY header */
    struct event *stop_check;   /* stopping: waits for the last jobs */

    struct event *flush;        /* end-of-turn write of queued output (output.c) */
    struct session *flush_list; /* sessions with output to write this turn */
    /* Sessions whose output emptied since the last sweep, and before it; the sweep
     * frees the bufferevents of those still idle on the second list (output.c). */
    struct session *spare_fresh, *spare_aged;
    struct event *output_sweep;
    struct session *sessions; /* by id */
    size_t n_sessions;
    chatd_session_id next_session_id;
    struct session *dead; /* closed sessions waiting for the reaper */
    /* WebSocket connections writing their last bytes after their session (transport_ws.c). */
    struct ws_linger *ws_lingering;
    struct user *users; /* by name */

    struct pool *pool;       /* worker threads for plugin jobs */
    struct io_threads *io;   /* the I/O threads (io_threads.h), or NULL: the loop does I/O */
    struct stream *stream;   /* the read side of the message stream (stream_sessions.h) */
    struct post_state *post; /* post() and the commit batches (post.h) */
    int check_only;          /* chatd -t: load and check, touch no database */
    /* The config file and command-line overrides, re-read at a reload. */
    const struct config_source *source;

    struct chatd_plugin **plugins;
    size_t n_plugins;
    /* Plugins out of service after a reload, waiting for their work to drain, and
     * new instances that failed after loading (plugin_registry.c). */
    struct chatd_plugin *retiring;
    struct event *retire_check;
    unsigned reloads_pending; /* new instances still migrating */
    int tearing_down;
    /* The table handed to plugins' init: NULL for host_api; the test kit sets its own. */
    const struct chatd_host *host_table;
    struct command *commands; /* by name */
    struct subscription *subscriptions;
    size_t n_subscriptions;
    /* Hook functions (hooks.c): every point's, in the order they were added. */
    struct hook_entry *hooks;
    size_t n_hooks;
    uint64_t hook_seq;
    struct hook_run *hook_runs;       /* runs not decided yet */
    struct chatd_hook_call *hook_cut; /* deferrals cut, whose plugin has not resumed */
    /* Services offered (services.c), and the holds on them. */
    struct service_entry *services;
    size_t n_services;
    struct service_pin *service_pins;
    struct plugin_timer *timers;         /* by id */
    struct flush_waiters *flush_waiters; /* on_user_flushed watches, by user (flush_watch.c) */
    uint64_t next_timer_id;

    /* Reused for every outgoing line, so replies and pushes allocate nothing. */
    struct line_buffer out;

    int stopping;
};

struct server *server_new(struct config *cfg);
/* Load, configure and start every enabled plugin. -1 with the reason in err. */
int server_load_plugins(struct server *srv, char *err, size_t errlen);
/* Open the listeners and run until stopped. Returns the process exit code. */
int server_run(struct server *srv);
/* Begin a graceful stop: no new connections or requests, in-flight work finishes. */
void server_stop(struct server *srv);
void server_free(struct server *srv);
/* The session is gone or closing; the server may be done stopping. */
void server_session_gone(struct server *srv);

#endif
