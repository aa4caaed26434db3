/* target_irc.c - --target irc: an IRC server (InspIRCd). Each session registers with
 * NICK and USER as its user's name; a private message is PRIVMSG to the recipient's
 * nick, a group is the channel #NAME that every member JOINs. IRC answers no PRIVMSG,
 * so a message counts as answered when it reaches its designated receiver (target.h). */
#include "target.h"
#include "traffic.h"

#include <stdio.h>
#include <string.h>

/* An IRC line split as RFC 1459 says: [:prefix] COMMAND params [:trailing]. */
struct irc_line {
    const char *cmd, *params, *end;
    size_t cmd_len;
};

static int irc_parse(const char *l, size_t len, struct irc_line *m)
{
    const char *p = l, *end = l + len;
    if (end > p && end[-1] == '\r')
        end--;
    if (p < end && *p == ':') {
        p = memchr(p, ' ', (size_t)(end - p));
        if (!p)
            return -1;
        p++;
    }
    const char *sp = memchr(p, ' ', (size_t)(end - p));
    m->cmd = p;
    m->cmd_len = (size_t)((sp ? sp : end) - p);
    m->params = sp ? sp + 1 : end;
    m->end = end;
    return m->cmd_len ? 0 : -1;
}

static int is_cmd(const struct irc_line *m, const char *cmd)
{
    return strlen(cmd) == m->cmd_len && memcmp(m->cmd, cmd, m->cmd_len) == 0;
}

/* The trailing parameter (after " :"), or NULL. */
static const char *trailing(const struct irc_line *m, size_t *len)
{
    const char *p = m->params;
    while (p < m->end && *p != ':') {
        p = memchr(p, ' ', (size_t)(m->end - p));
        if (!p)
            return NULL;
        p++;
    }
    if (p >= m->end)
        return NULL;
    *len = (size_t)(m->end - p - 1);
    return p + 1;
}

/* Answer a PING; exit on ERROR (the server closes the session) or an error numeric
 * (4xx, 5xx). Returns 1 if the line was one of those. */
static int irc_common(struct peer *p, const struct irc_line *m, const char *l, size_t len)
{
    if (is_cmd(m, "PING")) {
        size_t n = (size_t)(m->end - m->params);
        char *out = conn_reserve(&p->c, n + 8);
        memcpy(out, "PONG ", 5);
        memcpy(out + 5, m->params, n);
        memcpy(out + 5 + n, "\r\n", 2);
        conn_commit(&p->c, n + 7);
        return 1;
    }
    if (is_cmd(m, "ERROR") || (m->cmd_len == 3 && (m->cmd[0] == '4' || m->cmd[0] == '5')))
        die("the IRC server answered user %d: %.*s", p->user, (int)len, l);
    return 0;
}

/* 1 at the numeric `a` or `b` (NULL: none), which may be an error numeric. */
static int awaited(struct peer *p, char *line, size_t len, const char *a, const char *b)
{
    struct irc_line m;
    if (irc_parse(line, len, &m) < 0)
        return 0;
    if (is_cmd(&m, a) || (b && is_cmd(&m, b)))
        return 1;
    irc_common(p, &m, line, len);
    return 0;
}

static void register_request(struct bench *b, struct peer *p)
{
    char nick[40];
    user_name(b, p->user, nick);
    char *out = conn_reserve(&p->c, 128);
    conn_commit(&p->c, (size_t)sprintf(out, "NICK %s\r\nUSER %s 0 * :%s\r\n", nick, nick, nick));
}

/* Registered at the end of the welcome: the MOTD's end (376) or its absence (422). */
static int registered(struct peer *p, char *line, size_t len)
{
    return awaited(p, line, len, "376", "422");
}

static const struct setup_step register_step = {"registered", register_request, registered};

static void join_request(struct bench *b, struct peer *p)
{
    char name[40];
    group_name(b, name);
    char *out = conn_reserve(&p->c, 64);
    conn_commit(&p->c, (size_t)sprintf(out, "JOIN #%s\r\n", name));
}

/* Joined at the end of the channel's names (366). */
static int joined(struct peer *p, char *line, size_t len)
{
    return awaited(p, line, len, "366", NULL);
}

static const struct setup_step join_step = {"joined", join_request, joined};

static void private_head(struct bench *b, int to, char *out)
{
    size_t n = (size_t)sprintf(out, "PRIVMSG ");
    n += user_name(b, to, out + n);
    memcpy(out + n, " :", 3);
}

/* Both end with the trailing parameter's colon: the text follows. */
static void group_head(struct bench *b, char *out)
{
    size_t n = (size_t)sprintf(out, "PRIVMSG #");
    n += group_name(b, out + n);
    memcpy(out + n, " :", 3);
}

static enum wire_event line(struct traffic *t, struct peer *p, char *l, size_t len, int *ok,
                            const char **text, size_t *text_len)
{
    (void)t;
    (void)ok;
    struct irc_line m;
    if (irc_parse(l, len, &m) < 0 || irc_common(p, &m, l, len))
        return WIRE_OTHER;
    if (!is_cmd(&m, "PRIVMSG"))
        return WIRE_OTHER; /* JOINs, numerics: not part of the measurement */
    if (!(*text = trailing(&m, text_len)))
        *text_len = 0; /* no text: counted as unexpected */
    return WIRE_DELIVERY;
}

const struct target target_irc = {.name = "irc",
                                  .replies = 0,
                                  .echoes_group = 0,
                                  .session = &register_step,
                                  .join = &join_step,
                                  .private_head = private_head,
                                  .group_head = group_head,
                                  .after_text = "\r\n",
                                  .line = line};
