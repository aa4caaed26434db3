/* db_rows.c - db_query_rows: values are appended to one array and their bytes to one
 * buffer (as offsets, since the buffer moves while it grows), then the offsets are
 * turned into pointers once the last row is in. */
#include "db_rows.h"

#include "db.h"

#include <stdlib.h>
#include <string.h>

struct gather {
    struct chatd_value *values;
    size_t n_values, cap_values;
    char *bytes;
    size_t n_bytes, cap_bytes;
    size_t n_cols, n_rows, max_rows;
    int overflow, nomem;
};

static int grow(void **buf, size_t *cap, size_t need, size_t item)
{
    if (need <= *cap)
        return 0;
    size_t cap2 = *cap ? *cap : 16;
    while (cap2 < need)
        cap2 *= 2;
    void *more = realloc(*buf, cap2 * item);
    if (!more)
        return -1;
    *buf = more;
    *cap = cap2;
    return 0;
}

static int gather_row(const struct chatd_value *cols, size_t ncols, void *arg)
{
    struct gather *g = arg;
    if (g->n_rows == g->max_rows) {
        g->overflow = 1;
        return 1;
    }
    if (g->n_rows == 0)
        g->n_cols = ncols;
    if (ncols != g->n_cols ||
        grow((void **)&g->values, &g->cap_values, g->n_values + ncols, sizeof(*g->values)) < 0) {
        g->nomem = 1;
        return 1;
    }
    for (size_t c = 0; c < ncols; c++) {
        struct chatd_value v = cols[c];
        if (v.type == CHATD_PARAM_TEXT || v.type == CHATD_PARAM_BLOB) {
            if (grow((void **)&g->bytes, &g->cap_bytes, g->n_bytes + v.len + 1, 1) < 0) {
                g->nomem = 1;
                return 1;
            }
            if (v.len)
                memcpy(g->bytes + g->n_bytes, v.s, v.len);
            g->bytes[g->n_bytes + v.len] = '\0';
            v.s = NULL;
            v.i = (int64_t)g->n_bytes; /* the offset, until the end */
            g->n_bytes += v.len + 1;
        }
        g->values[g->n_values++] = v;
    }
    g->n_rows++;
    return 0;
}

/* The block rows_free frees: the public part first. */
struct rows_block {
    struct chatd_rows rows;
    struct chatd_value *values;
    char *bytes;
};

int db_query_rows(struct chatd_db *db, const char *sql, const struct chatd_value *params,
                  size_t nparams, size_t max_rows, struct chatd_rows **out)
{
    *out = NULL;
    struct gather g = {.max_rows =
                           max_rows && max_rows < DB_ROWS_HARD_MAX ? max_rows : DB_ROWS_HARD_MAX};
    int rc = db_plugin_query(db, sql, params, nparams, gather_row, &g); /* the ABI's limit */
    struct rows_block *b = rc == 0 && !g.nomem ? calloc(1, sizeof(*b)) : NULL;
    if (!b) {
        free(g.values);
        free(g.bytes);
        return rc != 0 ? rc : CHATD_ENOMEM;
    }
    for (size_t i = 0; i < g.n_values; i++) {
        struct chatd_value *v = &g.values[i];
        if (v->type == CHATD_PARAM_TEXT || v->type == CHATD_PARAM_BLOB) {
            v->s = g.bytes + v->i;
            v->i = 0;
        }
    }
    b->values = g.values;
    b->bytes = g.bytes;
    b->rows.n_rows = g.n_rows;
    b->rows.n_cols = g.n_cols;
    b->rows.values = g.values;
    *out = &b->rows;
    return g.overflow ? CHATD_EOVERFLOW : 0;
}

void db_rows_free(struct chatd_rows *rows)
{
    if (!rows)
        return;
    struct rows_block *b = (struct rows_block *)rows;
    free(b->values);
    free(b->bytes);
    free(b);
}
