/* commands.c - the command table, the parser of typed lines and the request builder. */
#include "commands.h"

#include <stdio.h>
#include <string.h>

/* What each command takes. A table, so the parser, /help and usage errors agree. */
enum chat_args {
    ARGS_NONE,          /* /quit */
    ARGS_ALL,           /* /logout [all]: "all" picks the command's other form */
    ARGS_NAME,          /* /friend USER */
    ARGS_NAME_TEXT,     /* /msg USER TEXT: TEXT is the rest of the line */
    ARGS_NAME_PASSWORD, /* /login USER [PASS]: PASS is the rest of the line */
    ARGS_OPT_NAME,      /* /history [N] */
};

struct chat_command_info {
    enum chat_cmd cmd;
    const char *word;  /* as typed after '/' */
    const char *wire;  /* the request's cmd, NULL for a local command */
    const char *field; /* the request field that carries `name` */
    enum chat_args args;
    const char *usage;
    const char *help;
};

static const struct chat_command_info commands[] = {
    {CHAT_CMD_REGISTER, "register", "register", "user", ARGS_NAME_PASSWORD, "/register USER [PASS]",
     "create an account (PASS is asked for if left out)"},
    {CHAT_CMD_LOGIN, "login", "login", "user", ARGS_NAME_PASSWORD, "/login USER [PASS]",
     "log in (PASS is asked for, without echo, if left out)"},
    {CHAT_CMD_MSG, "msg", "private_chat", "user_to", ARGS_NAME_TEXT, "/msg USER TEXT",
     "send a private message"},
    {CHAT_CMD_FRIEND, "friend", "add_friend", "friend", ARGS_NAME, "/friend USER",
     "make USER your friend (mutual; you see each other come and go)"},
    {CHAT_CMD_CREATE, "create", "create_group", "group", ARGS_NAME, "/create GROUP",
     "create a group and join it"},
    {CHAT_CMD_JOIN, "join", "join_group", "group", ARGS_NAME, "/join GROUP", "join a group"},
    {CHAT_CMD_LEAVE, "leave", "leave_group", "group", ARGS_NAME, "/leave GROUP", "leave a group"},
    {CHAT_CMD_GROUP_MSG, "g", "group_chat", "group", ARGS_NAME_TEXT, "/g GROUP TEXT",
     "send a message to a group"},
    {CHAT_CMD_WHO, "who", "friends", NULL, ARGS_NONE, "/who",
     "your friends, and who of them is online"},
    {CHAT_CMD_GROUPS, "groups", "groups", NULL, ARGS_NONE, "/groups", "the groups you are in"},
    {CHAT_CMD_MEMBERS, "members", "group_members", "group", ARGS_NAME, "/members GROUP",
     "who is in GROUP: its owner, and who is online"},
    {CHAT_CMD_HISTORY, "history", "history", NULL, ARGS_OPT_NAME, "/history [N]",
     "the last N (20) messages of your conversation; again: the N before"},
    {CHAT_CMD_READ, NULL, "read", NULL, ARGS_NONE, NULL, NULL},
    {CHAT_CMD_SYNC, NULL, "ping", NULL, ARGS_NONE, NULL, NULL},
    {CHAT_CMD_LOGOUT, "logout", "logout", NULL, ARGS_ALL, "/logout [all]",
     "log out (stay connected); all: everywhere, and forget the saved login"},
    {CHAT_CMD_LOGOUT_ALL, NULL, "logout", NULL, ARGS_NONE, NULL, NULL},
    {CHAT_CMD_QUIT, "quit", NULL, NULL, ARGS_NONE, "/quit", "leave chat (also Ctrl-D, Ctrl-C)"},
    {CHAT_CMD_HELP, "help", NULL, NULL, ARGS_NONE, "/help", "show this list"},
    {CHAT_CMD_PING, NULL, "ping", NULL, ARGS_NONE, NULL, NULL},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct chat_command_info *find_by_cmd(enum chat_cmd cmd)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (commands[i].cmd == cmd)
            return &commands[i];
    return NULL;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

static char *skip_spaces(char *p)
{
    while (is_space(*p))
        p++;
    return p;
}

/* Cut the next word out of *p: returns it (NUL-terminated in place) and leaves *p at the
 * first character after the spaces that follow it. NULL when no word is left. */
static char *next_word(char **p)
{
    char *start = skip_spaces(*p);
    if (*start == '\0') {
        *p = start;
        return NULL;
    }
    char *end = start;
    while (*end && !is_space(*end))
        end++;
    if (*end) {
        *end = '\0';
        *p = skip_spaces(end + 1);
    } else {
        *p = end;
    }
    return start;
}

int chat_command_parse(char *line, struct chat_command *out)
{
    memset(out, 0, sizeof(*out));
    if (line[0] != '/')
        return CHAT_PARSE_NOT_SLASH;
    char *p = line + 1;
    char *word = next_word(&p);
    const struct chat_command_info *info = NULL;
    for (size_t i = 0; word && i < N_COMMANDS; i++)
        if (commands[i].word && strcmp(commands[i].word, word) == 0)
            info = &commands[i];
    if (!info)
        return CHAT_PARSE_UNKNOWN;
    out->cmd = info->cmd;

    switch (info->args) {
    case ARGS_NONE:
        return *p ? CHAT_PARSE_USAGE : CHAT_PARSE_OK;
    case ARGS_ALL:
        if (!*p)
            return CHAT_PARSE_OK;
        out->name = next_word(&p);
        if (!out->name || strcmp(out->name, "all") != 0 || *p)
            return CHAT_PARSE_USAGE;
        out->cmd = CHAT_CMD_LOGOUT_ALL;
        out->name = NULL;
        return CHAT_PARSE_OK;
    case ARGS_NAME:
        out->name = next_word(&p);
        return out->name && !*p ? CHAT_PARSE_OK : CHAT_PARSE_USAGE;
    case ARGS_NAME_TEXT:
        out->name = next_word(&p);
        out->text = p;
        return out->name && *p ? CHAT_PARSE_OK : CHAT_PARSE_USAGE;
    case ARGS_NAME_PASSWORD:
        out->name = next_word(&p);
        out->extra = *p ? p : NULL;
        return out->name ? CHAT_PARSE_OK : CHAT_PARSE_USAGE;
    case ARGS_OPT_NAME:
        out->name = next_word(&p);
        return !*p ? CHAT_PARSE_OK : CHAT_PARSE_USAGE;
    }
    return CHAT_PARSE_USAGE;
}

const char *chat_command_usage(enum chat_cmd cmd)
{
    const struct chat_command_info *info = find_by_cmd(cmd);
    return info && info->usage ? info->usage : "";
}

const char *chat_command_help(void)
{
    static char text[4096];
    if (text[0])
        return text;
    size_t used = 0;
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (!commands[i].usage)
            continue;
        size_t room = sizeof(text) - used;
        int n = snprintf(text + used, room, "  %-24s %s\n", commands[i].usage, commands[i].help);
        if (n < 0 || (size_t)n >= room)
            break;
        used += (size_t)n;
    }
    return text;
}

const char *chat_command_wire_name(enum chat_cmd cmd)
{
    const struct chat_command_info *info = find_by_cmd(cmd);
    return info ? info->wire : NULL;
}

json_t *chat_command_request(const struct chat_command *c, const char *password)
{
    const struct chat_command_info *info = find_by_cmd(c->cmd);
    if (!info || !info->wire)
        return NULL;
    json_t *req = json_object();
    if (!req || json_object_set_new(req, "cmd", json_string(info->wire)) != 0)
        goto fail;
    /* Typed text that is not valid UTF-8 cannot be sent as a JSON string. */
    if (info->field && (!c->name || json_object_set_new(req, info->field, json_string(c->name))))
        goto fail;
    if (info->args == ARGS_NAME_TEXT &&
        (!c->text || json_object_set_new(req, "text", json_string(c->text)) != 0))
        goto fail;
    if (c->cmd == CHAT_CMD_LOGIN && c->token && !password) {
        if (json_object_set_new(req, "token", json_string(c->token)) != 0)
            goto fail;
    } else if (info->args == ARGS_NAME_PASSWORD) {
        const char *pass = password ? password : c->extra;
        if (!pass || json_object_set_new(req, "passwd", json_string(pass)) != 0)
            goto fail;
    }
    if (c->cmd == CHAT_CMD_LOGOUT_ALL && json_object_set_new(req, "all", json_true()) != 0)
        goto fail;
    return req;
fail:
    json_decref(req);
    return NULL;
}
