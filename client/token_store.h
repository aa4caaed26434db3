/* token_store.h - the login token chat keeps after a password login, so that the next
 * login (the next run) needs no password: one file per server and user, under
 * $XDG_STATE_HOME/chatd/tokens/ (default ~/.local/state/chatd/tokens/), readable by its
 * owner only (file 0600, folders 0700). */
#ifndef CHAT_TOKEN_STORE_H
#define CHAT_TOKEN_STORE_H

#include <stddef.h>

#define CHAT_TOKEN_MAX 256

/* The stored token into out (NUL-terminated). 0, or -1 when there is none (or it cannot
 * be read, or the file is open to other users: it is then not used). */
int chat_token_load(const char *host, const char *port, const char *user, char out[CHAT_TOKEN_MAX]);
/* Keep `token`, replacing any. 0, or -1 with errno set. */
int chat_token_save(const char *host, const char *port, const char *user, const char *token);
/* Forget it (token_invalid, logout all). Nothing when there is none. */
void chat_token_forget(const char *host, const char *port, const char *user);

#endif
