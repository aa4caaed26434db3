/* bench_pool.c - load generator for the worker pool (a benchmark, not a test).
 *
 * Keeps C connections busy with a database command (one request in flight each, as the
 * server allows), counts replies per second, and meanwhile measures the round trip of
 * `ping` on a connection of its own: ping never touches the database, so its latency
 * shows whether the event loop stays free while the pool is saturated.
 *
 *   bench_pool --port P [--connections C] [--seconds S] [--cmd NAME] [--label TEXT]
 *
 * Prints one JSON object with the figures. tools/bench-pool runs it against a chatd
 * with 1, 2, 4 and 8 workers. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNECTIONS  1024
#define PING_INTERVAL_NS 2000000 /* one ping every 2 ms */

struct conn {
    int fd;
    char buf[4096];
    size_t len;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        perror("connect");
        exit(1);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static void send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n <= 0) {
            perror("write");
            exit(1);
        }
        data += n;
        len -= (size_t)n;
    }
}

/* Read what is available; returns the number of complete lines, counting those whose
 * result is "success" into *ok. */
static int read_lines(struct conn *c, long *ok)
{
    ssize_t n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len - 1);
    if (n <= 0) {
        fprintf(stderr, "connection closed by the server\n");
        exit(1);
    }
    c->len += (size_t)n;
    c->buf[c->len] = '\0';
    int lines = 0;
    char *start = c->buf, *nl;
    while ((nl = memchr(start, '\n', c->len - (size_t)(start - c->buf)))) {
        *nl = '\0';
        if (strstr(start, "\"result\":\"success\""))
            (*ok)++;
        lines++;
        start = nl + 1;
    }
    c->len -= (size_t)(start - c->buf);
    memmove(c->buf, start, c->len);
    return lines;
}

static int compare(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int port = 0, connections = 64, seconds = 5;
    const char *cmd = "db_ping", *label = "";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--connections") == 0)
            connections = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--cmd") == 0)
            cmd = argv[i + 1];
        else if (strcmp(argv[i], "--label") == 0)
            label = argv[i + 1];
    }
    if (port <= 0 || connections < 1 || connections > MAX_CONNECTIONS || seconds < 1) {
        fprintf(stderr,
                "usage: bench_pool --port P [--connections C (1-%d)] [--seconds S] "
                "[--cmd NAME] [--label TEXT]\n",
                MAX_CONNECTIONS);
        return 2;
    }
    char request[128];
    int request_len = snprintf(request, sizeof(request), "{\"cmd\":\"%s\"}\n", cmd);
    static const char ping[] = "{\"cmd\":\"ping\"}\n";

    static struct conn conns[MAX_CONNECTIONS + 1];
    static struct pollfd fds[MAX_CONNECTIONS + 1];
    for (int i = 0; i <= connections; i++) {
        conns[i].fd = connect_to(port);
        fds[i] = (struct pollfd){.fd = conns[i].fd, .events = POLLIN};
    }
    struct conn *prober = &conns[connections];
    size_t cap = (size_t)seconds * 1000000000 / PING_INTERVAL_NS + 16, n_rtt = 0;
    int64_t *rtt = malloc(cap * sizeof(*rtt));

    for (int i = 0; i < connections; i++)
        send_all(conns[i].fd, request, (size_t)request_len);
    long replies = 0, ok = 0, ping_ok = 0;
    int64_t start = now_ns(), end = start + (int64_t)seconds * 1000000000;
    int64_t ping_sent = 0, next_ping = start;
    while (now_ns() < end) {
        int64_t now = now_ns();
        if (!ping_sent && now >= next_ping) {
            send_all(prober->fd, ping, sizeof(ping) - 1);
            ping_sent = now;
        }
        if (poll(fds, (nfds_t)connections + 1, 1) <= 0)
            continue;
        for (int i = 0; i < connections; i++) {
            if (!(fds[i].revents & POLLIN))
                continue;
            int lines = read_lines(&conns[i], &ok);
            replies += lines;
            for (int k = 0; k < lines; k++)
                send_all(conns[i].fd, request, (size_t)request_len);
        }
        if ((fds[connections].revents & POLLIN) && read_lines(prober, &ping_ok) > 0) {
            int64_t t = now_ns();
            if (n_rtt < cap)
                rtt[n_rtt++] = t - ping_sent;
            ping_sent = 0;
            next_ping = t + PING_INTERVAL_NS;
        }
    }
    double elapsed = (double)(now_ns() - start) / 1e9;
    qsort(rtt, n_rtt, sizeof(*rtt), compare);
    double p50 = n_rtt ? (double)rtt[n_rtt / 2] / 1000.0 : 0;
    double p99 = n_rtt ? (double)rtt[n_rtt * 99 / 100] / 1000.0 : 0;
    double worst = n_rtt ? (double)rtt[n_rtt - 1] / 1000.0 : 0;
    printf("{\"label\":\"%s\",\"cmd\":\"%s\",\"connections\":%d,\"seconds\":%.1f,"
           "\"replies_per_s\":%.0f,\"non_success\":%ld,\"pings\":%zu,"
           "\"ping_p50_us\":%.0f,\"ping_p99_us\":%.0f,\"ping_max_us\":%.0f}\n",
           label, cmd, connections, elapsed, (double)replies / elapsed, replies - ok, n_rtt, p50,
           p99, worst);
    free(rtt);
    return 0;
}
