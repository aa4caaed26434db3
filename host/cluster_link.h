/* cluster_link.h - the node's link to Redis ([cluster], cluster.h): two asynchronous
 * hiredis connections on the loop, one for commands and one subscribed to the node's
 * channels, opened together, authenticated from [cluster] redis_password_file, given
 * [cluster] connect_timeout_ms to be ready, and reopened with capped, jittered backoff
 * (100 ms doubling to 5 s) whenever either fails. Nothing here waits. Loop thread only. */
#ifndef CHATD_HOST_CLUSTER_LINK_H
#define CHATD_HOST_CLUSTER_LINK_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct config_cluster;
struct cluster_link;
struct redisReply;

struct cluster_link_handlers {
    /* Both connections are ready and subscribed: commands may go. */
    void (*up)(void *arg);
    /* The link was up and is lost; commands sent before are answered NULL. */
    void (*down)(void *arg);
    /* A message published on one of the channels. */
    void (*message)(void *arg, const char *channel, size_t channel_len, const char *payload,
                    size_t len);
    void *arg;
};

struct cluster_link_stats {
    int up;
    uint64_t reconnects;       /* times the link came up again after a loss */
    uint64_t connect_failures; /* attempts that failed or timed out */
};

/* Open the link to [cluster] redis (reading the password file now), subscribed to
 * `channels` once up. NULL with the reason in err (a bad address or password file). */
struct cluster_link *cluster_link_new(struct event_base *base, const struct config_cluster *cfg,
                                      const char *const *channels, size_t n_channels,
                                      const struct cluster_link_handlers *handlers, char *err,
                                      size_t errlen);
/* Close both connections: commands in flight are answered NULL; no handler runs. */
void cluster_link_free(struct cluster_link *link);

/* A reply to one command: NULL when the link was lost (or closed) first. The reply is
 * hiredis's and freed after the call. */
typedef void (*cluster_reply_fn)(struct redisReply *reply, void *arg);
/* Send one command (its arguments binary-safe) on the command connection. `done` may be
 * NULL. -1 when the link is not up (done is then not called). */
int cluster_link_command(struct cluster_link *link, cluster_reply_fn done, void *arg, int argc,
                         const char **argv, const size_t *argvlen);
/* Give the link up and reconnect (an answer that never came, a reply that makes no
 * sense). Safe from any callback. */
void cluster_link_fail(struct cluster_link *link, const char *why);
void cluster_link_get_stats(const struct cluster_link *link, struct cluster_link_stats *out);
/* "unix:/path" or "address:port", for log lines. */
const char *cluster_link_address(const struct cluster_link *link);

#endif
