/* format.c - turning pushes and replies into lines a person reads. */
#include "format.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A growable string; `failed` sticks once an allocation failed. */
struct strbuf {
    char *data;
    size_t len, cap;
    int failed;
};

static void sb_reserve(struct strbuf *sb, size_t more)
{
    if (sb->failed || sb->len + more + 1 <= sb->cap)
        return;
    size_t cap = sb->cap ? sb->cap : 128;
    while (cap < sb->len + more + 1)
        cap *= 2;
    char *data = realloc(sb->data, cap);
    if (!data) {
        sb->failed = 1;
        return;
    }
    sb->data = data;
    sb->cap = cap;
}

static void sb_add(struct strbuf *sb, const char *s, size_t n)
{
    sb_reserve(sb, n);
    if (sb->failed)
        return;
    memcpy(sb->data + sb->len, s, n);
    sb->len += n;
    sb->data[sb->len] = '\0';
}

static void sb_puts(struct strbuf *sb, const char *s)
{
    sb_add(sb, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void sb_printf(struct strbuf *sb, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        sb->failed = 1;
        return;
    }
    if ((size_t)n < sizeof(small)) {
        sb_add(sb, small, (size_t)n);
        return;
    }
    sb_reserve(sb, (size_t)n);
    if (sb->failed)
        return;
    va_start(ap, fmt);
    vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

/* The finished string, or NULL (and nothing to free) when an allocation failed. */
static char *sb_finish(struct strbuf *sb)
{
    if (sb->failed || !sb->data) {
        free(sb->data);
        return sb->failed ? NULL : strdup("");
    }
    return sb->data;
}

/* The length of the character at p that must be escaped, or 0: C0 controls and DEL,
 * C1 controls (U+0080..U+009F, in UTF-8 0xC2 0x80..0x9F) and the bidirectional
 * embeddings, overrides and isolates U+202A..U+202E and U+2066..U+2069 (0xE2 0x80
 * 0xAA..0xAE, 0xE2 0x81 0xA6..0xA9), which could make a text read backwards or spill its
 * direction into what follows it on the line. */
static size_t escaped_len(const unsigned char *p)
{
    if (*p < 0x20 || *p == 0x7f)
        return 1;
    if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
        return 2;
    if (p[0] == 0xe2 && ((p[1] == 0x80 && p[2] >= 0xaa && p[2] <= 0xae) ||
                         (p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9)))
        return 3;
    return 0;
}

/* Append `text` with control characters escaped (see chat_sanitize). */
static void sb_add_sanitized(struct strbuf *sb, const char *text)
{
    const unsigned char *p = (const unsigned char *)text;
    while (*p) {
        const unsigned char *run = p;
        size_t n = 0;
        while (*p && (n = escaped_len(p)) == 0)
            p++;
        sb_add(sb, (const char *)run, (size_t)(p - run));
        if (!*p)
            break;
        if (*p == '\n')
            sb_puts(sb, "\\n");
        else if (*p == '\t')
            sb_puts(sb, "\\t");
        else if (*p == '\r')
            sb_puts(sb, "\\r");
        else if (n == 2)
            sb_printf(sb, "\\u%04x", (unsigned)p[1]);
        else if (n == 3)
            sb_printf(sb, "\\u%04x", 0x2000u | ((p[1] & 0x3fu) << 6) | (p[2] & 0x3fu));
        else
            sb_printf(sb, "\\x%02x", (unsigned)*p);
        p += n;
    }
}

char *chat_sanitize(const char *text)
{
    struct strbuf sb = {0};
    sb_add_sanitized(&sb, text);
    return sb_finish(&sb);
}

void chat_format_time(long long ts_ms, char *out, size_t cap)
{
    time_t when = (time_t)(ts_ms / 1000), now = time(NULL);
    struct tm tm_when, tm_now;
    if (!localtime_r(&when, &tm_when) || !localtime_r(&now, &tm_now)) {
        snprintf(out, cap, "[--:--:--]");
        return;
    }
    if (tm_when.tm_year == tm_now.tm_year && tm_when.tm_yday == tm_now.tm_yday)
        strftime(out, cap, "[%H:%M:%S]", &tm_when);
    else
        strftime(out, cap, "[%Y-%m-%d %H:%M:%S]", &tm_when);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A string field, or NULL when it is missing or not a string. */
static const char *get_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* A message's ts when it has a plausible one, else now. */
static long long ts_of(const json_t *msg)
{
    const json_t *ts = json_object_get(msg, "ts");
    if (json_is_integer(ts) && json_integer_value(ts) > 0 &&
        json_integer_value(ts) < 253402300799000LL) /* before the year 10000 */
        return json_integer_value(ts);
    return now_ms();
}

static void add_time_ms(struct strbuf *sb, long long ms)
{
    char when[40];
    chat_format_time(ms, when, sizeof(when));
    sb_puts(sb, when);
    sb_puts(sb, " ");
}

/* The time prefix for a push: its ts when it has a plausible one, else now. */
static void add_time(struct strbuf *sb, const json_t *push)
{
    add_time_ms(sb, ts_of(push));
}

static void add_unknown(struct strbuf *sb, const json_t *push)
{
    char *raw = json_dumps(push, JSON_COMPACT | JSON_ENCODE_ANY);
    sb_puts(sb, "* message from the server: ");
    sb_add_sanitized(sb, raw ? raw : "(cannot show)");
    free(raw);
}

static int receipt_ok(const json_t *push)
{
    const char *status = get_str(push, "status");
    return get_str(push, "user") && status &&
           (strcmp(status, "delivered") == 0 || strcmp(status, "read") == 0);
}

char *chat_format_receipt(const json_t *push, const char *text, long long sent_ts)
{
    struct strbuf sb = {0};
    const json_t *id = json_object_get(push, "msg_id");
    int read = strcmp(get_str(push, "status"), "read") == 0;
    add_time_ms(&sb, now_ms());
    sb_puts(&sb, "* ");
    sb_add_sanitized(&sb, get_str(push, "user"));
    sb_puts(&sb, read ? " has read your message" : " has received your message");
    if (text) {
        char when[40];
        chat_format_time(sent_ts, when, sizeof(when));
        sb_printf(&sb, " of %s: ", when);
        sb_add_sanitized(&sb, text);
    } else if (json_is_string(id)) {
        sb_puts(&sb, " ");
        sb_add_sanitized(&sb, json_string_value(id));
    }
    if (read)
        sb_puts(&sb, " (and those before it)");
    return sb_finish(&sb);
}

/* The mark of an own private message from history: " (read)", " (delivered)" or "". */
static void add_mark(struct strbuf *sb, const json_t *msg)
{
    if (json_is_true(json_object_get(msg, "read")))
        sb_puts(sb, " (read)");
    else if (json_is_true(json_object_get(msg, "delivered")))
        sb_puts(sb, " (delivered)");
}

char *chat_format_history_entry(const json_t *msg, const char *me, const char *peer)
{
    const char *from = get_str(msg, "user_from");
    const char *text = get_str(msg, "text");
    const char *group = get_str(msg, "group");
    if (!from || !text)
        return chat_format_push(msg);
    struct strbuf sb = {0};
    add_time(&sb, msg);
    if (group) {
        sb_puts(&sb, "[");
        sb_add_sanitized(&sb, group);
        sb_puts(&sb, "] ");
    }
    int own = me && strcmp(from, me) == 0;
    if (own && !group && peer) {
        sb_puts(&sb, "you -> ");
        sb_add_sanitized(&sb, peer);
    } else if (own) {
        sb_puts(&sb, "you");
    } else {
        sb_add_sanitized(&sb, from);
    }
    sb_puts(&sb, ": ");
    sb_add_sanitized(&sb, text);
    if (own && !group)
        add_mark(&sb, msg);
    return sb_finish(&sb);
}

char *chat_format_sent(enum chat_cmd cmd, const char *name, const char *text, const json_t *reply)
{
    struct strbuf sb = {0};
    const char *result = get_str(reply, "result");
    add_time(&sb, reply);
    if (cmd == CHAT_CMD_GROUP_MSG) {
        sb_puts(&sb, "[");
        sb_add_sanitized(&sb, name);
        sb_puts(&sb, "] you: ");
        sb_add_sanitized(&sb, text);
    } else {
        sb_puts(&sb, "you -> ");
        sb_add_sanitized(&sb, name);
        sb_puts(&sb, ": ");
        sb_add_sanitized(&sb, text);
        if (result && strcmp(result, "offline") == 0) {
            sb_puts(&sb, " (stored: ");
            sb_add_sanitized(&sb, name);
            sb_puts(&sb, " is offline)");
        }
    }
    return sb_finish(&sb);
}

char *chat_format_push(const json_t *push)
{
    struct strbuf sb = {0};
    const char *cmd = get_str(push, "cmd");
    const char *from = get_str(push, "user_from");
    const char *text = get_str(push, "text");
    const char *group = get_str(push, "group");
    int offline = json_is_true(json_object_get(push, "offline"));

    add_time(&sb, push);
    if (!cmd) {
        add_unknown(&sb, push);
    } else if (strcmp(cmd, "private_chat_recv") == 0 && from && text) {
        if (offline)
            sb_puts(&sb, "(offline) ");
        sb_add_sanitized(&sb, from);
        sb_puts(&sb, ": ");
        sb_add_sanitized(&sb, text);
    } else if (strcmp(cmd, "group_chat_recv") == 0 && from && text && group) {
        if (offline)
            sb_puts(&sb, "(offline) ");
        sb_puts(&sb, "[");
        sb_add_sanitized(&sb, group);
        sb_puts(&sb, "] ");
        sb_add_sanitized(&sb, from);
        sb_puts(&sb, ": ");
        sb_add_sanitized(&sb, text);
    } else if (strcmp(cmd, "presence") == 0 && get_str(push, "user") && get_str(push, "status")) {
        sb_puts(&sb, "* ");
        sb_add_sanitized(&sb, get_str(push, "user"));
        sb_puts(&sb, " is ");
        sb_add_sanitized(&sb, get_str(push, "status"));
    } else if (strcmp(cmd, "friend_added") == 0 && from) {
        sb_puts(&sb, "* ");
        sb_add_sanitized(&sb, from);
        sb_puts(&sb, " added you as a friend");
    } else if (strcmp(cmd, "receipt") == 0 && receipt_ok(push)) {
        free(sb.data);
        return chat_format_receipt(push, NULL, 0);
    } else {
        add_unknown(&sb, push);
    }
    return sb_finish(&sb);
}

const char *chat_explain_result(const char *word, const char *name, char *buf, size_t cap)
{
    /* The name the command was about goes between `before` and `after`; none when
     * `after` is NULL. */
    static const struct {
        const char *word, *before, *after;
    } words[] = {
        {"user_not_exist", "no user is called ", ""},
        {"passwd_error", "wrong password for ", ""},
        {"already_friends", "you and ", " are friends already"},
        {"group_not_exist", "no group is called ", ""},
        {"already_member", "you are in ", " already"},
        {"not_member", "you are not a member of ", ""},
        {"failure", "the server refused it", NULL},
        {"bad_request", "the server did not accept the request as sent", NULL},
        {"not_logged_in", "log in first (/login USER)", NULL},
        {"forbidden", "you are not allowed to do that", NULL},
        {"busy", "the server is busy; try again in a moment", NULL},
        {"rate_limited", "too many requests; try again in a moment", NULL},
        {"internal", "the server had a fault; check whether it took effect before retrying", NULL},
        {"unknown_cmd", "the server does not offer this command", NULL},
        {"bad_json", "the server could not read the request", NULL},
        {"frame_too_large", "the request is larger than the server accepts", NULL},
    };
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (strcmp(words[i].word, word) == 0) {
            if (words[i].after)
                snprintf(buf, cap, "%s%s%s", words[i].before, name ? name : "that name",
                         words[i].after);
            else
                snprintf(buf, cap, "%s", words[i].before);
            return buf;
        }
    }
    snprintf(buf, cap, "the server answered with a word this client does not know");
    return buf;
}

/* "alice, bob" from a login reply's array of names, or "none". */
static void add_name_list(struct strbuf *sb, const json_t *list)
{
    size_t i, shown = 0;
    const json_t *v;
    json_array_foreach(list, i, v)
    {
        if (!json_is_string(v))
            continue;
        if (shown++)
            sb_puts(sb, ", ");
        sb_add_sanitized(sb, json_string_value(v));
    }
    if (!shown)
        sb_puts(sb, "none");
}

/* "bob (online), carol" from friends_reply's or group_members_reply's list of
 * {"user","online"[,"owner"]}, or "none". */
static void add_user_list(struct strbuf *sb, const json_t *list)
{
    size_t i, shown = 0;
    const json_t *v;
    json_array_foreach(list, i, v)
    {
        const char *user = get_str(v, "user");
        if (!user)
            continue;
        int owner = json_is_true(json_object_get(v, "owner"));
        int online = json_is_true(json_object_get(v, "online"));
        if (shown++)
            sb_puts(sb, ", ");
        sb_add_sanitized(sb, user);
        if (owner || online)
            sb_printf(sb, " (%s%s%s)", owner ? "owner" : "", owner && online ? ", " : "",
                      online ? "online" : "");
    }
    if (!shown)
        sb_puts(sb, "none");
}

static void add_success(struct strbuf *sb, enum chat_cmd cmd, const char *name, const json_t *reply)
{
    switch (cmd) {
    case CHAT_CMD_WHO:
        sb_puts(sb, "friends: ");
        add_user_list(sb, json_object_get(reply, "friends"));
        break;
    case CHAT_CMD_GROUPS:
        sb_puts(sb, "groups: ");
        add_name_list(sb, json_object_get(reply, "groups"));
        break;
    case CHAT_CMD_MEMBERS:
        sb_printf(sb, "members of %s: ", name);
        add_user_list(sb, json_object_get(reply, "members"));
        break;
    case CHAT_CMD_REGISTER:
        sb_printf(sb, "registered %s", name);
        break;
    case CHAT_CMD_LOGIN:
        sb_printf(sb, "logged in as %s; friends: ", name);
        add_name_list(sb, json_object_get(reply, "fri"));
        sb_puts(sb, "; groups: ");
        add_name_list(sb, json_object_get(reply, "group"));
        break;
    case CHAT_CMD_MSG:
    case CHAT_CMD_GROUP_MSG:
        sb_printf(sb, "sent to %s", name);
        break;
    case CHAT_CMD_FRIEND:
        sb_printf(sb, "%s is your friend now", name);
        break;
    case CHAT_CMD_CREATE:
        sb_printf(sb, "created group %s, with you as its first member", name);
        break;
    case CHAT_CMD_JOIN:
        sb_printf(sb, "joined %s", name);
        break;
    case CHAT_CMD_LEAVE:
        sb_printf(sb, "left %s", name);
        break;
    case CHAT_CMD_LOGOUT:
        sb_puts(sb, "logged out");
        break;
    case CHAT_CMD_LOGOUT_ALL:
        sb_puts(sb, "logged out everywhere; the saved login is forgotten");
        break;
    default:
        sb_puts(sb, "done");
        break;
    }
}

char *chat_format_reply(enum chat_cmd cmd, const char *name, const json_t *reply, int *ok)
{
    struct strbuf sb = {0};
    const char *result = get_str(reply, "result");
    const char *reason = get_str(reply, "reason");
    char *safe_name = chat_sanitize(name ? name : "");
    if (!safe_name)
        return NULL;
    *ok = 0;
    if (!result) {
        sb_puts(&sb, "error: the server's reply has no result");
    } else if (strcmp(result, "success") == 0) {
        *ok = 1;
        add_success(&sb, cmd, safe_name, reply);
    } else if (strcmp(result, "offline") == 0 && cmd == CHAT_CMD_MSG) {
        *ok = 1;
        sb_printf(&sb, "stored for %s (offline)", safe_name);
    } else {
        char why[200];
        sb_puts(&sb, "error: ");
        sb_add_sanitized(&sb, result);
        sb_puts(&sb, ": ");
        if (reason)
            sb_add_sanitized(&sb, reason);
        else
            sb_puts(&sb, chat_explain_result(result, name ? safe_name : NULL, why, sizeof(why)));
    }
    free(safe_name);
    return sb_finish(&sb);
}
