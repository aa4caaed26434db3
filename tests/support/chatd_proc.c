/* chatd_proc.c - runs the real chatd binary for integration tests (see chatd_proc.h). */
#include "chatd_proc.h"

#include "client.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CHATD_BINARY
#error "CHATD_BINARY must name the chatd executable"
#endif
#ifndef CHATD_PLUGIN_DIR
#error "CHATD_PLUGIN_DIR must name the folder of the built plugins"
#endif

/* How many ports to try when chatd loses a race for the one picked. */
#define START_ATTEMPTS 5

long long chatd_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void chatd_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

int chatd_tmpdir_make(char *out, size_t cap)
{
    const char *base = getenv("CHATD_TEST_TMPDIR");
    if (!base || !*base)
        base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    int n = snprintf(out, cap, "%s/chatd-integ-XXXXXX", base);
    if (n < 0 || (size_t)n >= cap) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return mkdtemp(out) ? 0 : -1;
}

void chatd_tmpdir_remove(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[PATH_MAX];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        int n = snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (n < 0 || (size_t)n >= sizeof(path))
            continue;
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
            chatd_tmpdir_remove(path);
        else
            unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

int chatd_file_write(const char *dir, const char *name, const char *text, char *path, size_t cap)
{
    char buf[PATH_MAX];
    if (!path) {
        path = buf;
        cap = sizeof(buf);
    }
    int n = snprintf(path, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) {
        errno = ENAMETOOLONG;
        return -1;
    }
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    size_t len = strlen(text);
    int ok = fwrite(text, 1, len, f) == len;
    if (fclose(f) != 0)
        ok = 0;
    return ok ? 0 : -1;
}

char *chatd_file_read(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t len = 0, cap = 4096;
    char *text = malloc(cap);
    while (text) {
        len += fread(text + len, 1, cap - len - 1, f);
        if (len < cap - 1)
            break;
        char *grown = realloc(text, cap * 2);
        if (!grown) {
            free(text);
            text = NULL;
            break;
        }
        text = grown;
        cap *= 2;
    }
    if (text)
        text[len] = '\0';
    fclose(f);
    return text;
}

/* Decode a waitpid status the way a shell would. */
static int decode_status(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

/* Wait up to timeout_ms for pid to exit. Returns the decoded status, or -1 (still
 * running, or not our child). */
static int wait_exit(pid_t pid, int timeout_ms)
{
    long long deadline = chatd_now_ms() + timeout_ms;
    for (;;) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return decode_status(status);
        if (r < 0 && errno != EINTR)
            return -1;
        if (chatd_now_ms() >= deadline)
            return -1;
        chatd_sleep_ms(5);
    }
}

int test_program_path(const char *name, char *out, size_t cap)
{
    /* The sbin folders too: haproxy is in /usr/sbin, which an ordinary user's PATH may
     * not hold. */
    char dirs[8192];
    const char *path = getenv("PATH");
    snprintf(dirs, sizeof(dirs), "%s:/usr/local/sbin:/usr/sbin:/sbin", path ? path : "");
    for (const char *at = dirs; *at;) {
        size_t len = strcspn(at, ":");
        if (len > 0) {
            int n = snprintf(out, cap, "%.*s/%s", (int)len, at, name);
            if (n > 0 && (size_t)n < cap && access(out, X_OK) == 0)
                return 0;
        }
        at += len + (at[len] == ':');
    }
    return -1;
}

pid_t chatd_spawn(const char *const argv[], const char *out_path, const char *err_path)
{
    pid_t parent = getpid();
    int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0 || err < 0) {
        if (out >= 0)
            close(out);
        if (err >= 0)
            close(err);
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        /* Die with the test process, whatever way it ends. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
            _exit(127);
        if (dup2(out, STDOUT_FILENO) < 0 || dup2(err, STDERR_FILENO) < 0)
            _exit(127);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull > STDIN_FILENO) {
            dup2(devnull, STDIN_FILENO);
            close(devnull);
        }
        /* execvp's prototype predates const; it does not modify the strings. */
        execvp(argv[0], (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    close(out);
    close(err);
    return pid;
}

static void print_file(const char *title, const char *path)
{
    char *text = chatd_file_read(path);
    fprintf(stderr, "---- %s (%s) ----\n%s---- end ----\n", title, path, text ? text : "");
    free(text);
}

void chatd_proc_dump_log(const struct chatd_proc *p)
{
    print_file("chatd stderr", p->log);
}

size_t chatd_proc_log_count(const struct chatd_proc *p, const char *needle)
{
    char *text = chatd_file_read(p->log);
    size_t n = 0;
    for (const char *at = text; at && (at = strstr(at, needle)); at += strlen(needle))
        n++;
    free(text);
    return n;
}

void chatd_proc_wait_log(const struct chatd_proc *p, const char *needle, size_t count,
                         int timeout_ms)
{
    long long deadline = chatd_now_ms() + timeout_ms;
    while (chatd_proc_log_count(p, needle) < count && chatd_now_ms() < deadline)
        chatd_sleep_ms(10);
    if (chatd_proc_log_count(p, needle) < count)
        chatd_proc_dump_log(p);
    ck_assert_msg(chatd_proc_log_count(p, needle) >= count, "the log never said '%s' %zu times",
                  needle, count);
}

struct test_client *chatd_proc_connect(const struct chatd_proc *p)
{
    struct test_client *c = test_client_connect(p->host, p->port, 0);
    ck_assert_msg(c != NULL, "cannot connect to chatd on port %d", p->port);
    return c;
}

json_t *chatd_proc_request(struct test_client *c, const char *text)
{
    ck_assert_msg(test_client_send_str(c, text) == 0, "send failed: %s", strerror(errno));
    json_t *msg = test_client_read_json(c, TEST_CLIENT_TIMEOUT_MS);
    ck_assert_msg(msg != NULL, "no reply to %s", text);
    return msg;
}

const char *chatd_json_str(const json_t *msg, const char *key)
{
    const char *v = json_string_value(json_object_get(msg, key));
    return v ? v : "";
}

/* Whether chatd answers on its port: one connection sends a request, reads a reply
 * line, half-closes and waits for chatd to close. chatd frees a session (and counts it
 * no longer) before its socket closes, so after this the probe uses no slot. Returns 1
 * when ready, 0 when nothing listens (yet), -1 when something answered wrongly. */
static int probe(const struct chatd_proc *p)
{
    struct test_client *c = test_client_try_connect(p->host, p->port);
    if (!c)
        return 0;
    char line[4096];
    int ready = -1;
    if (test_client_send_str(c, "{\"cmd\":\"ping\",\"id\":\"probe\"}") == 0 &&
        test_client_shutdown_write(c) == 0 &&
        test_client_read_line(c, line, sizeof(line), TEST_CLIENT_TIMEOUT_MS) > 0 &&
        strncmp(line, "{\"cmd\":", 7) == 0 &&
        test_client_wait_closed(c, TEST_CLIENT_TIMEOUT_MS) == 0)
        ready = 1;
    test_client_close(c);
    return ready;
}

static int write_config(struct chatd_proc *p, const struct chatd_proc_options *opts)
{
    char text[16384];
    int n = snprintf(text, sizeof(text),
                     "; written by the integration tests\n"
                     "[server]\n"
                     "%s"
                     "[log]\n"
                     "level = info\n"
                     "[plugins]\n"
                     "dir = %s\n"
                     "enable = %s\n"
                     "%s",
                     opts && opts->server_conf ? opts->server_conf : "", p->plugin_dir,
                     opts && opts->enable ? opts->enable : "ping",
                     opts && opts->extra_conf ? opts->extra_conf : "");
    if (n < 0 || (size_t)n >= sizeof(text))
        return -1;
    return chatd_file_write(p->dir, "chatd.conf", text, p->config, sizeof(p->config));
}

/* Kill chatd if it runs and reap it. */
static void kill_process(struct chatd_proc *p)
{
    if (p->pid > 0) {
        kill(p->pid, SIGKILL);
        wait_exit(p->pid, CHATD_PROC_STOP_TIMEOUT_MS);
        p->pid = 0;
    }
}

enum start_outcome {
    START_READY,   /* chatd answers on its port */
    START_EXITED,  /* chatd exited first, typically because the port was taken */
    START_FOREIGN, /* something else answers on the port */
    START_TIMEOUT, /* neither within CHATD_PROC_START_TIMEOUT_MS */
};

/* Wait until the chatd just spawned answers, or exits (its status goes to *status). */
static enum start_outcome await_ready(struct chatd_proc *p, int *status)
{
    long long deadline = chatd_now_ms() + CHATD_PROC_START_TIMEOUT_MS;
    while (chatd_now_ms() < deadline) {
        int raw;
        if (waitpid(p->pid, &raw, WNOHANG) == p->pid) {
            *status = decode_status(raw);
            return START_EXITED;
        }
        int ready = probe(p);
        if (ready > 0)
            return START_READY;
        if (ready < 0)
            return START_FOREIGN;
        chatd_sleep_ms(10);
    }
    return START_TIMEOUT;
}

/* -1: a free port on host; otherwise `want` (0: none). */
static int pick_port(const char *host, int want)
{
    return want < 0 ? test_free_port(host) : want;
}

/* Append ",host:port words" (the first without the comma) to a -l list. */
static void add_listen(char *list, size_t cap, const char *host, int port, const char *words)
{
    size_t n = strlen(list);
    snprintf(list + n, cap - n, strchr(host, ':') ? "%s[%s]:%d%s%s" : "%s%s:%d%s%s", n ? "," : "",
             host, port, words[0] ? " " : "", words);
}

int chatd_proc_start(struct chatd_proc *p, const struct chatd_proc_options *opts)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->host, sizeof(p->host), "%s", opts && opts->host ? opts->host : "127.0.0.1");
    if (chatd_tmpdir_make(p->dir, sizeof(p->dir)) < 0) {
        fprintf(stderr, "chatd_proc: cannot make a temporary directory: %s\n", strerror(errno));
        return -1;
    }
    snprintf(p->plugin_dir, sizeof(p->plugin_dir), "%s",
             opts && opts->plugin_dir ? opts->plugin_dir : CHATD_PLUGIN_DIR);
    snprintf(p->log, sizeof(p->log), "%s/chatd.log", p->dir);
    snprintf(p->out, sizeof(p->out), "%s/chatd.out", p->dir);
    if (opts && opts->config_path)
        snprintf(p->config, sizeof(p->config), "%s", opts->config_path);
    else if (write_config(p, opts) < 0) {
        fprintf(stderr, "chatd_proc: cannot write the config in %s\n", p->dir);
        return -1;
    }

    for (int attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
        p->port = opts && opts->port ? opts->port : test_free_port(p->host);
        if (p->port < 0) {
            fprintf(stderr, "chatd_proc: no free port on %s: %s\n", p->host, strerror(errno));
            return -1;
        }
        p->tls_port = opts && opts->tls ? test_free_port(p->host) : 0;
        p->proxy_port = pick_port(p->host, opts ? opts->proxy_port : 0);
        p->proxy_tls_port = pick_port(p->host, opts ? opts->proxy_tls_port : 0);
        int direct = p->proxy_port > 0 || p->proxy_tls_port > 0;
        char listen[512] = "";
        add_listen(listen, sizeof(listen), p->host, p->port, direct ? "direct" : "");
        if (p->tls_port > 0)
            add_listen(listen, sizeof(listen), p->host, p->tls_port, direct ? "tls direct" : "tls");
        if (p->proxy_port > 0)
            add_listen(listen, sizeof(listen), p->host, p->proxy_port, "");
        if (p->proxy_tls_port > 0)
            add_listen(listen, sizeof(listen), p->host, p->proxy_tls_port, "tls");
        const char *argv[80] = {
            CHATD_BINARY, "-c", p->config, "-l", listen, "-p", p->plugin_dir,
        };
        size_t argc = 7;
        static const char *const test_limits[] = {
            "limits.login_per_address=1000000/1s",    "limits.failed_login_per_name=1000000/1s",
            "limits.requests_per_session=1000000/1s", "limits.connections_per_address=1000000/1s",
            "limits.max_connections_per_address=0",
        };
        for (size_t i = 0; !(opts && opts->real_limits) && i < 5; i++) {
            argv[argc++] = "-s";
            argv[argc++] = test_limits[i];
        }
        char web_listen[160];
        p->web_port = opts && opts->web ? test_free_port(p->host) : 0;
        snprintf(web_listen, sizeof(web_listen),
                 strchr(p->host, ':') ? "web.listen=[%s]:%d" : "web.listen=%s:%d", p->host,
                 p->web_port);
        argv[argc++] = "-s";
        argv[argc++] = p->web_port > 0 ? "web.enable=yes" : "web.enable=no";
        if (p->web_port > 0) {
            argv[argc++] = "-s";
            argv[argc++] = web_listen;
        }
        /* The suites run with the I/O threads chatd would choose (auto) unless told
         * otherwise: CHATD_TEST_IO_THREADS=0 runs them on the loop thread alone. A test's
         * own sets come after, and win. */
        char io_threads[48];
        const char *io = getenv("CHATD_TEST_IO_THREADS");
        if (io && *io) {
            snprintf(io_threads, sizeof(io_threads), "server.io_threads=%s", io);
            argv[argc++] = "-s";
            argv[argc++] = io_threads;
        }
        for (size_t i = 0; opts && opts->sets && opts->sets[i] && argc + 3 < 80; i++) {
            argv[argc++] = "-s";
            argv[argc++] = opts->sets[i];
        }
        argv[argc] = NULL;
        p->pid = chatd_spawn(argv, p->out, p->log);
        if (p->pid < 0) {
            fprintf(stderr, "chatd_proc: cannot start %s: %s\n", CHATD_BINARY, strerror(errno));
            p->pid = 0;
            return -1;
        }
        int status = -1;
        switch (await_ready(p, &status)) {
        case START_READY:
            return 0;
        case START_EXITED:
            p->pid = 0;
            fprintf(stderr, "chatd_proc: chatd exited with %d before it was ready on %s\n", status,
                    listen);
            chatd_proc_dump_log(p);
            break;
        case START_FOREIGN:
            /* Another process took the port first; ours cannot bind it. */
            fprintf(stderr, "chatd_proc: %s answered, but not like chatd\n", listen);
            kill_process(p);
            break;
        case START_TIMEOUT:
            fprintf(stderr, "chatd_proc: chatd did not become ready on %s within %d ms\n", listen,
                    CHATD_PROC_START_TIMEOUT_MS);
            chatd_proc_dump_log(p);
            kill_process(p);
            return -1;
        }
    }
    fprintf(stderr, "chatd_proc: giving up after %d ports\n", START_ATTEMPTS);
    return -1;
}

int chatd_proc_loop_stop(const struct chatd_proc *p)
{
    int status;
    if (ptrace(PTRACE_SEIZE, p->pid, NULL, NULL) < 0 ||
        ptrace(PTRACE_INTERRUPT, p->pid, NULL, NULL) < 0 ||
        waitpid(p->pid, &status, __WALL) != p->pid) {
        fprintf(stderr, "chatd_proc: cannot stop chatd's loop thread: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

int chatd_proc_loop_resume(const struct chatd_proc *p)
{
    if (ptrace(PTRACE_DETACH, p->pid, NULL, NULL) < 0) {
        fprintf(stderr, "chatd_proc: cannot resume chatd's loop thread: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

int chatd_proc_alive(struct chatd_proc *p)
{
    if (p->pid <= 0)
        return 0;
    int status;
    pid_t r = waitpid(p->pid, &status, WNOHANG);
    if (r == 0)
        return 1;
    p->pid = 0;
    return 0;
}

int chatd_proc_signal(struct chatd_proc *p, int sig)
{
    return p->pid > 0 ? kill(p->pid, sig) : -1;
}

int chatd_proc_stop(struct chatd_proc *p, int timeout_ms)
{
    if (chatd_proc_signal(p, SIGTERM) < 0)
        return -1;
    return chatd_proc_wait(p, timeout_ms);
}

int chatd_proc_wait(struct chatd_proc *p, int timeout_ms)
{
    if (p->pid <= 0)
        return -1;
    int rc = wait_exit(p->pid, timeout_ms);
    if (rc < 0) {
        fprintf(stderr, "chatd_proc: chatd did not exit within %d ms\n", timeout_ms);
        kill(p->pid, SIGKILL);
        wait_exit(p->pid, CHATD_PROC_STOP_TIMEOUT_MS);
    }
    p->pid = 0;
    if (rc != 0) {
        fprintf(stderr, "chatd_proc: chatd stopped with status %d\n", rc);
        chatd_proc_dump_log(p);
    }
    return rc;
}

void chatd_proc_cleanup(struct chatd_proc *p)
{
    kill_process(p);
    if (p->dir[0])
        chatd_tmpdir_remove(p->dir);
    p->dir[0] = '\0';
}

int chatd_run(const char *const *args, int timeout_ms, struct chatd_run_result *r)
{
    memset(r, 0, sizeof(*r));
    char dir[PATH_MAX], out[PATH_MAX + 16], err[PATH_MAX + 16];
    if (chatd_tmpdir_make(dir, sizeof(dir)) < 0)
        return -1;
    snprintf(out, sizeof(out), "%s/stdout", dir);
    snprintf(err, sizeof(err), "%s/stderr", dir);

    size_t n = 0;
    while (args[n])
        n++;
    const char **argv = calloc(n + 2, sizeof(char *));
    if (!argv) {
        chatd_tmpdir_remove(dir);
        return -1;
    }
    argv[0] = CHATD_BINARY;
    memcpy(argv + 1, args, n * sizeof(char *));
    pid_t pid = chatd_spawn(argv, out, err);
    free(argv);
    if (pid < 0) {
        chatd_tmpdir_remove(dir);
        return -1;
    }
    r->status = wait_exit(pid, timeout_ms);
    if (r->status < 0) {
        kill(pid, SIGKILL);
        wait_exit(pid, CHATD_PROC_STOP_TIMEOUT_MS);
    }
    r->out = chatd_file_read(out);
    r->err = chatd_file_read(err);
    chatd_tmpdir_remove(dir);
    if (!r->out || !r->err) {
        chatd_run_result_free(r);
        return -1;
    }
    return 0;
}

void chatd_run_result_free(struct chatd_run_result *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

int chatd_proc_run_suite(Suite *suite)
{
    char base[PATH_MAX];
    if (chatd_tmpdir_make(base, sizeof(base)) < 0 || setenv("CHATD_TEST_TMPDIR", base, 1) < 0) {
        fprintf(stderr, "cannot make a temporary directory: %s\n", strerror(errno));
        return EXIT_FAILURE;
    }
    SRunner *runner = srunner_create(suite);
    srunner_set_fork_status(runner, CK_FORK);
    srunner_run_all(runner, CK_ENV);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    if (failed == 0)
        chatd_tmpdir_remove(base);
    else
        fprintf(stderr, "the servers' configs and logs are kept in %s\n", base);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
