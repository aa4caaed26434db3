/* pages.c - the bench's side of the wire: a blocking client (one request, then its
 * reply line), the setup (users and groups), and the measurement of history pages. */
#include "bench_history.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES (1 << 20)

struct wire {
    int fd;
    size_t len;
    char *buf;
};

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int wire_open(struct wire *w, const struct bh_options *o)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
    w->len = 0;
    w->buf = malloc(LINE_MAX_BYTES);
    w->fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    if (!w->buf || w->fd < 0 || inet_pton(AF_INET, o->host, &sa.sin_addr) != 1 ||
        setsockopt(w->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
        connect(w->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        fprintf(stderr, "chatd-bench-history: cannot connect to %s:%d\n", o->host, o->port);
        return -1;
    }
    return 0;
}

static void wire_close(struct wire *w)
{
    if (w->fd >= 0)
        close(w->fd);
    free(w->buf);
}

/* Send the request, return the next line that is its reply (pushes are skipped). */
static json_t *wire_call(struct wire *w, json_t *request)
{
    char *text = json_dumps(request, JSON_COMPACT);
    const char *cmd = json_string_value(json_object_get(request, "cmd"));
    char reply_cmd[64];
    snprintf(reply_cmd, sizeof(reply_cmd), "%s_reply", cmd ? cmd : "");
    json_decref(request);
    size_t n = text ? strlen(text) : 0;
    if (!text || send(w->fd, text, n, MSG_NOSIGNAL) != (ssize_t)n) {
        free(text);
        return NULL;
    }
    free(text);
    for (;;) {
        char *nl = memchr(w->buf, '\n', w->len);
        if (nl) {
            size_t line = (size_t)(nl - w->buf) + 1;
            json_t *msg = json_loadb(w->buf, line, 0, NULL);
            memmove(w->buf, w->buf + line, w->len - line);
            w->len -= line;
            const char *got = json_string_value(json_object_get(msg, "cmd"));
            if (got && (strcmp(got, reply_cmd) == 0 || strcmp(got, "error") == 0))
                return msg;
            json_decref(msg);
            continue;
        }
        if (w->len == LINE_MAX_BYTES)
            return NULL;
        ssize_t got = recv(w->fd, w->buf + w->len, LINE_MAX_BYTES - w->len, 0);
        if (got <= 0)
            return NULL;
        w->len += (size_t)got;
    }
}

/* The reply's result word is one of the accepted ones (NULL-terminated). */
static int call_expect(struct wire *w, json_t *request, const char *const *ok)
{
    json_t *reply = wire_call(w, request);
    const char *result = json_string_value(json_object_get(reply, "result"));
    for (size_t i = 0; result && ok[i]; i++)
        if (strcmp(result, ok[i]) == 0) {
            json_decref(reply);
            return 0;
        }
    char *text = reply ? json_dumps(reply, JSON_COMPACT) : NULL;
    fprintf(stderr, "chatd-bench-history: unexpected reply %s\n", text ? text : "(none)");
    free(text);
    json_decref(reply);
    return -1;
}

static int login(struct wire *w, const char *user)
{
    static const char *const ok[] = {"success", NULL};
    return call_expect(w, json_pack("{ssssss}", "cmd", "login", "user", user, "passwd", BH_PASSWD),
                       ok);
}

int bh_setup(const struct bh_options *o)
{
    static const char *const registered[] = {"success", "failure", NULL}; /* failure: taken */
    static const char *const created[] = {"success", "failure", NULL};
    struct wire w;
    int rc = wire_open(&w, o);
    char name[BH_NAME_MAX + 1];
    for (int i = -1; rc == 0 && i < o->measured; i++) {
        if (i < 0)
            snprintf(name, sizeof(name), "%s", BH_READER);
        else
            bh_peer_name(i, name);
        rc = call_expect(
            &w, json_pack("{ssssss}", "cmd", "register", "user", name, "passwd", BH_PASSWD),
            registered);
    }
    if (rc == 0)
        rc = login(&w, BH_READER);
    /* The reader creates the groups before the fill: a member from before every message. */
    for (int i = 0; rc == 0 && i < o->measured && i < o->groups; i++) {
        bh_group_name(i, name);
        rc = call_expect(&w, json_pack("{ssss}", "cmd", "create_group", "group", name), created);
    }
    wire_close(&w);
    return rc;
}

static int compare_us(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void print_figures(const char *what, int64_t *us, int n, long long messages)
{
    qsort(us, (size_t)n, sizeof(*us), compare_us);
    int p99 = (int)((double)n * 0.99);
    printf("%-34s pages %5d  p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms  (%.1f messages/page)\n",
           what, n, (double)us[n / 2] / 1000, (double)us[p99 < n ? p99 : n - 1] / 1000,
           (double)us[n - 1] / 1000, n ? (double)messages / n : 0);
}

/* One page: the time it took, its messages' count and the oldest and newest seq. */
struct page {
    int64_t us;
    size_t n;
    int64_t oldest, newest;
};

static int read_page(struct wire *w, int group, int i, int64_t before, int limit, struct page *page)
{
    char name[BH_NAME_MAX + 1], before_text[24];
    if (group)
        bh_group_name(i, name);
    else
        bh_peer_name(i, name);
    json_t *request =
        json_pack("{sssssi}", "cmd", "history", group ? "group" : "with", name, "limit", limit);
    if (before > 0) {
        snprintf(before_text, sizeof(before_text), "%lld", (long long)before);
        json_object_set_new(request, "before", json_string(before_text));
    }
    int64_t t0 = now_us();
    json_t *reply = wire_call(w, request);
    page->us = now_us() - t0;
    const json_t *msgs = json_object_get(reply, "messages");
    if (!json_is_array(msgs)) {
        char *text = reply ? json_dumps(reply, JSON_COMPACT) : NULL;
        fprintf(stderr, "chatd-bench-history: history failed: %s\n", text ? text : "(none)");
        free(text);
        json_decref(reply);
        return -1;
    }
    page->n = json_array_size(msgs);
    page->oldest =
        page->n ? json_integer_value(json_object_get(json_array_get(msgs, 0), "seq")) : 0;
    page->newest =
        page->n ? json_integer_value(json_object_get(json_array_get(msgs, page->n - 1), "seq")) : 0;
    json_decref(reply);
    return 0;
}

/* first: pages without before; deep: before a random id below the conversation's newest. */
static int measure_kind(struct wire *w, const struct bh_options *o, int group)
{
    int conversations = group ? (o->measured < o->groups ? o->measured : o->groups) : o->measured;
    if (conversations <= 0)
        return 0;
    int64_t *first = calloc((size_t)o->pages, sizeof(int64_t));
    int64_t *deep = calloc((size_t)o->pages, sizeof(int64_t));
    int64_t *newest = calloc((size_t)conversations, sizeof(int64_t));
    long long first_msgs = 0, deep_msgs = 0;
    int rc = first && deep && newest ? 0 : -1;
    struct page page;
    for (int p = 0; rc == 0 && p < o->pages; p++) {
        int i = p % conversations;
        rc = read_page(w, group, i, 0, o->limit, &page);
        first[p] = page.us;
        first_msgs += (long long)page.n;
        newest[i] = page.newest;
    }
    for (int p = 0; rc == 0 && p < o->pages; p++) {
        int i = rand() % conversations;
        int64_t before =
            newest[i] > 1 ? 1 + (int64_t)((double)rand() / RAND_MAX * (double)newest[i]) : 0;
        rc = read_page(w, group, i, before, o->limit, &page);
        deep[p] = page.us;
        deep_msgs += (long long)page.n;
    }
    if (rc == 0) {
        char what[64];
        snprintf(what, sizeof(what), "%s, first page:", group ? "group" : "private");
        print_figures(what, first, o->pages, first_msgs);
        snprintf(what, sizeof(what), "%s, deep page (before):", group ? "group" : "private");
        print_figures(what, deep, o->pages, deep_msgs);
    }
    free(first);
    free(deep);
    free(newest);
    return rc;
}

/* One conversation paged back to its first message: pages and time in all. */
static int walk_back(struct wire *w)
{
    struct page page = {0};
    int64_t before = 0, total_us = 0, worst = 0;
    long long pages = 0, messages = 0;
    do {
        if (read_page(w, 0, 0, before, 200, &page) != 0)
            return -1;
        total_us += page.us;
        worst = page.us > worst ? page.us : worst;
        pages++;
        messages += (long long)page.n;
        before = page.oldest;
    } while (page.n > 0 && before > 0);
    printf("private conversation paged back to its start: %lld messages in %lld pages of 200, "
           "%.2f ms/page on average, max %.2f ms\n",
           messages, pages, (double)total_us / 1000 / (double)pages, (double)worst / 1000);
    return 0;
}

int bh_measure(const struct bh_options *o)
{
    struct wire w;
    int rc = wire_open(&w, o);
    if (rc == 0)
        rc = login(&w, BH_READER);
    srand(12345);
    printf("history pages of %d messages over TCP, one request at a time:\n", o->limit);
    if (rc == 0)
        rc = measure_kind(&w, o, 0);
    if (rc == 0)
        rc = measure_kind(&w, o, 1);
    if (rc == 0)
        rc = walk_back(&w);
    wire_close(&w);
    return rc;
}
