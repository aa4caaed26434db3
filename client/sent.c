/* sent.c - a bounded map of own messages, oldest first out (uthash keeps insertion
 * order). */
#include "sent.h"

#include <stdlib.h>
#include <string.h>
#include <uthash.h>

struct sent_msg {
    UT_hash_handle hh;
    char *msg_id;
    char *text;
    long long ts;
};

struct chat_sent {
    struct sent_msg *table;
    size_t count, cap;
};

struct chat_sent *chat_sent_new(size_t cap)
{
    struct chat_sent *s = calloc(1, sizeof(*s));
    if (s)
        s->cap = cap ? cap : 1;
    return s;
}

static void drop(struct chat_sent *s, struct sent_msg *m)
{
    HASH_DEL(s->table, m);
    free(m->msg_id);
    free(m->text);
    free(m);
    s->count--;
}

void chat_sent_free(struct chat_sent *s)
{
    if (!s)
        return;
    struct sent_msg *m, *tmp;
    HASH_ITER (hh, s->table, m, tmp)
        drop(s, m);
    free(s);
}

void chat_sent_add(struct chat_sent *s, const char *msg_id, const char *text, long long ts)
{
    struct sent_msg *m = NULL;
    HASH_FIND_STR(s->table, msg_id, m);
    if (m)
        return; /* a repeated client_msg_id's reply: the same message */
    m = calloc(1, sizeof(*m));
    if (!m)
        return;
    m->msg_id = strdup(msg_id);
    m->text = strdup(text);
    m->ts = ts;
    if (!m->msg_id || !m->text) {
        free(m->msg_id);
        free(m->text);
        free(m);
        return;
    }
    HASH_ADD_KEYPTR(hh, s->table, m->msg_id, strlen(m->msg_id), m);
    if (++s->count > s->cap)
        drop(s, s->table); /* the head is the first one added */
}

const char *chat_sent_find(const struct chat_sent *s, const char *msg_id, long long *ts)
{
    struct sent_msg *m = NULL;
    HASH_FIND_STR(s->table, msg_id, m);
    if (!m)
        return NULL;
    *ts = m->ts;
    return m->text;
}
