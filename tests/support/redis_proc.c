/* redis_proc.c - start, query and stop a private redis-server (redis_proc.h). */
#include "redis_proc.h"

#include "chatd_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define REDIS_START_TIMEOUT_MS 10000
#define REDIS_STOP_TIMEOUT_MS  10000

/* Send `text` and read up to the first line break. */
static int exchange(int fd, const char *text, char *out, size_t cap)
{
    size_t len = strlen(text), got = 0;
    if (write(fd, text, len) != (ssize_t)len)
        return -1;
    out[0] = '\0';
    long long deadline = chatd_now_ms() + 5000;
    while (got + 1 < cap && !memchr(out, '\n', got)) {
        ssize_t n = read(fd, out + got, cap - 1 - got);
        if (n <= 0 || chatd_now_ms() > deadline)
            return -1;
        got += (size_t)n;
        out[got] = '\0';
    }
    out[strcspn(out, "\r\n")] = '\0';
    return 0;
}

int redis_proc_query(const struct redis_proc *r, const char *command, char *out, size_t cap)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(r->socket) >= sizeof(addr.sun_path))
        return -1;
    memcpy(addr.sun_path, r->socket, strlen(r->socket) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    char line[512];
    int rc = connect(fd, (struct sockaddr *)&addr, sizeof(addr));
    if (rc == 0 && r->password[0]) {
        snprintf(line, sizeof(line), "AUTH %s\r\n", r->password);
        rc = exchange(fd, line, out, cap);
    }
    if (rc == 0) {
        snprintf(line, sizeof(line), "%s\r\n", command);
        rc = exchange(fd, line, out, cap);
    }
    close(fd);
    return rc;
}

int redis_proc_start(struct redis_proc *r)
{
    if (!r->dir[0] && chatd_tmpdir_make(r->dir, sizeof(r->dir)) < 0) {
        perror("redis_proc_start: tmpdir");
        return -1;
    }
    snprintf(r->socket, sizeof(r->socket), "%s/redis.sock", r->dir);
    snprintf(r->log, sizeof(r->log), "%s/redis.log", r->dir);
    const char *argv[32] = {
        "redis-server", "--port",    "0",    "--unixsocket", r->socket, "--unixsocketperm",
        "700",          "--save",    "",     "--appendonly", "no",      "--dir",
        r->dir,         "--logfile", r->log, "--daemonize",  "no"};
    size_t n = 17;
    if (r->password[0]) {
        argv[n++] = "--requirepass";
        argv[n++] = r->password;
    }
    argv[n] = NULL;
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
            _exit(127);
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, STDIN_FILENO);
            dup2(devnull, STDOUT_FILENO);
        }
        /* execvp's prototype predates const; it does not modify the strings. */
        execvp("redis-server", (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    r->pid = pid;
    long long deadline = chatd_now_ms() + REDIS_START_TIMEOUT_MS;
    char reply[256];
    while (chatd_now_ms() < deadline) {
        if (redis_proc_query(r, "PING", reply, sizeof(reply)) == 0 && strcmp(reply, "+PONG") == 0)
            return 0;
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            r->pid = 0;
            break;
        }
        chatd_sleep_ms(20);
    }
    char *log = chatd_file_read(r->log);
    fprintf(stderr, "redis-server did not start (is redis-server installed?)\n%s\n",
            log ? log : "");
    free(log);
    redis_proc_stop(r);
    return -1;
}

void redis_proc_stop(struct redis_proc *r)
{
    if (r->pid <= 0)
        return;
    kill(r->pid, SIGTERM);
    long long deadline = chatd_now_ms() + REDIS_STOP_TIMEOUT_MS;
    while (waitpid(r->pid, NULL, WNOHANG) == 0) {
        if (chatd_now_ms() > deadline) {
            kill(r->pid, SIGKILL);
            waitpid(r->pid, NULL, 0);
            break;
        }
        chatd_sleep_ms(10);
    }
    r->pid = 0;
}

void redis_proc_cleanup(struct redis_proc *r)
{
    redis_proc_stop(r);
    if (r->dir[0])
        chatd_tmpdir_remove(r->dir);
    r->dir[0] = '\0';
}
