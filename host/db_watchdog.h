/* db_watchdog.h - the worker pool's watchdog thread: it ends jobs past their time
 * budget (KILL QUERY, then cutting the socket), and watches whether the database answers
 * (a health question while it is up, a probe while it is down). */
#ifndef CHATD_HOST_DB_WATCHDOG_H
#define CHATD_HOST_DB_WATCHDOG_H

#include <stddef.h>

struct pool;

/* Start the watchdog thread of a pool whose workers run (pool_new). -1 with the reason
 * in err. */
int db_watchdog_start(struct pool *pool, char *err, size_t errlen);
/* Stop and join it, once the workers have been joined (pool_free): it outlives them,
 * to cut their jobs at shutdown. Does nothing if it never started. */
void db_watchdog_stop(struct pool *pool);
/* From now on, the watchdog asks the database every second whether it still answers
 * (chatd -t never calls this: a config check touches no database). */
void pool_watch_health(struct pool *pool);

#endif
