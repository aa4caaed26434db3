/* known_users.h - names private_chat has seen to have an account, so that a message to
 * a user who is away is stored without asking the accounts service first (a database
 * round trip per message otherwise). Accounts are never deleted through the protocol;
 * one deleted by hand stays "known" here until the plugin restarts or reloads, and its
 * messages then wait in the inbox for nobody. Bounded: past KNOWN_USERS_MAX names the
 * set starts again empty. */
#ifndef CHATD_PLUGIN_PRIVATE_CHAT_KNOWN_USERS_H
#define CHATD_PLUGIN_PRIVATE_CHAT_KNOWN_USERS_H

#include <stddef.h>

#define KNOWN_USERS_MAX 100000

struct known_user;

struct known_users {
    struct known_user *set; /* by name */
    size_t n;
};

int known_users_has(const struct known_users *k, const char *name);
/* Remember name (at most CHAT_NAME_MAX bytes); out of memory it is simply not kept. */
void known_users_add(struct known_users *k, const char *name);
void known_users_free(struct known_users *k);

#endif
