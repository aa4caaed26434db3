/* bench_history.h - chatd-bench-history: how long a page of `history` takes when the
 * server keeps millions of messages. Three steps, run by tools/bench-history:
 *   setup   over TCP: the reader, the peers whose conversations are measured, the groups;
 *   fill    straight into chatd_messages through MariaDB Connector/C (chatd stopped):
 *           messages spread round-robin over the conversations, explicit ids after the
 *           ones there, chatd_counters raised;
 *   measure over TCP: first pages and deep pages (with before), p50/p99/max per page. */
#ifndef CHATD_BENCH_HISTORY_H
#define CHATD_BENCH_HISTORY_H

#include <stdint.h>

#define BH_READER   "hb_reader"
#define BH_PASSWD   "bench history pass"
#define BH_NAME_MAX 32

struct bh_options {
    const char *host;
    int port;
    const char *db_socket, *db_user, *db_password_file, *db_name;
    long long messages; /* fill: how many */
    int conversations;  /* fill: private ones (reader with hb_p<i>) and groups (hb_g<i>) */
    int groups;         /* of those, groups */
    int measured;       /* setup/measure: conversations of each kind that are measured */
    int pages;          /* measure: pages per kind */
    int limit;          /* measure: messages per page */
};

/* The i-th peer's and group's names. */
void bh_peer_name(int i, char out[BH_NAME_MAX + 1]);
void bh_group_name(int i, char out[BH_NAME_MAX + 1]);

/* fill.c: 0, or -1 after printing why. */
int bh_fill(const struct bh_options *o);

/* pages.c: 0, or -1 after printing why. */
int bh_setup(const struct bh_options *o);
int bh_measure(const struct bh_options *o);

#endif
