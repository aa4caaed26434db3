/* timers.h - one-shot and repeating timers owned by plugins, cancelled with them. */
#ifndef CHATD_HOST_TIMERS_H
#define CHATD_HOST_TIMERS_H

#include "server.h"

int timers_add(struct server *srv, struct chatd_plugin *p, uint32_t ms, int repeat,
               chatd_timer_fn fn, void *arg, uint64_t *id);
int timers_cancel(struct server *srv, struct chatd_plugin *p, uint64_t id);
void timers_cancel_plugin(struct server *srv, struct chatd_plugin *p);

#endif
