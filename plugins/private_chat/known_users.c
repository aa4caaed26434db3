/* known_users.c - see known_users.h. */
#include "known_users.h"

#include "names.h"

#include <stdlib.h>
#include <string.h>
#include <uthash.h>

struct known_user {
    char name[CHAT_NAME_MAX + 1];
    UT_hash_handle hh;
};

int known_users_has(const struct known_users *k, const char *name)
{
    struct known_user *u;
    HASH_FIND_STR(k->set, name, u);
    return u != NULL;
}

void known_users_add(struct known_users *k, const char *name)
{
    if (strlen(name) > CHAT_NAME_MAX || known_users_has(k, name))
        return;
    if (k->n >= KNOWN_USERS_MAX)
        known_users_free(k);
    struct known_user *u = malloc(sizeof(*u));
    if (!u)
        return;
    strcpy(u->name, name);
    HASH_ADD_STR(k->set, name, u);
    k->n++;
}

void known_users_free(struct known_users *k)
{
    struct known_user *u, *tmp;
    HASH_ITER (hh, k->set, u, tmp) {
        HASH_DEL(k->set, u);
        free(u);
    }
    k->n = 0;
}
