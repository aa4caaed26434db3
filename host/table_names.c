/* table_names.c - finds the tables a statement changes with a small SQL tokenizer:
 * words, `quoted` names, strings and comments skipped, and the punctuation that matters
 * (, ; ( .). The statements are plugin migrations, so a plugin that wanted to hide a
 * table could; the point is to catch the honest mistake (CREATE TABLE IF NOT EXISTS
 * users, silently "succeeding" against another plugin's table). */
#include "table_names.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct token {
    const char *start;
    size_t len;
    int quoted; /* `name` */
};

struct tokens {
    struct token *t;
    size_t n, cap;
};

/* Room for one more token; -1 when out of memory. */
static int tokens_room(struct tokens *ts)
{
    if (ts->n < ts->cap)
        return 0;
    size_t cap = ts->cap ? ts->cap * 2 : 256;
    struct token *more = realloc(ts->t, cap * sizeof(*more));
    if (!more)
        return -1;
    ts->t = more;
    ts->cap = cap;
    return 0;
}

static int is_word_byte(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '$';
}

/* Skip a string literal or a comment at p; returns where it ends, or p when none. */
static const char *skip_noise(const char *p)
{
    if (*p == '\'' || *p == '"') {
        char q = *p++;
        while (*p && *p != q)
            p += (*p == '\\' && p[1]) ? 2 : 1;
        return *p ? p + 1 : p;
    }
    if ((p[0] == '-' && p[1] == '-') || p[0] == '#') {
        while (*p && *p != '\n')
            p++;
        return p;
    }
    if (p[0] == '/' && p[1] == '*') {
        const char *end = strstr(p + 2, "*/");
        return end ? end + 2 : p + strlen(p);
    }
    return p;
}

/* -1 when out of memory. */
static int tokenize(const char *sql, struct tokens *out)
{
    const char *p = sql;
    while (*p) {
        const char *after = skip_noise(p);
        if (after != p) {
            p = after;
            continue;
        }
        if (tokens_room(out) < 0)
            return -1;
        struct token *t = &out->t[out->n];
        if (*p == '`') {
            const char *end = strchr(p + 1, '`');
            if (!end)
                return 0;
            *t = (struct token){p + 1, (size_t)(end - p - 1), 1};
            out->n++;
            p = end + 1;
        } else if (is_word_byte(*p)) {
            const char *s = p;
            while (is_word_byte(*p))
                p++;
            *t = (struct token){s, (size_t)(p - s), 0};
            out->n++;
        } else if (strchr(",;().", *p)) {
            *t = (struct token){p, 1, 0};
            out->n++;
            p++;
        } else {
            p++;
        }
    }
    return 0;
}

static int is_kw(const struct tokens *ts, size_t i, const char *kw)
{
    return i < ts->n && !ts->t[i].quoted && ts->t[i].len == strlen(kw) &&
           strncasecmp(ts->t[i].start, kw, ts->t[i].len) == 0;
}

static int is_punct(const struct tokens *ts, size_t i, char c)
{
    return i < ts->n && !ts->t[i].quoted && ts->t[i].len == 1 && ts->t[i].start[0] == c;
}

/* Skip the optional keywords in `words` (NULL-terminated) at i. */
static size_t skip_words(const struct tokens *ts, size_t i, const char *const *words)
{
    for (int moved = 1; moved;) {
        moved = 0;
        for (const char *const *w = words; *w; w++) {
            if (is_kw(ts, i, *w)) {
                i++;
                moved = 1;
            }
        }
    }
    return i;
}

struct check {
    const char *plugin;
    char *bad;
    size_t badlen;
    int failed;
};

/* Whether name (len bytes, unqualified) is plugin or plugin_... */
static int belongs(const char *name, size_t len, const char *plugin)
{
    size_t plen = strlen(plugin);
    return len >= plen && strncmp(name, plugin, plen) == 0 && (len == plen || name[plen] == '_');
}

/* Check the name at i (db.table counts as not the plugin's); returns the index after
 * it. */
static size_t check_name(const struct tokens *ts, size_t i, struct check *c)
{
    if (i >= ts->n || c->failed)
        return i;
    const struct token *t = &ts->t[i];
    int qualified = is_punct(ts, i + 1, '.') && i + 2 < ts->n;
    if (qualified || !belongs(t->start, t->len, c->plugin)) {
        const struct token *table = qualified ? &ts->t[i + 2] : t;
        snprintf(c->bad, c->badlen, "%.*s%s%.*s", qualified ? (int)t->len : 0, t->start,
                 qualified ? "." : "", (int)table->len, table->start);
        c->failed = 1;
    }
    return qualified ? i + 3 : i + 1;
}

/* The table after INDEX name ... ON. */
static void check_index_target(const struct tokens *ts, size_t i, struct check *c)
{
    for (; i < ts->n && !is_punct(ts, i, ';') && !is_punct(ts, i, '('); i++) {
        if (is_kw(ts, i, "ON")) {
            check_name(ts, i + 1, c);
            return;
        }
    }
}

/* Names separated by commas (DROP TABLE a, b), or pairs a TO b (RENAME TABLE). */
static void check_name_list(const struct tokens *ts, size_t i, struct check *c)
{
    for (;;) {
        i = check_name(ts, i, c);
        if (is_kw(ts, i, "TO"))
            i = check_name(ts, i + 1, c);
        if (!is_punct(ts, i, ','))
            return;
        i++;
    }
}

static void check_statement_at(const struct tokens *ts, size_t i, struct check *c)
{
    static const char *const create_opts[] = {"OR", "REPLACE", "TEMPORARY", NULL};
    static const char *const if_exists[] = {"IF", "NOT", "EXISTS", NULL};
    static const char *const index_kinds[] = {"UNIQUE", "FULLTEXT", "SPATIAL", NULL};
    static const char *const alter_opts[] = {"ONLINE", "IGNORE", NULL};
    static const char *const write_opts[] = {"LOW_PRIORITY", "DELAYED", "HIGH_PRIORITY",
                                             "QUICK",        "IGNORE",  NULL};
    /* ON UPDATE / ON DELETE (columns, foreign keys) and KEY UPDATE (upserts) are not
     * statements. */
    int clause = i > 0 && (is_kw(ts, i - 1, "ON") || is_kw(ts, i - 1, "KEY"));
    if (is_kw(ts, i, "CREATE") || is_kw(ts, i, "DROP")) {
        size_t j = skip_words(ts, i + 1, create_opts);
        j = skip_words(ts, j, index_kinds);
        if (is_kw(ts, j, "TABLE"))
            check_name_list(ts, skip_words(ts, j + 1, if_exists), c);
        else if (is_kw(ts, j, "INDEX"))
            check_index_target(ts, j + 1, c);
    } else if (is_kw(ts, i, "ALTER")) {
        size_t j = skip_words(ts, i + 1, alter_opts);
        if (is_kw(ts, j, "TABLE"))
            check_name(ts, j + 1, c);
    } else if (is_kw(ts, i, "RENAME")) {
        if (is_kw(ts, i + 1, "TABLE"))
            check_name_list(ts, i + 2, c);
        else if (is_kw(ts, i + 1, "TO") || is_kw(ts, i + 1, "AS"))
            check_name(ts, i + 2, c);
    } else if (is_kw(ts, i, "TRUNCATE")) {
        check_name(ts, is_kw(ts, i + 1, "TABLE") ? i + 2 : i + 1, c);
    } else if ((is_kw(ts, i, "INSERT") || is_kw(ts, i, "REPLACE")) && !clause) {
        size_t j = skip_words(ts, i + 1, write_opts);
        /* REPLACE(...) is also a string function. */
        if (!is_punct(ts, j, '('))
            check_name(ts, is_kw(ts, j, "INTO") ? j + 1 : j, c);
    } else if ((is_kw(ts, i, "UPDATE") || is_kw(ts, i, "DELETE")) && !clause) {
        size_t j = skip_words(ts, i + 1, write_opts);
        check_name(ts, is_kw(ts, j, "FROM") ? j + 1 : j, c);
    }
}

int table_names_check(const char *sql, const char *plugin, char *bad, size_t badlen)
{
    struct tokens ts = {0};
    if (tokenize(sql, &ts) < 0) {
        free(ts.t);
        snprintf(bad, badlen, "(out of memory reading the statement)");
        return -1;
    }
    struct check c = {plugin, bad, badlen, 0};
    for (size_t i = 0; i < ts.n && !c.failed; i++)
        check_statement_at(&ts, i, &c);
    free(ts.t);
    return c.failed ? -1 : 0;
}
