/* accounts.h - the accounts plugin's instance and the parts its files share. */
#ifndef CHATD_PLUGIN_ACCOUNTS_H
#define CHATD_PLUGIN_ACCOUNTS_H

#include "chatd_accounts.h"
#include "common.h"

#include <chatd/plugin.h>
#include <stddef.h>

#define ACCOUNTS_PASSWD_MAX 1024 /* bytes */
#define ACCOUNTS_TOKEN_MAX  1024 /* bytes of a login's "token"; longer is bad_request */
/* Hashing and checking a password take a noticeable moment on purpose. */
#define ACCOUNTS_HASH_TIMEOUT_MS 30000

struct accounts {
    const struct chatd_host *host;
    struct chatd_plugin *self;
    unsigned long long pw_ops; /* Argon2id passes */
    size_t pw_mem;             /* Argon2id memory, bytes */
    int64_t token_lifetime_ms; /* 0: no tokens */
    int64_t max_tokens;        /* per user; the oldest go first */
};

/* tokens.c: login tokens ("Resuming without the password" in docs/protocol.md).
 * A token is ACCOUNTS_TOKEN_BYTES random bytes, base64url without padding for the
 * client; accounts_tokens keeps only the hex of its crypto_generichash (BLAKE2b). */
#define ACCOUNTS_TOKEN_BYTES 32
#define ACCOUNTS_TOKEN_TEXT  44 /* 43 characters and the NUL */
#define ACCOUNTS_HASH_HEX    65 /* 64 hex digits and the NUL */

struct accounts_token {
    char text[ACCOUNTS_TOKEN_TEXT]; /* what the client holds */
    char hash[ACCOUNTS_HASH_HEX];   /* what the table holds */
};

/* A new random token and its hash. */
void accounts_token_new(struct accounts_token *t);
/* The hash of the token the client sent: 0, or -1 when `text` is not a token this
 * plugin could have issued (it is then unknown: token_invalid). */
int accounts_token_parse(struct accounts_token *t, const char *text);
/* Worker, in a CHATD_JOB_DB job: store t for `user` (expiring token_lifetime_ms from
 * now), dropping the user's expired tokens and the oldest beyond max_tokens, in one
 * transaction. Safe to run twice. */
int accounts_token_store(struct accounts *a, struct chatd_db *db, const char *user,
                         const struct accounts_token *t);
/* Worker: 1 when t is a token of `user` that has not expired, 0 when not, <0 an error. */
int accounts_token_check(struct accounts *a, struct chatd_db *db, const char *user,
                         const struct accounts_token *t);
/* Worker: delete every token of `user`. */
int accounts_token_revoke_all(struct accounts *a, struct chatd_db *db, const char *user);

/* schema.c */
extern const struct chatd_migration accounts_migrations[];

/* register.c, login.c */
void accounts_handle_register(struct chatd_request *req, const json_t *body, void *arg);
void accounts_handle_login(struct chatd_request *req, const json_t *body, void *arg);
void accounts_handle_logout(struct chatd_request *req, const json_t *body, void *arg);

/* service.c */
extern const struct chatd_accounts_v1 accounts_service_v1;

#endif
