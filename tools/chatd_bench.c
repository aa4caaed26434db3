/* chatd-bench - a load generator for chatd, on libevent, speaking the wire contract.
 *
 * Workload "private" (the one this version has): N users log in, each sends private
 * messages to the next user in a ring, keeping W requests in flight, for T seconds.
 * Every text carries the sender's index, a sequence number and the send time, so the
 * receiver measures latency and counts lost and duplicated messages without parsing
 * JSON. Prints a progress line a second on stderr and one JSON object of figures on
 * stdout: deliveries/s, latency percentiles, lost, duplicated, and the bench's own CPU
 * use (it must stay below the server's to measure the server).
 *
 *   chatd-bench --port 8000 [--users 100] [--inflight 8] [--seconds 10]
 *               [--password bench] [--prefix b]
 *
 * The users are registered on first use; run the server with a cheap password cost
 * (e.g. --set plugin.chat.password_opslimit=1 --set plugin.chat.password_memlimit_kib=8)
 * or the setup is dominated by Argon2id, as it should be in production. */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

enum phase { REGISTERING, LOGGING_IN, RUNNING, DRAINING };

struct user {
    struct bench *bench;
    struct bufferevent *bev;
    int index;
    enum phase phase;
    uint64_t next_seq;   /* sequence number of the next message sent */
    uint64_t *last_seen; /* per sender: highest sequence number received */
    int inflight;
};

struct bench {
    struct event_base *base;
    const char *host;
    int port, users, inflight, seconds;
    const char *password, *prefix;
    struct user *u;
    int logged_in;
    int64_t start_ns, end_ns;
    uint64_t sent, replies, delivered, duplicated, errors;
    uint64_t *latencies; /* microseconds, one per delivery */
    size_t n_lat, cap_lat;
    struct event *tick;
    uint64_t last_delivered;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void send_line(struct user *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void send_line(struct user *u, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    evbuffer_add_vprintf(bufferevent_get_output(u->bev), fmt, ap);
    va_end(ap);
}

static void send_message(struct user *u)
{
    struct bench *b = u->bench;
    int to = (u->index + 1) % b->users;
    send_line(u, "{\"cmd\":\"private_chat\",\"user_to\":\"%s%d\",\"text\":\"b %d %llu %lld\"}\n",
              b->prefix, to, u->index, (unsigned long long)u->next_seq++, (long long)now_ns());
    u->inflight++;
    b->sent++;
}

static void start_sending(struct user *u)
{
    u->phase = RUNNING;
    for (int i = 0; i < u->bench->inflight; i++)
        send_message(u);
}

static void record_latency(struct bench *b, uint64_t us)
{
    if (b->n_lat == b->cap_lat) {
        size_t cap = b->cap_lat ? b->cap_lat * 2 : 1 << 16;
        uint64_t *more = realloc(b->latencies, cap * sizeof(*more));
        if (!more)
            return;
        b->latencies = more;
        b->cap_lat = cap;
    }
    b->latencies[b->n_lat++] = us;
}

/* A received private message: "b <from> <seq> <t_ns>" somewhere in the line. */
static void on_delivery(struct user *u, const char *line)
{
    struct bench *b = u->bench;
    const char *text = strstr(line, "\"text\":\"b ");
    int from;
    unsigned long long seq;
    long long sent_ns;
    if (!text || sscanf(text + 10, "%d %llu %lld", &from, &seq, &sent_ns) != 3 || from < 0 ||
        from >= b->users)
        return;
    if (u->last_seen[from] && seq <= u->last_seen[from] - 1) {
        b->duplicated++;
        return;
    }
    u->last_seen[from] = seq + 1;
    b->delivered++;
    int64_t t = now_ns();
    if (t <= b->end_ns)
        record_latency(b, (uint64_t)(t - sent_ns) / 1000);
}

static void all_logged_in(struct bench *b);

static void on_line(struct user *u, const char *line)
{
    struct bench *b = u->bench;
    if (strstr(line, "\"cmd\":\"private_chat_recv\"")) {
        on_delivery(u, line);
        return;
    }
    if (strstr(line, "\"cmd\":\"register_reply\"")) {
        u->phase = LOGGING_IN;
        send_line(u, "{\"cmd\":\"login\",\"user\":\"%s%d\",\"passwd\":\"%s\"}\n", b->prefix,
                  u->index, b->password);
        return;
    }
    if (strstr(line, "\"cmd\":\"login_reply\"")) {
        if (!strstr(line, "\"result\":\"success\"")) {
            fprintf(stderr, "login of %s%d failed: %s\n", b->prefix, u->index, line);
            exit(1);
        }
        if (++b->logged_in == b->users)
            all_logged_in(b);
        return;
    }
    if (strstr(line, "\"cmd\":\"private_chat_reply\"")) {
        b->replies++;
        u->inflight--;
        if (!strstr(line, "\"result\":\"success\""))
            b->errors++;
        if (u->phase == RUNNING && now_ns() < b->end_ns)
            send_message(u);
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    char *line;
    size_t len;
    while ((line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF))) {
        on_line(arg, line);
        free(line);
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct user *u = arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        fprintf(stderr, "connection of user %d closed by the server\n", u->index);
        exit(1);
    }
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int compare(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static uint64_t percentile(struct bench *b, double p)
{
    if (b->n_lat == 0)
        return 0;
    size_t i = (size_t)(p * (double)(b->n_lat - 1));
    return b->latencies[i];
}

static double cpu_at_start;

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct bench *b = arg;
    int64_t t = now_ns();
    if (t < b->end_ns) {
        fprintf(stderr, "%5.1fs  %8llu deliveries/s  sent %llu  delivered %llu\n",
                (double)(t - b->start_ns) / 1e9,
                (unsigned long long)(b->delivered - b->last_delivered), (unsigned long long)b->sent,
                (unsigned long long)b->delivered);
        b->last_delivered = b->delivered;
        return;
    }
    /* After the run, wait up to 2 s for messages still in flight, then report. */
    if (b->delivered + b->duplicated < b->sent && t < b->end_ns + 2000000000LL)
        return;
    double seconds = (double)(b->end_ns - b->start_ns) / 1e9;
    qsort(b->latencies, b->n_lat, sizeof(*b->latencies), compare);
    uint64_t lost = b->sent > b->delivered ? b->sent - b->delivered : 0;
    printf("{\"workload\":\"private\",\"users\":%d,\"inflight\":%d,\"seconds\":%.1f,"
           "\"deliveries_per_s\":%.0f,\"latency_us\":{\"p50\":%llu,\"p90\":%llu,\"p99\":%llu,"
           "\"p999\":%llu},\"sent\":%llu,\"delivered\":%llu,\"lost\":%llu,\"duplicated\":%llu,"
           "\"non_success_replies\":%llu,\"bench_cpu_s\":%.2f}\n",
           b->users, b->inflight, seconds, (double)b->n_lat / seconds,
           (unsigned long long)percentile(b, 0.50), (unsigned long long)percentile(b, 0.90),
           (unsigned long long)percentile(b, 0.99), (unsigned long long)percentile(b, 0.999),
           (unsigned long long)b->sent, (unsigned long long)b->delivered, (unsigned long long)lost,
           (unsigned long long)b->duplicated, (unsigned long long)b->errors,
           cpu_seconds() - cpu_at_start);
    event_base_loopexit(b->base, NULL);
}

static void all_logged_in(struct bench *b)
{
    fprintf(stderr, "%d users logged in; running %d s\n", b->users, b->seconds);
    cpu_at_start = cpu_seconds();
    b->start_ns = now_ns();
    b->end_ns = b->start_ns + (int64_t)b->seconds * 1000000000LL;
    for (int i = 0; i < b->users; i++)
        start_sending(&b->u[i]);
    struct timeval second = {1, 0};
    b->tick = event_new(b->base, -1, EV_PERSIST, on_tick, b);
    event_add(b->tick, &second);
}

static void usage(void)
{
    fprintf(stderr, "usage: chatd-bench --port P [--host 127.0.0.1] [--users N] [--inflight W]\n"
                    "                   [--seconds T] [--password P] [--prefix NAME]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct bench b = {.host = "127.0.0.1",
                      .users = 100,
                      .inflight = 8,
                      .seconds = 10,
                      .password = "bench",
                      .prefix = "b"};
    for (int i = 1; i < argc; i += 2) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            usage();
        if (strcmp(argv[i], "--port") == 0)
            b.port = atoi(v);
        else if (strcmp(argv[i], "--host") == 0)
            b.host = v;
        else if (strcmp(argv[i], "--users") == 0)
            b.users = atoi(v);
        else if (strcmp(argv[i], "--inflight") == 0)
            b.inflight = atoi(v);
        else if (strcmp(argv[i], "--seconds") == 0)
            b.seconds = atoi(v);
        else if (strcmp(argv[i], "--password") == 0)
            b.password = v;
        else if (strcmp(argv[i], "--prefix") == 0)
            b.prefix = v;
        else
            usage();
    }
    if (b.port <= 0 || b.users < 2 || b.inflight < 1 || b.seconds < 1)
        usage();
    b.base = event_base_new();
    b.u = calloc((size_t)b.users, sizeof(*b.u));
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)b.port)};
    if (!b.base || !b.u || inet_pton(AF_INET, b.host, &addr.sin_addr) != 1)
        usage();
    for (int i = 0; i < b.users; i++) {
        struct user *u = &b.u[i];
        u->bench = &b;
        u->index = i;
        u->last_seen = calloc((size_t)b.users, sizeof(*u->last_seen));
        u->bev = bufferevent_socket_new(b.base, -1, BEV_OPT_CLOSE_ON_FREE);
        if (!u->last_seen || !u->bev ||
            bufferevent_socket_connect(u->bev, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
            fprintf(stderr, "cannot connect to %s:%d\n", b.host, b.port);
            return 1;
        }
        int one = 1;
        setsockopt(bufferevent_getfd(u->bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        bufferevent_setcb(u->bev, on_read, NULL, on_event, u);
        bufferevent_enable(u->bev, EV_READ | EV_WRITE);
        send_line(u, "{\"cmd\":\"register\",\"user\":\"%s%d\",\"passwd\":\"%s\"}\n", b.prefix, i,
                  b.password);
    }
    event_base_dispatch(b.base);
    return 0;
}
