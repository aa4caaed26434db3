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

static void sessions(struct bench *b, struct peer *peers, int n, const struct conn_ops *after,
                     struct setup_figures *f)
{
    setup_login(b, peers, n, after, f);
}

/* ---- the group: created by the first member, joined by the others ---- */

static const char *group_name;

static void group_request(struct bench *b, struct peer *p, const char *cmd)
{
    (void)b;
    char *out = conn_reserve(&p->c, 64 + strlen(group_name));
    conn_commit(&p->c,
                (size_t)sprintf(out, "{\"cmd\":\"%s\",\"group\":\"%s\"}\n", cmd, group_name));
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

static void join_group(struct bench *b, struct peer *peers, int n, const char *name,
                       const struct conn_ops *after)
{
    group_name = name;
    setup_each(b, peers, 1, &create_step, after);
    setup_each(b, peers + 1, n - 1, &join_step, after);
}

/* ---- messages ---- */

static void private_head(struct bench *b, int to, char *out)
{
    size_t n = (size_t)sprintf(out, "{\"cmd\":\"private_chat\",\"user_to\":\"");
    n += user_name(b, to, out + n);
    memcpy(out + n, "\",", 3);
}

static void group_head(struct bench *b, const char *name, char *out)
{
    (void)b;
    sprintf(out, "{\"cmd\":\"group_chat\",\"group\":\"%s\",", name);
}

/* head, with --client-ids "client_msg_id":"<base>-<seq>", then "text":"TEXT"} */
static void request(struct traffic *t, struct peer *p, const char *text, size_t len)
{
    struct conn *c = &p->c;
    char *o = conn_reserve(c, p->req_len + 64 + len);
    size_t n = p->req_len;
    memcpy(o, p->req, n);
    if (t->b->opt.client_ids) {
        memcpy(o + n, "\"client_msg_id\":\"", 17);
        n += 17;
        n += proto_put_u64(o + n, t->id_base);
        o[n++] = '-';
        n += proto_put_u64(o + n, p->next_seq - 1); /* the text's number */
        memcpy(o + n, "\",", 2);
        n += 2;
    }
    memcpy(o + n, "\"text\":\"", 8);
    n += 8;
    memcpy(o + n, text, len);
    n += len;
    memcpy(o + n, "\"}\n", 3);
    conn_commit(c, n + 3);
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
                                    .sessions = sessions,
                                    .join_group = join_group,
                                    .private_head = private_head,
                                    .group_head = group_head,
                                    .request = request,
                                    .line = line};
