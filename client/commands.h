/* commands.h - the client's command table: parsing a typed "/cmd args" line and turning a
 * command into the request the wire contract defines. Pure functions, no I/O. */
#ifndef CHAT_COMMANDS_H
#define CHAT_COMMANDS_H

#include <jansson.h>
#include <stddef.h>

enum chat_cmd {
    CHAT_CMD_NONE = 0,
    CHAT_CMD_REGISTER,
    CHAT_CMD_LOGIN,
    CHAT_CMD_MSG,
    CHAT_CMD_FRIEND,
    CHAT_CMD_CREATE,
    CHAT_CMD_JOIN,
    CHAT_CMD_LEAVE,
    CHAT_CMD_GROUP_MSG,
    CHAT_CMD_LOGOUT,
    CHAT_CMD_LOGOUT_ALL, /* /logout all: every session ends, every login token is revoked */
    CHAT_CMD_QUIT,
    CHAT_CMD_HELP,
    CHAT_CMD_PING,    /* sent by the client itself, to keep an idle connection open */
    CHAT_CMD_WHO,     /* /who: friends, with who is online */
    CHAT_CMD_GROUPS,  /* /groups: the groups you are in */
    CHAT_CMD_MEMBERS, /* /members GROUP: who is in it, owner and online */
    CHAT_CMD_HISTORY, /* /history [N]: the current conversation's history (interactive.c) */
    CHAT_CMD_READ,    /* sent by the client itself: messages shown in the conversation */
    CHAT_CMD_SYNC,    /* a ping whose reply tells that what was sent before it (an ack) has
                       * reached the server: sent before leaving */
};

/* One command as typed: the kind and up to two words and a text. The strings point into
 * the parsed line (which the caller keeps alive) or are NULL when absent. */
struct chat_command {
    enum chat_cmd cmd;
    const char *name;  /* USER or GROUP (register, login, msg, friend, create, join...), or
                        * N of /history (NULL when left out) */
    const char *extra; /* PASS for register and login; NULL when it should be prompted */
    const char *text;  /* TEXT for msg and g, the rest of the line as typed */
    const char *token; /* login: a login token to log in with instead of a password */
};

/* Results of chat_command_parse. */
#define CHAT_PARSE_OK        0
#define CHAT_PARSE_UNKNOWN   (-1) /* "/something" that is no command */
#define CHAT_PARSE_USAGE     (-2) /* a known command with the wrong arguments */
#define CHAT_PARSE_NOT_SLASH (-3) /* the line does not start with '/' */

/* Parse one line typed in interactive mode. The line is modified in place (words are cut
 * with NUL bytes), and `out` points into it. On CHAT_PARSE_USAGE, out->cmd says which
 * command, so the caller can show its usage. A password may be left out of /login and
 * /register (out->extra is then NULL). */
int chat_command_parse(char *line, struct chat_command *out);

/* "/msg USER TEXT" and so on: the usage line of a command, for errors and /help. */
const char *chat_command_usage(enum chat_cmd cmd);

/* The whole /help text, one command per line, ending in '\n'. Static storage. */
const char *chat_command_help(void);

/* The wire command a chat_cmd sends ("private_chat"...), or NULL for the local ones
 * (quit, help). */
const char *chat_command_wire_name(enum chat_cmd cmd);

/* Build the request for `c` (without an id). `password` replaces c->extra when not NULL.
 * The caller owns the result (json_decref); NULL for a local command or out of memory. */
json_t *chat_command_request(const struct chat_command *c, const char *password);

#endif
