/* bench.h - what the parts of chatd-bench share: the options, the run's state, small
 * helpers, and the workloads' entry points.
 *
 * chatd-bench is single-threaded: everything here runs on the one libevent loop. */
#ifndef CHATD_BENCH_H
#define CHATD_BENCH_H

#include <event2/event.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

/* The command line, as options.c reads it; zero means "the workload's default" where a
 * default depends on the workload. */
struct options {
    const char *workload;
    const char *target; /* "chatd", "redis" or "irc" (target.h) */
    const char *host;
    int port;
    int port2;           /* sessions of odd-numbered users connect here (another cluster node) */
    int users;           /* private: ring size; login, idle: users registered; offline: senders */
    int inflight;        /* requests in flight per sender (with --rate: at most) */
    double rate;         /* private, group: messages/s offered in all (0: as fast as answered) */
    double seconds;      /* length of the measured run */
    int members;         /* group: members */
    int senders;         /* group: members that send */
    int sessions;        /* idle: sessions held */
    double hold;         /* idle: seconds they are held */
    int concurrency;     /* connections being set up (or, login: logging in) at once */
    long count;          /* login: stop after this many logins (0: after --seconds) */
    int receivers;       /* offline: users that are sent to and never log in (during the run) */
    int verify;          /* offline: then log the receivers in and count what arrives */
    int tls;             /* --tls: every connection speaks TLS */
    const char *ca_file; /* --ca-file: trust this CA (else the system's) */
    int insecure;        /* --insecure: no check of the server's certificate */
    int ws;              /* --ws: every connection speaks WebSocket to the [web] listener */
    int server_pid;      /* chatd's pid: its CPU time, and (idle) its memory */
    int db_pid;          /* its database server's pid: the CPU time it spends for chatd */
    int metrics_port;    /* chatd's admin listener on 127.0.0.1: its counters (scrape.h) */
    int text_bytes;      /* pad message texts to about this many bytes */
    int client_ids;      /* private, offline: every message has its own client_msg_id */
    double drain;        /* seconds to wait for what is still in flight after the run */
    const char *password;
    const char *prefix; /* user names are PREFIX<n>, the group PREFIXg */
    const char *tokens; /* relogin: the file of names and tokens */
    int save;           /* relogin: log in by password and write the tokens */
    int flooders;       /* flood: connections looping wrong-password logins */
};

/* One run of the bench. */
struct bench {
    struct options opt;
    struct event_base *base;
    struct sockaddr_in addr;
    struct sockaddr_in addr2; /* --port2 */
    char prefix[24];          /* the user name prefix in use (given or made up for this run) */
};

/* Nanoseconds on the monotonic clock. */
int64_t now_ns(void);

/* Write user i's name (PREFIX<i>) to out, which holds at least 40 bytes. Returns its
 * length. */
size_t user_name(const struct bench *b, int i, char *out);

/* Write the group's name (PREFIXg) to out, which holds at least 40 bytes. Returns its
 * length. */
size_t group_name(const struct bench *b, char *out);

/* Print a message to stderr and exit with status 1. */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* options.c: read argv into b->opt (exits with a message on a bad option, or 0 after
 * --help), then fill in the workload's defaults. */
void options_parse(struct bench *b, int argc, char **argv);

/* The workloads; each runs the loop until it is done and prints its figures. Return
 * the exit status: 0, or 1 if messages were lost or duplicated or a step failed. */
int workload_private(struct bench *b);
int workload_group(struct bench *b);
int workload_idle(struct bench *b);
int workload_login(struct bench *b);
int workload_offline(struct bench *b);
int workload_relogin(struct bench *b);
int workload_flood(struct bench *b);

#endif
