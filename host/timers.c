/* timers.c - plugin timers on libevent, tracked per plugin so that none can fire into
 * a plugin after it is shut down. */
#include "timers.h"

#include "plugin_loader.h"

#include <stdlib.h>

struct plugin_timer {
    uint64_t id;
    struct server *server;
    struct chatd_plugin *plugin;
    struct event *ev;
    chatd_timer_fn fn;
    void *arg;
    int repeat;
    UT_hash_handle hh;
};

static void timer_free(struct server *srv, struct plugin_timer *t)
{
    HASH_DEL(srv->timers, t);
    event_free(t->ev);
    free(t);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct plugin_timer *t = arg;
    struct server *srv = t->server;
    chatd_timer_fn fn = t->fn;
    void *fn_arg = t->arg;
    /* A one-shot timer is forgotten before its callback runs, so the callback may add a
     * new timer or cancel others freely. */
    if (!t->repeat)
        timer_free(srv, t);
    fn(fn_arg);
}

int timers_add(struct server *srv, struct chatd_plugin *p, uint32_t ms, int repeat,
               chatd_timer_fn fn, void *arg, uint64_t *id)
{
    if (!fn || (repeat && ms == 0))
        return CHATD_EINVAL;
    if (srv->stopping || p->retiring || p->state == PLUGIN_STOPPING)
        return CHATD_ESHUTDOWN;
    struct plugin_timer *t = calloc(1, sizeof(*t));
    if (!t)
        return CHATD_ENOMEM;
    t->ev = event_new(srv->base, -1, repeat ? EV_PERSIST : 0, on_timer, t);
    if (!t->ev) {
        free(t);
        return CHATD_ENOMEM;
    }
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    event_add(t->ev, &tv);
    t->id = ++srv->next_timer_id;
    t->server = srv;
    t->plugin = p;
    t->fn = fn;
    t->arg = arg;
    t->repeat = repeat;
    HASH_ADD(hh, srv->timers, id, sizeof(t->id), t);
    if (id)
        *id = t->id;
    return 0;
}

int timers_cancel(struct server *srv, struct chatd_plugin *p, uint64_t id)
{
    struct plugin_timer *t;
    HASH_FIND(hh, srv->timers, &id, sizeof(id), t);
    if (!t || t->plugin != p)
        return CHATD_ENOENT;
    timer_free(srv, t);
    return 0;
}

void timers_cancel_plugin(struct server *srv, struct chatd_plugin *p)
{
    struct plugin_timer *t, *tmp;
    HASH_ITER (hh, srv->timers, t, tmp) {
        if (t->plugin == p)
            timer_free(srv, t);
    }
}
