/* db_rows.h - gathering every row of a query into one block a job can hand back to
 * the loop thread (ABI 1.2 db_query_rows and rows_free). Worker threads. */
#ifndef CHATD_HOST_DB_ROWS_H
#define CHATD_HOST_DB_ROWS_H

#include <chatd/plugin.h>

/* Rows gathered without a limit stop here, so one query cannot take all memory. */
#define DB_ROWS_HARD_MAX 100000

int db_query_rows(struct chatd_db *db, const char *sql, const struct chatd_value *params,
                  size_t nparams, size_t max_rows, struct chatd_rows **out);
void db_rows_free(struct chatd_rows *rows);

#endif
