/* users.c - the user -> sessions map behind push_user and presence, and the dispatch
 * of login/logout events to subscribed plugins. */
#include "users.h"

#include "cluster.h"
#include "cluster_order.h"
#include "flush_watch.h"
#include "hooks.h"
#include "log.h"
#include "stream_sessions.h"
#include "session.h"
#include "session_limits.h"

#include <stdlib.h>
#include <string.h>

struct user *users_find(struct server *srv, const char *name)
{
    struct user *u;
    HASH_FIND_STR(srv->users, name, u);
    return u;
}

size_t users_push_line(struct server *srv, const struct user *u, const char *line, size_t len)
{
    size_t sent = 0;
    for (size_t i = 0; len && i < u->n_sessions; i++) {
        struct session *s = session_find(srv, u->sessions[i]);
        if (s && !s->closing && session_send_line(s, line, len) == 0)
            sent++;
    }
    return sent;
}

size_t users_push(struct server *srv, const char *name, json_t *msg)
{
    struct user *u = name ? users_find(srv, name) : NULL;
    if (!u)
        return 0;
    json_object_del(msg, "id");
    /* Serialised once, however many devices the user has. */
    size_t len = session_format_line(srv, msg);
    return users_push_line(srv, u, srv->out.data, len);
}

static void user_free(struct server *srv, struct user *u)
{
    HASH_DEL(srv->users, u);
    if (u->sessions != &u->one)
        free(u->sessions);
    free(u);
}

static void emit(struct server *srv, enum chatd_event event, chatd_session_id session,
                 const char *user, int first_or_last)
{
    for (size_t i = 0; i < srv->n_subscriptions; i++) {
        struct subscription *sub = &srv->subscriptions[i];
        if (sub->event == event)
            sub->fn(event, session, user, first_or_last, sub->arg);
    }
}

int users_bind(struct server *srv, struct session *s, const char *name)
{
    if (s->user && strcmp(s->user->name, name) == 0)
        return 0; /* already this user: no presence change */
    if (s->user)
        users_unbind(srv, s);
    struct user *u = users_find(srv, name);
    if (!u) {
        size_t len = strlen(name);
        u = calloc(1, sizeof(*u) + len + 1);
        if (!u)
            return CHATD_ENOMEM;
        memcpy(u->name, name, len + 1);
        u->sessions = &u->one;
        u->cap = 1;
        HASH_ADD_KEYPTR(hh, srv->users, u->name, len, u);
    }
    if (u->n_sessions == u->cap) {
        size_t cap = u->cap * 2;
        int inline_room = u->sessions == &u->one;
        chatd_session_id *grown = realloc(inline_room ? NULL : u->sessions, cap * sizeof(*grown));
        if (!grown)
            return CHATD_ENOMEM; /* u has a session (the room for one is full): it stays */
        if (inline_room)
            grown[0] = u->one;
        u->sessions = grown;
        u->cap = cap;
    }
    u->sessions[u->n_sessions++] = s->id;
    s->user = u;
    session_deadlines_logged_in(s);
    srv->metrics.sessions_logged_in++;
    log_debug("session %llu logged in as %s", (unsigned long long)s->id, name);
    cluster_local_sessions(srv, u->name, u->n_sessions);
    /* The other nodes learn of a first session here with that change (or, Redis down,
     * with the next, which writes the whole hash again). */
    if (u->n_sessions == 1)
        cluster_order_login(srv, u->name, cluster_change_seq(srv) + !cluster_redis_up(srv));
    /* The event's first_or_last is this node's: plugins keep per-node state on it (the
     * friends plugin its online users' lists). presence.changed is the cluster's. */
    emit(srv, CHATD_EVENT_LOGIN, s->id, u->name, u->n_sessions == 1);
    if (u->n_sessions == 1 && cluster_remote_sessions(srv, u->name) == 0)
        hooks_presence_changed(srv, u->name, 1);
    return 0;
}

void users_unbind(struct server *srv, struct session *s)
{
    struct user *u = s->user;
    if (!u)
        return;
    s->user = NULL;
    srv->metrics.sessions_logged_in--;
    for (size_t i = 0; i < u->n_sessions; i++) {
        if (u->sessions[i] == s->id) {
            u->sessions[i] = u->sessions[--u->n_sessions];
            break;
        }
    }
    int last = u->n_sessions == 0;
    cluster_local_sessions(srv, u->name, u->n_sessions);
    /* Before the events: what it never wrote gets rows again, and at the last session
     * the user's positions are written. */
    stream_session_end(srv, s);
    log_debug("session %llu logged out from %s", (unsigned long long)s->id, u->name);
    emit(srv, CHATD_EVENT_LOGOUT, s->id, u->name, last);
    if (last) {
        if (cluster_remote_sessions(srv, u->name) == 0)
            hooks_presence_changed(srv, u->name, 0);
        flush_watch_user_gone(srv, u->name);
        user_free(srv, u);
    }
}

void users_raise_presence(struct server *srv, const char *name, int online)
{
    if (!online && users_find(srv, name))
        return;
    emit(srv, online ? CHATD_EVENT_LOGIN : CHATD_EVENT_LOGOUT, 0, name, 1);
    hooks_presence_changed(srv, name, online);
}

size_t users_unbind_others(struct server *srv, const char *name, chatd_session_id keep)
{
    size_t ended = 0;
    /* One session per pass: each unbind raises events and may free the user. */
    for (;;) {
        struct user *u = name ? users_find(srv, name) : NULL;
        struct session *victim = NULL;
        for (size_t i = 0; u && !victim && i < u->n_sessions; i++)
            if (u->sessions[i] != keep)
                victim = session_find(srv, u->sessions[i]);
        if (!victim)
            return ended;
        log_debug("session %llu logged out from %s by another session's logout all",
                  (unsigned long long)victim->id, name);
        users_unbind(srv, victim);
        ended++;
    }
}

int users_subscribe(struct server *srv, struct chatd_plugin *p, enum chatd_event event,
                    chatd_event_fn fn, void *arg)
{
    if (!fn || (event != CHATD_EVENT_LOGIN && event != CHATD_EVENT_LOGOUT))
        return CHATD_EINVAL;
    struct subscription *grown =
        realloc(srv->subscriptions, (srv->n_subscriptions + 1) * sizeof(*grown));
    if (!grown)
        return CHATD_ENOMEM;
    srv->subscriptions = grown;
    srv->subscriptions[srv->n_subscriptions++] =
        (struct subscription){.plugin = p, .event = event, .fn = fn, .arg = arg};
    return 0;
}

void users_unsubscribe_plugin(struct server *srv, struct chatd_plugin *p)
{
    size_t kept = 0;
    for (size_t i = 0; i < srv->n_subscriptions; i++)
        if (srv->subscriptions[i].plugin != p)
            srv->subscriptions[kept++] = srv->subscriptions[i];
    srv->n_subscriptions = kept;
}

void users_replay_logins(struct server *srv, struct chatd_plugin *p)
{
    struct user *u, *tmp;
    HASH_ITER (hh, srv->users, u, tmp) {
        for (size_t i = 0; i < u->n_sessions; i++) {
            for (size_t k = 0; k < srv->n_subscriptions; k++) {
                struct subscription *sub = &srv->subscriptions[k];
                if (sub->plugin == p && sub->event == CHATD_EVENT_LOGIN)
                    sub->fn(CHATD_EVENT_LOGIN, u->sessions[i], u->name, i == 0, sub->arg);
            }
        }
    }
}

void users_free_all(struct server *srv)
{
    struct user *u, *tmp;
    HASH_ITER (hh, srv->users, u, tmp)
        user_free(srv, u);
    free(srv->subscriptions);
    srv->subscriptions = NULL;
    srv->n_subscriptions = 0;
}
