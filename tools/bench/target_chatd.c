/* target_chatd.c - --target chatd: users registered and logged in, groups created and
 * joined, private_chat and group_chat requests, and the reply and *_recv lines. */
#include "proto.h"
#include "target.h"
#include "traffic.h"

#include <stdio.h>
#include <string.h>

static void prepare(struct bench *b, int n, struct setup_figures *f)
{
    setup_register(b, 0, n, f);
}

/* ---- the group: created by the first member, joined by the others ---- */

static void group_request(struct bench *b, struct peer *p, const char *cmd)
{
    char name[40];
    group_name(b, name);
    char *out = conn_reserve(&p->c, 128);
    conn_commit(&p->c, (size_t)sprintf(out, "{\"cmd\":\"%s\",\"group\":\"%s\"}\n", cmd, name));
}

/* 1 for the reply `cmd`, with result success (or, for a join, already_member). */
static int group_answer(const char *line, size_t len, const char *cmd)
{
    size_t n;
    const char *c = proto_cmd(line, len, &n);
    if (!proto_cmd_is(c, n, cmd))
        return 0;
    if (!proto_result_is(line, len, "success") && !proto_result_is(line, len, "already_member"))
        die("%s refused: %s", cmd, line);
    return 1;
}

static void create_request(struct bench *b, struct peer *p)
{
    group_request(b, p, "create_group");
}

static int create_answer(struct peer *p, char *line, size_t len)
{
    (void)p;
    return group_answer(line, len, "create_group_reply");
}

static void join_request(struct bench *b, struct peer *p)
{
    group_request(b, p, "join_group");
}

static int join_answer(struct peer *p, char *line, size_t len)
{
    (void)p;
    return group_answer(line, len, "join_group_reply");
}

static const struct setup_step create_step = {"create_group_reply", create_request, create_answer};
static const struct setup_step join_step = {"join_group_reply", join_request, join_answer};

/* ---- messages ---- */

static void private_head(struct bench *b, int to, char *out)
{
    size_t n = (size_t)sprintf(out, "{\"cmd\":\"private_chat\",\"user_to\":\"");
    n += user_name(b, to, out + n);
    memcpy(out + n, "\",", 3);
}

static void group_head(struct bench *b, char *out)
{
    size_t n = (size_t)sprintf(out, "{\"cmd\":\"group_chat\",\"group\":\"");
    n += group_name(b, out + n);
    memcpy(out + n, "\",", 3);
}

/* With --client-ids "client_msg_id":"<base>-<seq>", then "text":" */
static size_t before_text(struct traffic *t, struct peer *p, size_t text_len, char *out)
{
    (void)text_len;
    size_t n = 0;
    if (t->b->opt.client_ids) {
        memcpy(out, "\"client_msg_id\":\"", 17);
        n += 17;
        n += proto_put_u64(out + n, t->id_base);
        out[n++] = '-';
        n += proto_put_u64(out + n, p->next_seq - 1); /* the text's number */
        memcpy(out + n, "\",", 2);
        n += 2;
    }
    memcpy(out + n, "\"text\":\"", 8);
    return n + 8;
}

static enum wire_event line(struct traffic *t, struct peer *p, char *l, size_t len, int *ok,
                            const char **text, size_t *text_len)
{
    (void)p;
    size_t n;
    const char *cmd = proto_cmd(l, len, &n);
    if (proto_cmd_is(cmd, n, t->recv_cmd)) {
        if (!(*text = proto_text(l, len, text_len)))
            *text_len = 0; /* no text: counted as unexpected */
        return WIRE_DELIVERY;
    }
    if (proto_cmd_is(cmd, n, t->reply_cmd)) {
        *ok = proto_result_is(l, len, t->ok_word);
        return WIRE_REPLY;
    }
    if (proto_cmd_is(cmd, n, "error"))
        die("the server answered: %s", l);
    return WIRE_OTHER; /* presence, say: not part of the measurement */
}

const struct target target_chatd = {.name = "chatd",
                                    .replies = 1,
                                    .echoes_group = 0,
                                    .prepare = prepare,
                                    .session = &setup_chatd_login,
                                    .create = &create_step,
                                    .join = &join_step,
                                    .private_head = private_head,
                                    .group_head = group_head,
                                    .before_text = before_text,
                                    .after_text = "\"}\n",
                                    .line = line};
