/* session.h - what both modes of chat share: where to connect, who to log in as, and
 * how long to wait. Filled in by main.c from the command line. */
#ifndef CHAT_SESSION_H
#define CHAT_SESSION_H

#include "tls.h"

struct chat_options {
    const char *host;     /* default 127.0.0.1 */
    const char *port;     /* default 8000 */
    const char *user;     /* --user, or NULL */
    const char *device;   /* the device name to log in with (device.h) */
    const char *password; /* read from --password-file, or NULL */
    int timeout_ms;       /* for connecting and for each reply */
    int json;             /* --json: print the server's lines as they are */
    int listen_seconds;   /* listen --seconds N; 0 means until interrupted */
    struct chat_tls tls;  /* --tls, --ca-file, --insecure */
};

/* Keep-alive: a connection that sends nothing is closed by the server after its idle
 * timeout (300 s by default), so a ping goes out after a minute of silence. */
#define CHAT_KEEPALIVE_MS 60000

/* Run the interactive mode until /quit, Ctrl-D, Ctrl-C or a lost connection. Returns the
 * exit status. */
int chat_interactive(const struct chat_options *o, const char *prog);

/* Run one command of the non-interactive mode: `argv` is the subcommand and its
 * arguments (already checked by main.c). Returns the exit status. */
int chat_batch(const struct chat_options *o, int argc, char **argv);

#endif
