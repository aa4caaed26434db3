/* accounts.c - the accounts plugin: register, login (by password or token) and logout
 * (of one session, or with "all" of every session and token of the user), and the
 * "accounts" service other plugins ask whether a user exists. It is the operator's
 * authenticator, the one plugin that binds sessions to users:
 *
 *   [plugins]
 *   enable = ping, accounts, friends, private_chat, groups
 *   authenticator = accounts
 *
 * Passwords are Argon2id hashes (libsodium), made and checked in jobs without a
 * database connection; login tokens are random, and only their hashes are kept
 * (tokens.c). After a register commits it runs the hook point
 * "user.registered"; after a login, "user.login", whose hooks add to login_reply (the
 * friends plugin adds "fri", groups "group"). */
#include "accounts.h"

#include "chatd_accounts.h"

#include <sodium.h>
#include <stdlib.h>

static const struct chatd_option options[] = {
    {"register", CHATD_OPT_BOOL, "yes", 0, 0, "serve register (no: closed registration)"},
    {"password_opslimit", CHATD_OPT_INT, "2", 1, 20, "Argon2id passes (libsodium opslimit)"},
    {"password_memlimit_kib", CHATD_OPT_INT, "65536", 8, 4194304,
     "Argon2id memory per hash, KiB (libsodium memlimit / 1024)"},
    {"token_lifetime_s", CHATD_OPT_INT, "2592000", 0, 315360000,
     "seconds a login token stays valid after its password login (0: no tokens)"},
    {"max_tokens_per_user", CHATD_OPT_INT, "20", 1, 1000,
     "login tokens kept per user; a new one drops the oldest beyond this"},
    {NULL, 0, NULL, 0, 0, NULL},
};

static const struct chatd_field register_fields[] = {
    {"user", CHATD_FIELD_STRING, 1, 1, 256},
    {"passwd", CHATD_FIELD_STRING, 1, 0, ACCOUNTS_PASSWD_MAX},
    {NULL, 0, 0, 0, 0},
};

/* Exactly one of passwd and token: checked by the handler. */
static const struct chatd_field login_fields[] = {
    {"user", CHATD_FIELD_STRING, 1, 1, 256},
    {"passwd", CHATD_FIELD_STRING, 0, 0, ACCOUNTS_PASSWD_MAX},
    {"token", CHATD_FIELD_STRING, 0, 0, ACCOUNTS_TOKEN_MAX},
    {NULL, 0, 0, 0, 0},
};

static const struct chatd_field logout_fields[] = {
    {"all", CHATD_FIELD_BOOL, 0, 0, 0},
    {NULL, 0, 0, 0, 0},
};

static int register_commands(struct accounts *a, int serve_register)
{
    static const struct chatd_command commands[] = {
        {.name = "login",
         .handler = accounts_handle_login,
         .flags = CHATD_CMD_ANONYMOUS,
         .fields = login_fields},
        {.name = "logout", .handler = accounts_handle_logout, .fields = logout_fields},
        {.name = "register",
         .handler = accounts_handle_register,
         .flags = CHATD_CMD_ANONYMOUS,
         .fields = register_fields},
    };
    size_t n = serve_register ? 3 : 2;
    for (size_t i = 0; i < n; i++) {
        int rc = a->host->register_command(a->self, &commands[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int accounts_init(struct chatd_plugin *self, const struct chatd_host *host)
{
    struct accounts *a = calloc(1, sizeof(*a));
    if (!a)
        return CHATD_ENOMEM;
    host->instance_set(self, a);
    a->host = host;
    a->self = self;
    if (sodium_init() < 0) {
        host->log(self, CHATD_LOG_ERROR, "libsodium failed to initialise");
        return CHATD_EPLUGIN;
    }
    if (!host->is_authenticator(self)) {
        host->log(self, CHATD_LOG_ERROR,
                  "accounts logs users in, so it must be the authenticator: add "
                  "'authenticator = accounts' to [plugins]");
        return CHATD_EPERM;
    }
    int64_t ops = 0, mem_kib = 0, lifetime_s = 0, max_tokens = 20;
    int serve_register = 1;
    host->option_int(self, "password_opslimit", &ops);
    host->option_int(self, "password_memlimit_kib", &mem_kib);
    host->option_bool(self, "register", &serve_register);
    host->option_int(self, "token_lifetime_s", &lifetime_s);
    host->option_int(self, "max_tokens_per_user", &max_tokens);
    a->pw_ops = (unsigned long long)ops;
    a->pw_mem = (size_t)mem_kib * 1024;
    a->token_lifetime_ms = lifetime_s * 1000;
    a->max_tokens = max_tokens;
    int rc = register_commands(a, serve_register);
    if (rc == 0)
        rc = host->service_provide(self, CHATD_ACCOUNTS_SERVICE, CHATD_ACCOUNTS_VERSION,
                                   &accounts_service_v1, a);
    return rc;
}

static void accounts_destroy(void *instance)
{
    free(instance);
}

static const char *const provides[] = {CHATD_ACCOUNTS_SERVICE, NULL};

CHATD_PLUGIN_DEFINE(
        .name = "accounts", .version = "1.0.0",
        .description =
            "accounts: register, login (password or token) and logout; the authenticator",
        .options = options, .migrations = accounts_migrations, .init = accounts_init,
        .provides = provides, .destroy = accounts_destroy);
