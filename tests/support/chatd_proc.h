/* chatd_proc.h - integration-test helpers that run the real chatd binary: temporary
 * directories and config files, a server started on a free port and stopped with
 * SIGTERM, and one-shot runs (-t, --version, --check-plugin) with their output.
 *
 * Every function here is for the test process's main thread. A started chatd is tied to
 * the test process with PR_SET_PDEATHSIG, so a test that fails (Check's fork mode exits
 * the test child at once, skipping any cleanup) or times out never leaves a server
 * behind. */
#ifndef CHATD_TEST_CHATD_PROC_H
#define CHATD_TEST_CHATD_PROC_H

#include <check.h>
#include <jansson.h>
#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

/* Generous upper bounds on waits; none of them is a timing assertion. */
#define CHATD_PROC_START_TIMEOUT_MS 10000
#define CHATD_PROC_STOP_TIMEOUT_MS  10000

/* Make a fresh directory under $CHATD_TEST_TMPDIR, else $TMPDIR, else /tmp, and write
 * its path to `out`. A suite sets CHATD_TEST_TMPDIR to a directory of its own, so it can
 * remove everything at the end, or keep the servers' files when a test failed.
 * Returns 0, or -1 with errno set. */
int chatd_tmpdir_make(char *out, size_t cap);

/* Remove a directory and everything in it (symbolic links are not followed). */
void chatd_tmpdir_remove(const char *dir);

/* Write `text` to DIR/NAME and the file's path to `path` (which may be NULL).
 * Returns 0, or -1 with errno set. */
int chatd_file_write(const char *dir, const char *name, const char *text, char *path, size_t cap);

/* Read a whole file into a NUL-terminated string; the caller frees it. NULL on error. */
char *chatd_file_read(const char *path);

struct chatd_proc_options {
    /* Host to listen on, without brackets: "127.0.0.1" (the default when NULL) or "::1".
     * The port is chosen by the helper and passed with -l. */
    const char *host;
    /* Lines added to [server], e.g. "max_frame_bytes = 1024\n". May be NULL. */
    const char *server_conf;
    /* The [plugins] enable list; NULL means "ping". */
    const char *enable;
    /* Lines appended at the end of the file (more sections). May be NULL. */
    const char *extra_conf;
    /* Where plugins are loaded from; NULL means the build's plugin folder. It must hold
     * ping.so, which the readiness probe uses. */
    const char *plugin_dir;
    /* Use this config file as it is instead of writing one (the fields above that
     * go into the file are then ignored). */
    const char *config_path;
    /* Values for chatd's --set, "section.key=value", ended by NULL. May be NULL. */
    const char *const *sets;
    /* Also listen with TLS on a second free port (tls_port); the sets must then give
     * tls.certificate and tls.key. */
    int tls;
    /* 0: chatd runs with [limits] so generous they never refuse (chatd_proc.c gives them
     * with --set before `sets`, which may override them), because the suites log
     * in and connect from 127.0.0.1 far more often than [limits]' defaults allow;
     * 1: with [limits] as the config says. */
    int real_limits;
    /* Listen on this port (to start chatd again where clients left it); 0: a free one. */
    int port;
    /* Also listen for clients behind a proxy, which send a PROXY header first ([server]
     * proxy_protocol, given in server_conf or sets): plain on proxy_port, TLS on
     * proxy_tls_port (-1: a free port, 0: none). The ports above are then marked
     * `direct`, so that the readiness probe and plain clients need no header. */
    int proxy_port, proxy_tls_port;
    /* 1: also the [web] listener, on a free port (web_port); 0: [web] is off whatever the
     * config says (the sample config's fixed port would clash between suites). */
    int web;
};

/* A chatd child process and the files it uses. */
struct chatd_proc {
    pid_t pid; /* 0 when not running */
    int port;
    int tls_port;       /* the TLS listener's, or 0 */
    int proxy_port;     /* the plain listener for clients behind a proxy, or 0 */
    int proxy_tls_port; /* the TLS one, or 0 */
    int web_port;       /* the [web] listener's, or 0 */
    char host[64];
    char dir[PATH_MAX];         /* temporary directory holding the files below */
    char config[PATH_MAX + 32]; /* the config file */
    char log[PATH_MAX + 32];    /* chatd's stderr */
    char out[PATH_MAX + 32];    /* chatd's stdout */
    char plugin_dir[PATH_MAX];
};

/* Write the config, start chatd on a free port and wait until it answers a request on a
 * connection of its own (which it has fully closed again before this returns, so the
 * probe never counts against max_connections). Retries on another port if chatd exits
 * before it is ready (the port was taken meanwhile). Returns 0, or -1 after printing
 * why (and chatd's log) to stderr. */
int chatd_proc_start(struct chatd_proc *p, const struct chatd_proc_options *opts);

/* Send chatd a signal without waiting. Returns 0, or -1 if it does not run. */
int chatd_proc_signal(struct chatd_proc *p, int sig);

/* Wait up to timeout_ms for chatd to exit, as after chatd_proc_signal. Returns what
 * chatd_proc_stop returns. */
int chatd_proc_wait(struct chatd_proc *p, int timeout_ms);

/* Send SIGTERM and wait up to timeout_ms for chatd to exit. Returns its exit code, 128 +
 * the signal number if a signal ended it, or -1 if it did not exit in time (it is then
 * killed). Prints the log to stderr when the result is not 0. Keeps p->dir. */
int chatd_proc_stop(struct chatd_proc *p, int timeout_ms);

/* Whether chatd is still running (it has not exited). */
int chatd_proc_alive(struct chatd_proc *p);

/* Stop chatd's loop thread alone (its main thread: ptrace stops one thread, a signal
 * would stop them all), so a test can see what its I/O threads do without it, and let
 * it go on. 0, or -1 after printing why. */
int chatd_proc_loop_stop(const struct chatd_proc *p);
int chatd_proc_loop_resume(const struct chatd_proc *p);

/* Stop chatd if it runs (SIGKILL) and remove its directory. */
void chatd_proc_cleanup(struct chatd_proc *p);

/* Print chatd's log (stderr) to our stderr, for a failing test's diagnosis. */
void chatd_proc_dump_log(const struct chatd_proc *p);

/* How many times `needle` occurs in chatd's log (its stderr) so far. */
size_t chatd_proc_log_count(const struct chatd_proc *p, const char *needle);

/* Wait up to timeout_ms until chatd's log holds `needle` at least count times; fails the
 * test (printing the log) when it does not. */
void chatd_proc_wait_log(const struct chatd_proc *p, const char *needle, size_t count,
                         int timeout_ms);

struct test_client;

/* Connect a test client to chatd; fails the test when it cannot. */
struct test_client *chatd_proc_connect(const struct chatd_proc *p);

/* Send `text` (one request line) and read the one JSON reply; fails the test when either
 * does not happen within TEST_CLIENT_TIMEOUT_MS. The caller decrefs the reply. */
json_t *chatd_proc_request(struct test_client *c, const char *text);

/* The string member `key` of msg, or "" when it is absent or no string. */
const char *chatd_json_str(const json_t *msg, const char *key);

/* The result of one run of chatd to completion. */
struct chatd_run_result {
    int status; /* exit code, 128 + signal, or -1 when it timed out */
    char *out;  /* everything it wrote to stdout, NUL-terminated */
    char *err;  /* everything it wrote to stderr */
};

/* Run chatd with `args` (a NULL-terminated list, without the program name), wait up
 * to timeout_ms, and capture its output. Returns 0 (see r->status), or -1 if it could
 * not be run. The caller frees with chatd_run_result_free. */
int chatd_run(const char *const *args, int timeout_ms, struct chatd_run_result *r);

void chatd_run_result_free(struct chatd_run_result *r);

/* Run an integration suite (forking each test) with every server's config and log under
 * one temporary directory: removed when all tests pass, kept and named when one fails
 * (a failing test ends before its cleanup). Returns main()'s exit status. */
int chatd_proc_run_suite(Suite *suite);

/* Find a program (redis-server, haproxy) on PATH or in the sbin folders and write its
 * path to out. Returns 0, or -1 when it is not installed. */
int test_program_path(const char *name, char *out, size_t cap);

/* Start the program argv[0] (looked up in PATH unless it holds a slash) with argv, its
 * stdout and stderr sent to the named files (created or truncated) and stdin from
 * /dev/null, tied to the test process like chatd (PR_SET_PDEATHSIG). Returns the pid,
 * or -1. */
pid_t chatd_spawn(const char *const argv[], const char *out_path, const char *err_path);

/* Sleep for ms milliseconds. */
void chatd_sleep_ms(int ms);

/* Milliseconds on a monotonic clock, for deadlines. */
long long chatd_now_ms(void);

#endif
