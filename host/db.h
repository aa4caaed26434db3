/* db.h - one MariaDB connection and the prepared-statement helpers plugins use through
 * the host table (db_exec, db_query). A connection belongs to one thread at a time.
 * The host's own statements bind up to DB_HOST_MAX_PARAMS parameters; plugins keep the
 * ABI's CHATD_DB_MAX_PARAMS (db_plugin_exec, db_plugin_query). */
#ifndef CHATD_HOST_DB_H
#define CHATD_HOST_DB_H

#include "config.h"

#include <chatd/plugin.h>
#include <mysql.h>
#include <stdatomic.h>

struct stmt_entry;

/* The most parameters one of the host's statements binds: the protocol's limit (a
 * prepared statement counts its parameters in 16 bits). */
#define DB_HOST_MAX_PARAMS 65535

/* The definition of the ABI's opaque database handle. */
struct chatd_db {
    MYSQL *conn;
    const struct config_database *cfg;
    const char *password;
    unsigned io_timeout_s;   /* read/write timeout of the connection; 0: none */
    unsigned long thread_id; /* the server's id for this connection, for KILL QUERY */
    int broken;              /* a lost-connection error was seen: reconnect before use */
    atomic_int killed;       /* the watchdog killed the running query: report a timeout */
    struct stmt_entry *stmts;
    /* The last error MariaDB reported on this connection, for messages. */
    unsigned last_errno;
    char last_error[256];
    /* Growable buffers for result columns, reused across queries. */
    char **col_buf;
    unsigned long *col_cap;
    size_t n_col_buf;
    /* Growable parameter bindings, reused across statements: n_param_buf of each. */
    MYSQL_BIND *param_bind;
    unsigned long *param_len;
    long long *param_int;
    size_t n_param_buf;
};

/* Load the password (the first line of password_file when set). Caller frees. */
int db_load_password(const struct config_database *cfg, char **out, char *err, size_t errlen);
/* Connect. -1 with MariaDB's message in err. */
int db_open(struct chatd_db *db, const struct config_database *cfg, const char *password, char *err,
            size_t errlen);
void db_close(struct chatd_db *db);
/* Whether a MariaDB error code means the connection is gone. */
int db_error_is_lost(unsigned code);
/* Whether it means the transaction lost to another (deadlock, lock wait timeout) and
 * may simply run again. */
int db_error_is_conflict(unsigned code);
/* Whether it means a row with the same unique key exists (committed by another
 * transaction after this one's reads). */
int db_error_is_duplicate(unsigned code);

/* A db_query row callback: one integer column into *(int64_t *)arg. */
int db_read_int64(const struct chatd_value *cols, size_t ncols, void *arg);
/* Run a statement of the host's (up to DB_HOST_MAX_PARAMS parameters); the host
 * table's are db_plugin_exec and db_plugin_query below. */
int db_exec(struct chatd_db *db, const char *sql, const struct chatd_value *params, size_t nparams,
            uint64_t *affected, uint64_t *insert_id);
int db_query(struct chatd_db *db, const char *sql, const struct chatd_value *params, size_t nparams,
             chatd_row_fn on_row, void *arg);
/* Whether a plugin's statement binds more than the ABI's CHATD_DB_MAX_PARAMS (logged). */
int db_over_plugin_limit(const char *sql, size_t nparams);
/* The host table's db_exec and db_query (see chatd/plugin.h): at most
 * CHATD_DB_MAX_PARAMS parameters, more is CHATD_EINVAL. */
int db_plugin_exec(struct chatd_db *db, const char *sql, const struct chatd_value *params,
                   size_t nparams, uint64_t *affected, uint64_t *insert_id);
int db_plugin_query(struct chatd_db *db, const char *sql, const struct chatd_value *params,
                    size_t nparams, chatd_row_fn on_row, void *arg);
/* Run a statement with no parameters and no rows (START TRANSACTION, COMMIT). */
int db_simple(struct chatd_db *db, const char *sql);

#endif
