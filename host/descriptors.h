/* descriptors.h - chatd's budget of file descriptors: [server] max_connections clients
 * and [admin] max_connections admin connections must fit under RLIMIT_NOFILE, with room
 * for the listeners, the database connections and the files chatd opens. */
#ifndef CHATD_HOST_DESCRIPTORS_H
#define CHATD_HOST_DESCRIPTORS_H

#include <stddef.h>
#include <stdint.h>

struct config;

/* Descriptors kept for everything but connections: plugins, their copies, the log,
 * the event loop's own, MariaDB's reconnects. */
#define DESCRIPTORS_SPARE 64

/* How many descriptors cfg needs. */
int64_t descriptors_needed(const struct config *cfg);

/* Raise the soft RLIMIT_NOFILE to what cfg needs when it is lower (never above the hard
 * limit). -1 with the reason in err when the need does not fit. */
int descriptors_reserve(const struct config *cfg, char *err, size_t errlen);

#endif
