/* accounts.h - the accounts plugin's instance and the parts its files share. */
#ifndef CHATD_PLUGIN_ACCOUNTS_H
#define CHATD_PLUGIN_ACCOUNTS_H

#include "chatd_accounts.h"
#include "common.h"

#include <chatd/plugin.h>
#include <stddef.h>

#define ACCOUNTS_PASSWD_MAX 1024 /* bytes */
/* Hashing and checking a password take a noticeable moment on purpose. */
#define ACCOUNTS_HASH_TIMEOUT_MS 30000

struct accounts {
    const struct chatd_host *host;
    struct chatd_plugin *self;
    unsigned long long pw_ops; /* Argon2id passes */
    size_t pw_mem;             /* Argon2id memory, bytes */
};

/* The request fields of register and login. */
extern const struct chatd_field accounts_credentials[];

/* schema.c */
extern const struct chatd_migration accounts_migrations[];

/* register.c, login.c */
void accounts_handle_register(struct chatd_request *req, const json_t *body, void *arg);
void accounts_handle_login(struct chatd_request *req, const json_t *body, void *arg);
void accounts_handle_logout(struct chatd_request *req, const json_t *body, void *arg);

/* service.c */
extern const struct chatd_accounts_v1 accounts_service_v1;

#endif
