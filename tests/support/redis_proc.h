/* redis_proc.h - a private redis-server for the cluster tests: a unix socket only
 * (port 0), under a directory of its own, no persistence (no RDB, no AOF), tied to the
 * test process (PR_SET_PDEATHSIG), so a failing test never leaves one behind. For the
 * test process's main thread. */
#ifndef CHATD_TEST_REDIS_PROC_H
#define CHATD_TEST_REDIS_PROC_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

struct redis_proc {
    pid_t pid; /* 0 when not running */
    char dir[PATH_MAX];
    char socket[PATH_MAX + 16]; /* DIR/redis.sock */
    char log[PATH_MAX + 16];    /* DIR/redis.log */
    char password[64];          /* requirepass, or "" */
};

/* Start redis-server in r->dir (made with chatd_tmpdir_make when empty) and wait until it
 * answers PING on its socket. With r->password set, it requires that password. Starting
 * again after redis_proc_stop uses the same directory and socket. Returns 0, or -1
 * after printing why (and its log) to stderr. */
int redis_proc_start(struct redis_proc *r);
/* Stop it (SIGTERM, then SIGKILL past 10 s) and wait. Its data is gone with it. */
void redis_proc_stop(struct redis_proc *r);
/* Stop it if it runs and remove its directory. */
void redis_proc_cleanup(struct redis_proc *r);
/* Send one inline command (e.g. "EXISTS chatd:users:a"), authenticating first when a
 * password is set, and return the reply's first line without its \r\n (":0", "+PONG",
 * "-ERR ...") in out. Returns 0, or -1 when it cannot be reached. */
int redis_proc_query(const struct redis_proc *r, const char *command, char *out, size_t cap);

#endif
