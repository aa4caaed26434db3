/* flush_watch.c - watches by user name. Each watch has its own timeout event; a user's
 * watches are all answered at once, since "a session of theirs has written everything"
 * is true for all of them together. */
#include "flush_watch.h"

#include "plugin_loader.h"
#include "session.h"
#include "users.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdlib.h>
#include <string.h>

struct flush_watch {
    struct flush_watch *next;
    struct flush_waiters *owner;
    struct chatd_plugin *plugin;
    chatd_flushed_fn fn;
    void *arg;
    struct event *timeout;
    char *user; /* set only while a cancelled watch is being answered */
};

/* The watches of one user. */
struct flush_waiters {
    char *user;
    struct server *server;
    struct flush_watch *watches;
    UT_hash_handle hh;
};

static void waiters_free_if_empty(struct server *srv, struct flush_waiters *w)
{
    if (w->watches)
        return;
    HASH_DEL(srv->flush_waiters, w);
    free(w->user);
    free(w);
}

/* Unlink watch from its user's list and free it (the callback is the caller's). */
static void watch_unlink(struct flush_watch *watch)
{
    struct flush_waiters *w = watch->owner;
    for (struct flush_watch **at = &w->watches; *at; at = &(*at)->next) {
        if (*at == watch) {
            *at = watch->next;
            break;
        }
    }
    event_free(watch->timeout);
    free(watch);
    waiters_free_if_empty(w->server, w);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct flush_watch *watch = arg;
    char *user = strdup(watch->owner->user);
    chatd_flushed_fn fn = watch->fn;
    void *fn_arg = watch->arg;
    watch_unlink(watch);
    fn(user ? user : "", CHATD_ETIMEDOUT, fn_arg);
    free(user);
}

/* Call every watch of user with status; a callback may add new watches, which wait. */
static void answer_all(struct server *srv, const char *user, int status)
{
    struct flush_waiters *w;
    HASH_FIND_STR(srv->flush_waiters, user, w);
    if (!w)
        return;
    HASH_DEL(srv->flush_waiters, w);
    while (w->watches) {
        struct flush_watch *watch = w->watches;
        w->watches = watch->next;
        event_free(watch->timeout);
        watch->fn(w->user, status, watch->arg);
        free(watch);
    }
    free(w->user);
    free(w);
}

static int user_flushed(struct server *srv, const char *user)
{
    struct user *u = users_find(srv, user);
    for (size_t i = 0; u && i < u->n_sessions; i++) {
        struct session *s = session_find(srv, u->sessions[i]);
        if (s && session_output_pending(s) == 0)
            return 1;
    }
    return 0;
}

int flush_watch_add(struct server *srv, struct chatd_plugin *p, const char *user,
                    uint32_t timeout_ms, chatd_flushed_fn fn, void *arg)
{
    if (!user || !fn)
        return CHATD_EINVAL;
    if (srv->stopping || p->retiring || p->state == PLUGIN_STOPPING)
        return CHATD_ESHUTDOWN;
    if (!users_find(srv, user)) {
        fn(user, CHATD_ECLOSED, arg);
        return 0;
    }
    if (user_flushed(srv, user)) {
        fn(user, 0, arg);
        return 0;
    }
    struct flush_waiters *w;
    HASH_FIND_STR(srv->flush_waiters, user, w);
    if (!w) {
        w = calloc(1, sizeof(*w));
        if (!w || !(w->user = strdup(user))) {
            free(w);
            return CHATD_ENOMEM;
        }
        w->server = srv;
        HASH_ADD_KEYPTR(hh, srv->flush_waiters, w->user, strlen(w->user), w);
    }
    struct flush_watch *watch = calloc(1, sizeof(*watch));
    if (watch)
        watch->timeout = evtimer_new(srv->base, on_timeout, watch);
    if (!watch || !watch->timeout) {
        free(watch);
        waiters_free_if_empty(srv, w);
        return CHATD_ENOMEM;
    }
    uint32_t ms = timeout_ms ? timeout_ms : FLUSH_WATCH_DEFAULT_MS;
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(watch->timeout, &tv);
    watch->owner = w;
    watch->plugin = p;
    watch->fn = fn;
    watch->arg = arg;
    watch->next = w->watches;
    w->watches = watch;
    return 0;
}

void flush_watch_flushed(struct server *srv, const char *user)
{
    if (srv->flush_waiters)
        answer_all(srv, user, 0);
}

void flush_watch_user_gone(struct server *srv, const char *user)
{
    if (srv->flush_waiters)
        answer_all(srv, user, CHATD_ECLOSED);
}

void flush_watch_cancel_plugin(struct server *srv, struct chatd_plugin *p)
{
    /* Taken out first and called after, so a callback cannot change the lists under
     * this walk. */
    struct flush_watch *cancelled = NULL;
    struct flush_waiters *w, *tmp;
    HASH_ITER (hh, srv->flush_waiters, w, tmp) {
        struct flush_watch **at = &w->watches;
        while (*at) {
            struct flush_watch *watch = *at;
            if (watch->plugin != p) {
                at = &watch->next;
                continue;
            }
            *at = watch->next;
            watch->user = strdup(w->user);
            watch->next = cancelled;
            cancelled = watch;
        }
        waiters_free_if_empty(srv, w);
    }
    while (cancelled) {
        struct flush_watch *watch = cancelled;
        cancelled = watch->next;
        event_free(watch->timeout);
        watch->fn(watch->user ? watch->user : "", CHATD_ESHUTDOWN, watch->arg);
        free(watch->user);
        free(watch);
    }
}

void flush_watch_free_all(struct server *srv)
{
    struct flush_waiters *w, *tmp;
    HASH_ITER (hh, srv->flush_waiters, w, tmp) {
        while (w->watches) {
            struct flush_watch *watch = w->watches;
            w->watches = watch->next;
            event_free(watch->timeout);
            free(watch);
        }
        HASH_DEL(srv->flush_waiters, w);
        free(w->user);
        free(w);
    }
}
