/* chatd_abuse.c - chatd-abuse: what clients that do not play along cost a running chatd,
 * as figures (one JSON object per workload on stdout). It needs no account: every
 * workload uses the ping command of an anonymous session.
 *
 *   pipeline   C connections send pings as fast as chatd takes them and never read a
 *              reply; chatd's RSS before, once it has stopped taking more, and after
 *              they close.
 *   partial    C connections each send the first B bytes of one request and stop;
 *              chatd's RSS before and once they are read.
 *   slowloris  C connections send one byte of a request every I seconds; how long
 *              until chatd has closed each (frame_timeout) and whether it said why.
 *
 * Connections come from one address: raise chatd's per-address connection limits for
 * the run (--set limits.connections_per_address=off --set limits.max_connections_per_address=0)
 * and keep max_connections above C. */
#include "bench/sysinfo.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct options {
    const char *host;
    int port;
    pid_t pid;
    int connections;
    int partial_bytes;
    int interval_s;
    int max_wait_s;
    const char *workload;
};

static void usage(FILE *out)
{
    fputs("usage: chatd-abuse --port P --server-pid PID [--workload W] [options]\n"
          "\n"
          "Measures what misbehaving clients cost a running chatd and prints one JSON\n"
          "object of figures per workload (progress on stderr). Needs only the ping command.\n"
          "\n"
          "Workloads (--workload, default all):\n"
          "  pipeline   C connections pipeline {\"cmd\":\"ping\"} and never read: chatd's RSS\n"
          "             before, once it stops reading them, and after they close.\n"
          "  partial    C connections each send the first B bytes (--partial-bytes, 60000)\n"
          "             of one request and stop: chatd's RSS before and while held.\n"
          "  slowloris  C connections send one byte of a request every I seconds\n"
          "             (--interval, 2): seconds until chatd closed each, and how many were\n"
          "             told why (a \"timeout\" error line).\n"
          "\n"
          "Options:\n"
          "  --host ADDR         chatd's IPv4 address (127.0.0.1)\n"
          "  --port P            chatd's port (required)\n"
          "  --server-pid PID    chatd's pid, for its VmRSS (required)\n"
          "  --connections C     connections per workload (1000)\n"
          "  --max-wait S        give up on slowloris after S seconds (120)\n"
          "\n"
          "All connections come from one address: start chatd with its per-address\n"
          "connection limits off (--set limits.connections_per_address=off\n"
          "--set limits.max_connections_per_address=0), max_connections\n"
          "above C, and an open-file limit above C + 100 (this program raises its own\n"
          "soft limit to the hard one). Run each workload against a freshly started\n"
          "chatd: memory it freed stays in its heap and hides the next one's cost.\n",
          out);
}

static void parse(struct options *o, int argc, char **argv)
{
    static const struct option longs[] = {
        {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},
        {"server-pid", required_argument, NULL, 's'},
        {"connections", required_argument, NULL, 'c'},
        {"partial-bytes", required_argument, NULL, 'b'},
        {"interval", required_argument, NULL, 'i'},
        {"max-wait", required_argument, NULL, 'm'},
        {"workload", required_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *o = (struct options){"127.0.0.1", 0, 0, 1000, 60000, 2, 120, "all"};
    int c;
    while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
        switch (c) {
        case 'H':
            o->host = optarg;
            break;
        case 'p':
            o->port = atoi(optarg);
            break;
        case 's':
            o->pid = (pid_t)atoi(optarg);
            break;
        case 'c':
            o->connections = atoi(optarg);
            break;
        case 'b':
            o->partial_bytes = atoi(optarg);
            break;
        case 'i':
            o->interval_s = atoi(optarg);
            break;
        case 'm':
            o->max_wait_s = atoi(optarg);
            break;
        case 'w':
            o->workload = optarg;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (o->port <= 0 || o->pid <= 0 || o->connections <= 0 || o->partial_bytes < 16 ||
        o->interval_s <= 0) {
        usage(stderr);
        exit(2);
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static double rss_mib(const struct options *o)
{
    long long rss = proc_rss_bytes(o->pid);
    if (rss < 0) {
        fprintf(stderr, "chatd-abuse: cannot read /proc/%d/status\n", (int)o->pid);
        exit(1);
    }
    return (double)rss / (1024.0 * 1024.0);
}

/* Whether chatd used no more than a trace of CPU over the last `window` seconds: it has
 * done all it will with what it was sent. */
static int chatd_idle(const struct options *o, double *last_cpu, double *last_at, double window)
{
    double now = now_s();
    if (now - *last_at < window)
        return 0;
    double cpu = proc_cpu_seconds(o->pid, NULL);
    int idle = cpu - *last_cpu < 0.02 * window;
    *last_cpu = cpu;
    *last_at = now;
    return idle;
}

/* Open c connections, non-blocking once connected. */
static int *connect_all(const struct options *o)
{
    int *fds = calloc((size_t)o->connections, sizeof(int));
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
    if (!fds || inet_pton(AF_INET, o->host, &addr.sin_addr) != 1) {
        fprintf(stderr, "chatd-abuse: bad address %s or out of memory\n", o->host);
        exit(1);
    }
    for (int i = 0; i < o->connections; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&addr, sizeof(addr)) < 0) {
            fprintf(stderr, "chatd-abuse: connection %d: %s\n", i, strerror(errno));
            exit(1);
        }
        fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
    }
    return fds;
}

static void close_all(int *fds, int n)
{
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(fds);
}

/* Wait for chatd to settle after the clients close, and report its RSS then. */
static double rss_after_close(const struct options *o)
{
    sleep_s(2);
    return rss_mib(o);
}

static void workload_pipeline(const struct options *o)
{
    static const char ping[] = "{\"cmd\":\"ping\"}";
    enum { PINGS = 1024 };
    static char burst[(sizeof(ping) - 1) * PINGS];
    for (int i = 0; i < PINGS; i++)
        memcpy(burst + (size_t)i * (sizeof(ping) - 1), ping, sizeof(ping) - 1);

    double before = rss_mib(o);
    int *fds = connect_all(o);
    /* Write until chatd takes nothing more from any connection and has gone idle: every
     * connection is then held back by TCP, with chatd no longer reading it. */
    unsigned long long sent = 0;
    double start = now_s(), quiet_since = now_s(), cpu = proc_cpu_seconds(o->pid, NULL),
           cpu_at = start;
    int idle = 0;
    while (!(idle && now_s() - quiet_since >= 1.0) && now_s() - start < 120) {
        int progress = 0;
        for (int i = 0; i < o->connections; i++) {
            ssize_t n = send(fds[i], burst, sizeof(burst), MSG_NOSIGNAL);
            if (n > 0) {
                sent += (unsigned long long)n;
                progress = 1;
            }
        }
        if (progress)
            quiet_since = now_s();
        else
            sleep_s(0.1);
        idle = chatd_idle(o, &cpu, &cpu_at, 1.0);
    }
    double held = rss_mib(o);
    fprintf(stderr, "chatd-abuse: pipeline: %d connections hold %.1f MiB of pings\n",
            o->connections, (double)sent / (1024.0 * 1024.0));
    close_all(fds, o->connections);
    double after = rss_after_close(o);
    printf("{\"workload\":\"pipeline\",\"connections\":%d,\"bytes_sent\":%llu,"
           "\"rss_before_mib\":%.1f,\"rss_held_mib\":%.1f,\"rss_added_mib\":%.1f,"
           "\"rss_added_per_connection_kib\":%.1f,\"rss_after_close_mib\":%.1f}\n",
           o->connections, sent, before, held, held - before,
           (held - before) * 1024.0 / o->connections, after);
    fflush(stdout);
}

static void workload_partial(const struct options *o)
{
    char *frame = malloc((size_t)o->partial_bytes);
    if (!frame)
        exit(1);
    static const char head[] = "{\"cmd\":\"ping\",\"x\":\"";
    memset(frame, 'a', (size_t)o->partial_bytes);
    memcpy(frame, head, sizeof(head) - 1);

    double before = rss_mib(o);
    int *fds = connect_all(o);
    int *done = calloc((size_t)o->connections, sizeof(int));
    int left = o->connections;
    double start = now_s();
    while (left > 0 && now_s() - start < 60) {
        int progress = 0;
        for (int i = 0; i < o->connections; i++) {
            if (done[i] >= o->partial_bytes)
                continue;
            ssize_t n =
                send(fds[i], frame + done[i], (size_t)(o->partial_bytes - done[i]), MSG_NOSIGNAL);
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                n = o->partial_bytes - done[i]; /* closed by chatd: nothing more to send */
            progress |= n > 0;
            if (n > 0 && (done[i] += (int)n) >= o->partial_bytes)
                left--;
        }
        if (!progress)
            sleep_s(0.01);
    }
    /* Let chatd read what the kernel holds for it (well within the default
     * frame_timeout). */
    double cpu = proc_cpu_seconds(o->pid, NULL), cpu_at = now_s();
    while (!chatd_idle(o, &cpu, &cpu_at, 0.5))
        sleep_s(0.1);
    double held = rss_mib(o);
    close_all(fds, o->connections);
    free(done);
    free(frame);
    double after = rss_after_close(o);
    printf("{\"workload\":\"partial\",\"connections\":%d,\"partial_bytes\":%d,"
           "\"all_sent\":%s,\"rss_before_mib\":%.1f,\"rss_held_mib\":%.1f,"
           "\"rss_added_mib\":%.1f,\"rss_added_per_connection_kib\":%.1f,"
           "\"rss_after_close_mib\":%.1f}\n",
           o->connections, o->partial_bytes, left == 0 ? "true" : "false", before, held,
           held - before, (held - before) * 1024.0 / o->connections, after);
    fflush(stdout);
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Read what chatd sent; returns 1 once the connection is closed. Notes a timeout line. */
static int drain(int fd, int *told)
{
    char buf[4096];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
        if (n > 0) {
            buf[n] = '\0';
            if (strstr(buf, "\"result\":\"timeout\""))
                *told = 1;
            continue;
        }
        return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
    }
}

static void workload_slowloris(const struct options *o)
{
    static const char request[] = "{\"cmd\":\"ping\",\"x\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    int n = o->connections;
    int *fds = connect_all(o);
    double *closed_after = calloc((size_t)n, sizeof(double));
    int *told = calloc((size_t)n, sizeof(int));
    struct pollfd *pfd = calloc((size_t)n, sizeof(*pfd));
    if (!closed_after || !told || !pfd)
        exit(1);
    double start = now_s(), next_byte = start;
    size_t pos = 0;
    int open = n;
    while (open > 0 && now_s() - start < o->max_wait_s) {
        if (now_s() >= next_byte) {
            char byte = request[pos < sizeof(request) - 2 ? pos : sizeof(request) - 2];
            pos++;
            for (int i = 0; i < n; i++)
                if (fds[i] >= 0)
                    (void)send(fds[i], &byte, 1, MSG_NOSIGNAL);
            next_byte += o->interval_s;
        }
        for (int i = 0; i < n; i++)
            pfd[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
        if (poll(pfd, (nfds_t)n, 100) <= 0)
            continue;
        for (int i = 0; i < n; i++) {
            if (fds[i] < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if (drain(fds[i], &told[i])) {
                closed_after[i] = now_s() - start;
                close(fds[i]);
                fds[i] = -1;
                open--;
            }
        }
    }
    double *times = calloc((size_t)n, sizeof(double));
    int closed = 0, n_told = 0;
    for (int i = 0; i < n; i++) {
        if (fds[i] < 0)
            times[closed++] = closed_after[i];
        n_told += told[i];
    }
    qsort(times, (size_t)closed, sizeof(double), compare_double);
    printf("{\"workload\":\"slowloris\",\"connections\":%d,\"interval_s\":%d,"
           "\"closed\":%d,\"told_why\":%d,\"first_closed_s\":%.1f,\"median_closed_s\":%.1f,"
           "\"last_closed_s\":%.1f}\n",
           n, o->interval_s, closed, n_told, closed ? times[0] : -1.0,
           closed ? times[closed / 2] : -1.0, closed ? times[closed - 1] : -1.0);
    fflush(stdout);
    close_all(fds, n);
    free(times);
    free(closed_after);
    free(told);
    free(pfd);
}

int main(int argc, char **argv)
{
    struct options o;
    parse(&o, argc, argv);
    signal(SIGPIPE, SIG_IGN);
    long long nofile = raise_nofile_limit();
    if (nofile < o.connections + 16) {
        fprintf(stderr, "chatd-abuse: the open-file limit (%lld) is below %d connections\n", nofile,
                o.connections);
        return 1;
    }
    int all = strcmp(o.workload, "all") == 0, ran = 0;
    if (all || strcmp(o.workload, "pipeline") == 0) {
        workload_pipeline(&o);
        ran = 1;
    }
    if (all || strcmp(o.workload, "partial") == 0) {
        workload_partial(&o);
        ran = 1;
    }
    if (all || strcmp(o.workload, "slowloris") == 0) {
        workload_slowloris(&o);
        ran = 1;
    }
    if (!ran) {
        usage(stderr);
        return 2;
    }
    return 0;
}
