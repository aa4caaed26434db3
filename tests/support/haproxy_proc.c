/* haproxy_proc.c - HAProxy in front of the cluster tests' nodes (haproxy_proc.h). */
#include "haproxy_proc.h"

#include "chatd_proc.h"
#include "client.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define HAPROXY_START_TIMEOUT_MS 10000

/* The generated config: TCP, the choices of scripts/run --nodes' config (leastconn; long
 * client and server timeouts, since chat sessions idle; a connection a node refuses goes
 * to another; the first failed connection takes a node out; a PROXY v2 header to the
 * node, so that it sees the client's address, and a LOCAL one on the checks), with a
 * check every 200 ms so a killed node is out before the test's clients come back. */
static int write_config(struct haproxy_proc *h, const int *ports, size_t n)
{
    char text[8192];
    size_t len = (size_t)snprintf(text, sizeof(text),
                                  "defaults\n"
                                  "    mode tcp\n"
                                  "    balance leastconn\n"
                                  "    timeout connect 1s\n"
                                  "    timeout client 1h\n"
                                  "    timeout server 1h\n"
                                  "    retries 2\n"
                                  "    option redispatch 1\n"
                                  "frontend chat\n"
                                  "    bind 127.0.0.1:%d\n"
                                  "    default_backend nodes\n"
                                  "backend nodes\n",
                                  h->port);
    for (size_t i = 0; i < n && len < sizeof(text); i++)
        len +=
            (size_t)snprintf(text + len, sizeof(text) - len,
                             "    server node%zu 127.0.0.1:%d send-proxy-v2 check check-send-proxy "
                             "inter 200ms fall 1 rise 1 observe layer4 error-limit 1 "
                             "on-error mark-down\n",
                             i, ports[i]);
    if (len >= sizeof(text))
        return -1;
    return chatd_file_write(h->dir, "haproxy.cfg", text, h->config, sizeof(h->config));
}

/* Whether a ping through the proxy is answered. */
static int answers(const struct haproxy_proc *h)
{
    struct test_client *c = test_client_try_connect("127.0.0.1", h->port);
    if (!c)
        return 0;
    char line[4096];
    int ok = test_client_send_str(c, "{\"cmd\":\"ping\",\"id\":\"probe\"}") == 0 &&
             test_client_read_line(c, line, sizeof(line), 1000) > 0 &&
             strncmp(line, "{\"cmd\":", 7) == 0;
    test_client_close(c);
    return ok;
}

int haproxy_proc_start(struct haproxy_proc *h, const int *ports, size_t n)
{
    memset(h, 0, sizeof(*h));
    if (chatd_tmpdir_make(h->dir, sizeof(h->dir)) < 0) {
        perror("haproxy_proc_start: tmpdir");
        return -1;
    }
    snprintf(h->log, sizeof(h->log), "%s/haproxy.log", h->dir);
    h->port = test_free_port("127.0.0.1");
    if (h->port < 0 || write_config(h, ports, n) < 0) {
        fprintf(stderr, "haproxy_proc_start: no port or no config in %s\n", h->dir);
        return -1;
    }
    char program[PATH_MAX];
    if (test_program_path("haproxy", program, sizeof(program)) < 0) {
        fprintf(stderr, "haproxy_proc_start: haproxy is not installed\n");
        return -1;
    }
    /* -db: stay in the foreground, so the test owns the process. */
    const char *argv[] = {program, "-db", "-f", h->config, NULL};
    h->pid = chatd_spawn(argv, "/dev/null", h->log);
    if (h->pid < 0) {
        fprintf(stderr, "haproxy_proc_start: cannot start haproxy: %s\n", strerror(errno));
        h->pid = 0;
        return -1;
    }
    long long deadline = chatd_now_ms() + HAPROXY_START_TIMEOUT_MS;
    while (chatd_now_ms() < deadline) {
        if (answers(h))
            return 0;
        if (waitpid(h->pid, NULL, WNOHANG) == h->pid) {
            h->pid = 0;
            break;
        }
        chatd_sleep_ms(20);
    }
    char *log = chatd_file_read(h->log);
    fprintf(stderr, "haproxy did not answer on port %d\n%s\n", h->port, log ? log : "");
    free(log);
    haproxy_proc_cleanup(h);
    return -1;
}

void haproxy_proc_cleanup(struct haproxy_proc *h)
{
    if (h->pid > 0) {
        kill(h->pid, SIGKILL);
        waitpid(h->pid, NULL, 0);
        h->pid = 0;
    }
    if (h->dir[0])
        chatd_tmpdir_remove(h->dir);
    h->dir[0] = '\0';
}
