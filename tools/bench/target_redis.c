/* target_redis.c - --target redis: Redis pub/sub. Each session is one connection in
 * RESP3 (HELLO 3, so a subscribed connection may still PUBLISH) subscribed to its
 * user's channel (the user's name); a private message is PUBLISH to the recipient's
 * channel, and its integer reply (the subscribers reached) is the reply. A group is a
 * channel every member subscribes to, its sender included (target.h: echoes_group). */
#include "proto.h"
#include "resp.h"
#include "target.h"
#include "traffic.h"

#include <stdio.h>
#include <string.h>

/* Feed a line to p's reader; exits on an error reply. */
static enum resp_event feed(struct peer *p, const char *line, size_t len, long long *value)
{
    enum resp_event ev = resp_feed(&p->resp, line, len, value);
    if (ev == RESP_ERROR)
        die("redis answered: %.*s", (int)len, line);
    return ev;
}

static void subscribe(struct peer *p, const char *hello, const char *channel)
{
    char *out = conn_reserve(&p->c, 64 + strlen(channel));
    conn_commit(&p->c, (size_t)sprintf(out, "%sSUBSCRIBE %s\r\n", hello, channel));
}

/* 1 once the SUBSCRIBE is confirmed (HELLO's map before it is passed over). */
static int subscribed(struct peer *p, char *line, size_t len)
{
    long long v;
    return feed(p, line, len, &v) == RESP_SUBSCRIBED;
}

static void session_request(struct bench *b, struct peer *p)
{
    char channel[40];
    user_name(b, p->user, channel);
    subscribe(p, "HELLO 3\r\n", channel);
}

static void join_request(struct bench *b, struct peer *p)
{
    char channel[40];
    group_name(b, channel);
    subscribe(p, "", channel);
}

static const struct setup_step session_step = {"subscribed", session_request, subscribed};
static const struct setup_step join_step = {"subscribed to the group", join_request, subscribed};

/* PUBLISH as a RESP array, up to the text's length: *3 $7 PUBLISH $N CHANNEL $ */
static void publish_head(const char *channel, char *out)
{
    sprintf(out, "*3\r\n$7\r\nPUBLISH\r\n$%zu\r\n%s\r\n$", strlen(channel), channel);
}

static void private_head(struct bench *b, int to, char *out)
{
    char channel[40];
    user_name(b, to, channel);
    publish_head(channel, out);
}

static void group_head(struct bench *b, char *out)
{
    char channel[40];
    group_name(b, channel);
    publish_head(channel, out);
}

/* The text's length and line break: the text is a bulk string. */
static size_t before_text(struct traffic *t, struct peer *p, size_t text_len, char *out)
{
    (void)t;
    (void)p;
    size_t n = proto_put_u64(out, text_len);
    memcpy(out + n, "\r\n", 2);
    return n + 2;
}

static enum wire_event line(struct traffic *t, struct peer *p, char *l, size_t len, int *ok,
                            const char **text, size_t *text_len)
{
    (void)t;
    long long subscribers = 0;
    switch (feed(p, l, len, &subscribers)) {
    case RESP_MESSAGE:
        *text = l;
        *text_len = len;
        return WIRE_DELIVERY;
    case RESP_INTEGER:
        *ok = subscribers > 0; /* 0: nobody was subscribed to the channel */
        return WIRE_REPLY;
    default:
        return WIRE_OTHER;
    }
}

const struct target target_redis = {.name = "redis",
                                    .replies = 1,
                                    .echoes_group = 1,
                                    .session = &session_step,
                                    .join = &join_step,
                                    .private_head = private_head,
                                    .group_head = group_head,
                                    .before_text = before_text,
                                    .after_text = "\r\n",
                                    .line = line};
