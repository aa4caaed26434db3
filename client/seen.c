/* seen.c - a bounded set of msg_ids, oldest first out (uthash keeps insertion order). */
#include "seen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

struct seen_id {
    UT_hash_handle hh;
    char id[]; /* "s:<string>" or "i:<integer>", so the two kinds never collide */
};

struct chat_seen {
    struct seen_id *table;
    size_t count, cap;
};

struct chat_seen *chat_seen_new(size_t cap)
{
    struct chat_seen *s = calloc(1, sizeof(*s));
    if (s)
        s->cap = cap ? cap : 1;
    return s;
}

void chat_seen_free(struct chat_seen *s)
{
    if (!s)
        return;
    struct seen_id *e, *tmp;
    HASH_ITER (hh, s->table, e, tmp) {
        HASH_DEL(s->table, e);
        free(e);
    }
    free(s);
}

int chat_seen_repeat(struct chat_seen *s, const json_t *push)
{
    const json_t *id = json_object_get(push, "msg_id");
    char key[300];
    if (json_is_string(id) && json_string_length(id) < sizeof(key) - 3)
        snprintf(key, sizeof(key), "s:%s", json_string_value(id));
    else if (json_is_integer(id))
        snprintf(key, sizeof(key), "i:%lld", (long long)json_integer_value(id));
    else
        return 0;

    struct seen_id *found = NULL;
    HASH_FIND_STR(s->table, key, found);
    if (found)
        return 1;
    size_t len = strlen(key);
    struct seen_id *e = malloc(sizeof(*e) + len + 1);
    if (!e)
        return 0; /* showing a rare repeat beats losing a message */
    memcpy(e->id, key, len + 1);
    HASH_ADD(hh, s->table, id[0], len, e);
    if (++s->count > s->cap) {
        struct seen_id *oldest = s->table; /* the head is the first one added */
        HASH_DEL(s->table, oldest);
        free(oldest);
        s->count--;
    }
    return 0;
}
