/* acks.c - the highest seq shown and the batched acks (see acks.h). */
#include "acks.h"

#include <stdlib.h>
#include <string.h>

struct chat_acks {
    struct event *timer;
    struct chat_conn *conn;
    long long shown; /* the highest seq printed, 0 before the first */
    long long acked; /* the highest seq acknowledged on some connection */
    int refused;     /* the server takes no acks: send none */
};

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    chat_acks_flush(arg);
}

struct chat_acks *chat_acks_new(struct event_base *base)
{
    struct chat_acks *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->timer = evtimer_new(base, on_timer, a);
    if (!a->timer) {
        free(a);
        return NULL;
    }
    return a;
}

void chat_acks_free(struct chat_acks *a)
{
    if (!a)
        return;
    event_free(a->timer);
    free(a);
}

void chat_acks_attach(struct chat_acks *a, struct chat_conn *conn)
{
    a->conn = conn;
}

int chat_acks_login_fields(const struct chat_acks *a, json_t *req, const char *device, int resume)
{
    if (json_object_set_new(req, "device", json_string(device)) != 0 ||
        json_object_set_new(req, "ack", json_true()) != 0)
        return -1;
    if (resume && a->shown > 0 && json_object_set_new(req, "since", json_integer(a->shown)) != 0)
        return -1;
    return 0;
}

static long long seq_of(const json_t *push)
{
    const json_t *seq = json_object_get(push, "seq");
    return json_is_integer(seq) && json_integer_value(seq) > 0 ? json_integer_value(seq) : 0;
}

int chat_acks_is_repeat(const struct chat_acks *a, const json_t *push)
{
    long long seq = seq_of(push);
    return seq > 0 && seq <= a->shown;
}

void chat_acks_shown(struct chat_acks *a, const json_t *push)
{
    long long seq = seq_of(push);
    if (seq <= a->shown)
        return;
    a->shown = seq;
    if (!a->refused && !evtimer_pending(a->timer, NULL)) {
        struct timeval tv = {.tv_sec = 0, .tv_usec = CHAT_ACK_DELAY_MS * 1000};
        evtimer_add(a->timer, &tv);
    }
}

int chat_acks_flush(struct chat_acks *a)
{
    evtimer_del(a->timer);
    if (a->refused || !a->conn || a->shown <= a->acked)
        return 0;
    json_t *req = json_pack("{sssI}", "cmd", "ack", "seq", (json_int_t)a->shown);
    int rc = req ? chat_conn_send_oneway(a->conn, req) : -1;
    json_decref(req);
    if (rc != 0)
        return 0; /* the connection failed: the next login's "since" covers it */
    a->acked = a->shown;
    return 1;
}

int chat_acks_refused(struct chat_acks *a)
{
    evtimer_del(a->timer);
    int first = !a->refused;
    a->refused = 1;
    return first;
}

int chat_acks_is_answer(const json_t *push)
{
    const char *cmd = json_string_value(json_object_get(push, "cmd"));
    const char *request = json_string_value(json_object_get(push, "request"));
    return cmd && (strcmp(cmd, "ack_reply") == 0 ||
                   (strcmp(cmd, "error") == 0 && request && strcmp(request, "ack") == 0));
}
