/* exit_codes.h - the exit statuses of chat, documented in `chat --help` and docs/client.md. */
#ifndef CHAT_EXIT_CODES_H
#define CHAT_EXIT_CODES_H

#define CHAT_EXIT_OK      0 /* every command was answered with success (or offline) */
#define CHAT_EXIT_REFUSED 1 /* the server refused a command (login, send...) */
#define CHAT_EXIT_USAGE   2 /* bad command line, or a local problem such as an unreadable file */
#define CHAT_EXIT_CONNECTION                                                                       \
    3 /* cannot connect, the server closed the connection, or no reply in time */
#define CHAT_EXIT_PROTOCOL 4 /* the server sent something that is not a valid reply */

#endif
