/* db.c - a MariaDB connection with a per-connection cache of prepared statements;
 * every statement binds its parameters, none is built from client text. The bindings
 * live in per-connection buffers that grow to the largest statement seen, so the
 * host's multi-row INSERTs (commit_batch.c) may bind thousands of parameters, while
 * plugins stay at the ABI's CHATD_DB_MAX_PARAMS. */
#include "db.h"

#include "log.h"

#include <errmsg.h>
#include <errno.h>
#include <mysqld_error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

/* A prepared statement, kept per connection and keyed by its SQL text, so a plugin's
 * hot statement is parsed by the server once per connection, not once per job. */
struct stmt_entry {
    char *sql;
    MYSQL_STMT *stmt;
    UT_hash_handle hh;
};

int db_error_is_conflict(unsigned code)
{
    return code == ER_LOCK_DEADLOCK || code == ER_LOCK_WAIT_TIMEOUT;
}

int db_error_is_duplicate(unsigned code)
{
    return code == ER_DUP_ENTRY;
}

int db_error_is_lost(unsigned code)
{
    switch (code) {
    case CR_SERVER_GONE_ERROR:
    case CR_SERVER_LOST:
    case CR_CONNECTION_ERROR:
    case CR_CONN_HOST_ERROR:
    case CR_SERVER_LOST_EXTENDED:
    case CR_COMMANDS_OUT_OF_SYNC:
    case ER_CONNECTION_KILLED:
    case ER_SERVER_SHUTDOWN:
    case 4031: /* ER_CLIENT_INTERACTION_TIMEOUT */
        return 1;
    }
    return 0;
}

int db_load_password(const struct config_database *cfg, char **out, char *err, size_t errlen)
{
    if (!cfg->password_file || !cfg->password_file[0]) {
        *out = strdup(cfg->password ? cfg->password : "");
        return *out ? 0 : -1;
    }
    FILE *f = fopen(cfg->password_file, "r");
    if (!f) {
        snprintf(err, errlen, "[database] password_file %s: %s", cfg->password_file,
                 strerror(errno));
        return -1;
    }
    char line[512] = "";
    if (!fgets(line, sizeof(line), f))
        line[0] = '\0';
    fclose(f);
    line[strcspn(line, "\r\n")] = '\0';
    *out = strdup(line);
    return *out ? 0 : -1;
}

static void free_statements(struct chatd_db *db)
{
    struct stmt_entry *e, *tmp;
    HASH_ITER (hh, db->stmts, e, tmp) {
        HASH_DEL(db->stmts, e);
        mysql_stmt_close(e->stmt);
        free(e->sql);
        free(e);
    }
}

int db_open(struct chatd_db *db, const struct config_database *cfg, const char *password, char *err,
            size_t errlen)
{
    db_close(db);
    db->cfg = cfg;
    db->password = password;
    db->conn = mysql_init(NULL);
    if (!db->conn) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    unsigned timeout = (unsigned)cfg->connect_timeout_s;
    /* A lost connection is re-established by the pool, never silently by the library,
     * so a statement cache or a transaction is never used on a fresh session unawares. */
    my_bool no = 0;
    mysql_optionsv(db->conn, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
    mysql_optionsv(db->conn, MYSQL_OPT_RECONNECT, &no);
    if (db->io_timeout_s) {
        mysql_optionsv(db->conn, MYSQL_OPT_READ_TIMEOUT, &db->io_timeout_s);
        mysql_optionsv(db->conn, MYSQL_OPT_WRITE_TIMEOUT, &db->io_timeout_s);
    }
    mysql_optionsv(db->conn, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    mysql_optionsv(db->conn, MYSQL_INIT_COMMAND, "SET time_zone = '+00:00'");
    if (cfg->tls) {
        my_bool yes = 1, verify = cfg->tls_verify ? 1 : 0;
        mysql_optionsv(db->conn, MYSQL_OPT_SSL_ENFORCE, &yes);
        mysql_optionsv(db->conn, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify);
        if (cfg->tls_ca[0])
            mysql_optionsv(db->conn, MYSQL_OPT_SSL_CA, cfg->tls_ca);
        if (cfg->tls_cert[0])
            mysql_optionsv(db->conn, MYSQL_OPT_SSL_CERT, cfg->tls_cert);
        if (cfg->tls_key[0])
            mysql_optionsv(db->conn, MYSQL_OPT_SSL_KEY, cfg->tls_key);
    }
    const char *socket = cfg->socket && cfg->socket[0] ? cfg->socket : NULL;
    if (!mysql_real_connect(db->conn, socket ? NULL : cfg->host, cfg->user, password, cfg->name,
                            (unsigned)cfg->port, socket, 0)) {
        snprintf(err, errlen, "cannot connect to MariaDB %s%s as %s: %s (%u)",
                 socket ? "at " : "on ", socket ? socket : cfg->host, cfg->user,
                 mysql_error(db->conn), mysql_errno(db->conn));
        mysql_close(db->conn);
        db->conn = NULL;
        return -1;
    }
    db->thread_id = mysql_thread_id(db->conn);
    db->broken = 0;
    atomic_store(&db->killed, 0);
    return 0;
}

void db_close(struct chatd_db *db)
{
    free_statements(db);
    if (db->conn)
        mysql_close(db->conn);
    db->conn = NULL;
    for (size_t i = 0; i < db->n_col_buf; i++)
        free(db->col_buf[i]);
    free(db->col_buf);
    free(db->col_cap);
    db->col_buf = NULL;
    db->col_cap = NULL;
    db->n_col_buf = 0;
    free(db->param_bind);
    free(db->param_len);
    free(db->param_int);
    db->param_bind = NULL;
    db->param_len = NULL;
    db->param_int = NULL;
    db->n_param_buf = 0;
}

/* Room to bind n parameters. -1 out of memory. */
static int ensure_params(struct chatd_db *db, size_t n)
{
    if (n <= db->n_param_buf)
        return 0;
    MYSQL_BIND *bind = realloc(db->param_bind, n * sizeof(*bind));
    if (bind)
        db->param_bind = bind;
    unsigned long *len = realloc(db->param_len, n * sizeof(*len));
    if (len)
        db->param_len = len;
    long long *ints = realloc(db->param_int, n * sizeof(*ints));
    if (ints)
        db->param_int = ints;
    if (!bind || !len || !ints)
        return -1;
    db->n_param_buf = n;
    return 0;
}

/* Turn a failed call into a status: lost connection, our own timeout, or a plain
 * database error (logged with the statement's start, never with parameter values). */
static int failure(struct chatd_db *db, unsigned code, const char *message, const char *sql)
{
    db->last_errno = code;
    snprintf(db->last_error, sizeof(db->last_error), "%s", message);
    if (atomic_load(&db->killed) && (code == ER_QUERY_INTERRUPTED || code == ER_STATEMENT_TIMEOUT))
        return CHATD_ETIMEDOUT;
    if (db_error_is_lost(code)) {
        db->broken = 1;
        log_warn("database connection lost: %s (%u)", message, code);
        return CHATD_EDBLOST;
    }
    log_error("database error %u: %s; in: %.80s", code, message, sql);
    return CHATD_EDB;
}

static MYSQL_STMT *prepare(struct chatd_db *db, const char *sql, int *status)
{
    struct stmt_entry *e;
    HASH_FIND_STR(db->stmts, sql, e);
    if (e)
        return e->stmt;
    MYSQL_STMT *stmt = mysql_stmt_init(db->conn);
    if (!stmt) {
        *status = CHATD_ENOMEM;
        return NULL;
    }
    if (mysql_stmt_prepare(stmt, sql, strlen(sql)) != 0) {
        *status = failure(db, mysql_stmt_errno(stmt), mysql_stmt_error(stmt), sql);
        mysql_stmt_close(stmt);
        return NULL;
    }
    e = calloc(1, sizeof(*e));
    if (!e || !(e->sql = strdup(sql))) {
        free(e);
        mysql_stmt_close(stmt);
        *status = CHATD_ENOMEM;
        return NULL;
    }
    e->stmt = stmt;
    HASH_ADD_KEYPTR(hh, db->stmts, e->sql, strlen(e->sql), e);
    return stmt;
}

/* Prepare (or reuse) sql, bind params and execute it. */
static MYSQL_STMT *run(struct chatd_db *db, const char *sql, const struct chatd_value *params,
                       size_t nparams, int *status)
{
    *status = 0;
    if (!db || !db->conn || !sql || nparams > DB_HOST_MAX_PARAMS || (nparams && !params)) {
        if (sql && nparams > DB_HOST_MAX_PARAMS)
            log_error("statement has %zu parameters, more than %d; in: %.80s", nparams,
                      DB_HOST_MAX_PARAMS, sql);
        *status = CHATD_EINVAL;
        return NULL;
    }
    if (atomic_load(&db->killed)) {
        *status = CHATD_ETIMEDOUT; /* the job's budget is spent: run nothing more */
        return NULL;
    }
    if (db->broken) {
        *status = CHATD_EDBLOST;
        return NULL;
    }
    MYSQL_STMT *stmt = prepare(db, sql, status);
    if (!stmt)
        return NULL;
    if (mysql_stmt_param_count(stmt) != nparams) {
        log_error("statement has %lu parameters but %zu were given; in: %.80s",
                  mysql_stmt_param_count(stmt), nparams, sql);
        *status = CHATD_EINVAL;
        return NULL;
    }
    if (ensure_params(db, nparams ? nparams : 1) != 0) {
        *status = CHATD_ENOMEM;
        return NULL;
    }
    MYSQL_BIND *bind = db->param_bind;
    unsigned long *lengths = db->param_len;
    long long *ints = db->param_int;
    memset(bind, 0, sizeof(bind[0]) * (nparams ? nparams : 1));
    for (size_t i = 0; i < nparams; i++) {
        const struct chatd_value *v = &params[i];
        switch (v->type) {
        case CHATD_PARAM_NULL:
            bind[i].buffer_type = MYSQL_TYPE_NULL;
            break;
        case CHATD_PARAM_INT64:
            ints[i] = v->i;
            bind[i].buffer_type = MYSQL_TYPE_LONGLONG;
            bind[i].buffer = &ints[i];
            break;
        case CHATD_PARAM_TEXT:
        case CHATD_PARAM_BLOB:
            lengths[i] = (unsigned long)v->len;
            bind[i].buffer_type = v->type == CHATD_PARAM_TEXT ? MYSQL_TYPE_STRING : MYSQL_TYPE_BLOB;
            /* The library only reads parameter buffers. */
            bind[i].buffer = (void *)(uintptr_t)(v->s ? v->s : "");
            bind[i].buffer_length = lengths[i];
            bind[i].length = &lengths[i];
            break;
        default:
            *status = CHATD_EINVAL;
            return NULL;
        }
    }
    if ((nparams && mysql_stmt_bind_param(stmt, bind) != 0) || mysql_stmt_execute(stmt) != 0) {
        *status = failure(db, mysql_stmt_errno(stmt), mysql_stmt_error(stmt), sql);
        mysql_stmt_reset(stmt);
        return NULL;
    }
    return stmt;
}

int db_exec(struct chatd_db *db, const char *sql, const struct chatd_value *params, size_t nparams,
            uint64_t *affected, uint64_t *insert_id)
{
    int status;
    MYSQL_STMT *stmt = run(db, sql, params, nparams, &status);
    if (!stmt)
        return status;
    if (affected)
        *affected = mysql_stmt_affected_rows(stmt);
    if (insert_id)
        *insert_id = mysql_stmt_insert_id(stmt);
    mysql_stmt_free_result(stmt);
    return 0;
}

static int ensure_columns(struct chatd_db *db, size_t n)
{
    if (n <= db->n_col_buf)
        return 0;
    char **bufs = realloc(db->col_buf, n * sizeof(*bufs));
    if (!bufs)
        return -1;
    db->col_buf = bufs;
    unsigned long *caps = realloc(db->col_cap, n * sizeof(*caps));
    if (!caps)
        return -1;
    db->col_cap = caps;
    for (size_t i = db->n_col_buf; i < n; i++) {
        db->col_cap[i] = 256;
        db->col_buf[i] = malloc(db->col_cap[i]);
        if (!db->col_buf[i])
            return -1;
        db->n_col_buf = i + 1;
    }
    return 0;
}

static int is_integer_type(enum enum_field_types t)
{
    return t == MYSQL_TYPE_TINY || t == MYSQL_TYPE_SHORT || t == MYSQL_TYPE_LONG ||
           t == MYSQL_TYPE_INT24 || t == MYSQL_TYPE_LONGLONG || t == MYSQL_TYPE_YEAR;
}

#define MAX_COLUMNS 64

/* Binary strings (BLOB, BINARY, VARBINARY) come back as CHATD_PARAM_BLOB; numbers,
 * dates and text as CHATD_PARAM_TEXT in their SQL text form. */
static int is_binary(const MYSQL_FIELD *f)
{
    switch (f->type) {
    case MYSQL_TYPE_TINY_BLOB:
    case MYSQL_TYPE_MEDIUM_BLOB:
    case MYSQL_TYPE_LONG_BLOB:
    case MYSQL_TYPE_BLOB:
    case MYSQL_TYPE_STRING:
    case MYSQL_TYPE_VAR_STRING:
        return f->charsetnr == 63;
    default:
        return 0;
    }
}

int db_query(struct chatd_db *db, const char *sql, const struct chatd_value *params, size_t nparams,
             chatd_row_fn on_row, void *arg)
{
    int status;
    if (!on_row)
        return CHATD_EINVAL;
    MYSQL_STMT *stmt = run(db, sql, params, nparams, &status);
    if (!stmt)
        return status;
    size_t ncols = mysql_stmt_field_count(stmt);
    MYSQL_RES *meta = mysql_stmt_result_metadata(stmt);
    if (!meta || ncols > MAX_COLUMNS || ensure_columns(db, ncols) < 0) {
        if (meta)
            mysql_free_result(meta);
        mysql_stmt_free_result(stmt);
        log_error("query returns no rows or too many columns; in: %.80s", sql);
        return CHATD_EINVAL;
    }
    MYSQL_FIELD *fields = mysql_fetch_fields(meta);
    MYSQL_BIND bind[MAX_COLUMNS];
    unsigned long lengths[MAX_COLUMNS];
    my_bool nulls[MAX_COLUMNS];
    long long ints[MAX_COLUMNS];
    struct chatd_value cols[MAX_COLUMNS];
    memset(bind, 0, sizeof(bind[0]) * (ncols ? ncols : 1));
    for (size_t i = 0; i < ncols; i++) {
        bind[i].is_null = &nulls[i];
        bind[i].length = &lengths[i];
        if (is_integer_type(fields[i].type)) {
            bind[i].buffer_type = MYSQL_TYPE_LONGLONG;
            bind[i].buffer = &ints[i];
            bind[i].is_unsigned = (fields[i].flags & UNSIGNED_FLAG) != 0;
        } else {
            bind[i].buffer_type = MYSQL_TYPE_STRING;
            bind[i].buffer = db->col_buf[i];
            bind[i].buffer_length = db->col_cap[i];
        }
    }
    /* Rows are buffered so on_row may take its time without holding the server. */
    if (mysql_stmt_bind_result(stmt, bind) != 0 || mysql_stmt_store_result(stmt) != 0) {
        status = failure(db, mysql_stmt_errno(stmt), mysql_stmt_error(stmt), sql);
        goto out;
    }
    for (;;) {
        int rc = mysql_stmt_fetch(stmt);
        if (rc == MYSQL_NO_DATA)
            break;
        if (rc == 1) {
            status = failure(db, mysql_stmt_errno(stmt), mysql_stmt_error(stmt), sql);
            break;
        }
        for (size_t i = 0; i < ncols; i++) {
            if (bind[i].buffer_type == MYSQL_TYPE_STRING && !nulls[i] &&
                lengths[i] >= db->col_cap[i]) {
                /* Grow this column's buffer and fetch the whole value again. */
                unsigned long cap = lengths[i] + 1;
                char *grown = realloc(db->col_buf[i], cap);
                if (!grown) {
                    status = CHATD_ENOMEM;
                    goto out;
                }
                db->col_buf[i] = grown;
                db->col_cap[i] = cap;
                bind[i].buffer = grown;
                bind[i].buffer_length = cap;
                mysql_stmt_fetch_column(stmt, &bind[i], (unsigned)i, 0);
                mysql_stmt_bind_result(stmt, bind);
            }
            if (nulls[i])
                cols[i] = (struct chatd_value){.type = CHATD_PARAM_NULL};
            else if (bind[i].buffer_type == MYSQL_TYPE_LONGLONG)
                cols[i] = (struct chatd_value){.type = CHATD_PARAM_INT64, .i = ints[i]};
            else {
                db->col_buf[i][lengths[i]] = '\0'; /* room is kept for it */
                cols[i] = (struct chatd_value){.type = is_binary(&fields[i]) ? CHATD_PARAM_BLOB
                                                                             : CHATD_PARAM_TEXT,
                                               .s = db->col_buf[i],
                                               .len = lengths[i]};
            }
        }
        if (on_row(cols, ncols, arg) != 0)
            break;
    }
out:
    mysql_free_result(meta);
    mysql_stmt_free_result(stmt);
    return status;
}

int db_over_plugin_limit(const char *sql, size_t nparams)
{
    if (nparams <= CHATD_DB_MAX_PARAMS)
        return 0;
    log_error("statement has %zu parameters, more than %d; in: %.80s", nparams, CHATD_DB_MAX_PARAMS,
              sql ? sql : "");
    return 1;
}

int db_plugin_exec(struct chatd_db *db, const char *sql, const struct chatd_value *params,
                   size_t nparams, uint64_t *affected, uint64_t *insert_id)
{
    return db_over_plugin_limit(sql, nparams)
               ? CHATD_EINVAL
               : db_exec(db, sql, params, nparams, affected, insert_id);
}

int db_plugin_query(struct chatd_db *db, const char *sql, const struct chatd_value *params,
                    size_t nparams, chatd_row_fn on_row, void *arg)
{
    return db_over_plugin_limit(sql, nparams) ? CHATD_EINVAL
                                              : db_query(db, sql, params, nparams, on_row, arg);
}

int db_simple(struct chatd_db *db, const char *sql)
{
    return db_exec(db, sql, NULL, 0, NULL, NULL);
}

int db_read_int64(const struct chatd_value *cols, size_t ncols, void *arg)
{
    if (ncols == 1 && cols[0].type == CHATD_PARAM_INT64)
        *(int64_t *)arg = cols[0].i;
    return 0;
}
