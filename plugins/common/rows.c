/* rows.c - reading what db_query_rows gathered. */
#include "common.h"

const char *chat_cell(const struct chatd_rows *rows, size_t r, size_t c)
{
    return rows->values[r * rows->n_cols + c].s;
}

json_t *chat_column_array(const struct chatd_rows *rows, size_t col)
{
    json_t *array = json_array();
    for (size_t r = 0; array && rows && r < rows->n_rows; r++) {
        if (json_array_append_new(array, json_string(chat_cell(rows, r, col))) != 0) {
            json_decref(array);
            return NULL;
        }
    }
    return array;
}

int chat_query_int64(const struct chatd_host *host, struct chatd_db *db, const char *sql,
                     const struct chatd_value *params, size_t nparams, int64_t *out)
{
    struct chatd_rows *rows = NULL;
    int rc = host->db_query_rows(db, sql, params, nparams, 1, &rows);
    *out = rc == 0 && rows->n_rows > 0 ? rows->values[0].i : 0;
    host->rows_free(rows);
    return rc;
}
