/* fill.c - chatd_messages filled through MariaDB Connector/C, fast: one prepared
 * multi-row INSERT of ROWS_PER_INSERT messages with explicit ids, ROWS_PER_COMMIT per
 * transaction, then chatd_counters raised so that chatd's next id is past them. Message
 * k goes to conversation k mod n (private conversations first, then groups), so every
 * conversation's messages are spread over the whole id range, as in a busy server. */
#include "bench_history.h"

#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#define ROWS_PER_INSERT 1000
#define ROWS_PER_COMMIT 20000
#define COLUMNS         6 /* id, sender, conversation, ts, flags, body */
#define FIELD_MAX       128

struct row_text {
    char sender[BH_NAME_MAX + 1];
    char conversation[2 * BH_NAME_MAX + 2];
    char body[FIELD_MAX * 2];
    long long id, ts, flags;
    unsigned long sender_len, conversation_len, body_len;
};

static double now_s(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static int fail(MYSQL *db, const char *what)
{
    fprintf(stderr, "chatd-bench-history: %s: %s\n", what, mysql_error(db));
    return -1;
}

static char *read_password(const char *path)
{
    static char line[256];
    FILE *f = fopen(path, "r");
    if (!f || !fgets(line, sizeof(line), f)) {
        fprintf(stderr, "chatd-bench-history: cannot read %s\n", path);
        if (f)
            fclose(f);
        return NULL;
    }
    fclose(f);
    line[strcspn(line, "\r\n")] = '\0';
    return line;
}

static int query_int(MYSQL *db, const char *sql, long long *out)
{
    if (mysql_query(db, sql) != 0)
        return fail(db, sql);
    MYSQL_RES *res = mysql_store_result(db);
    MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
    *out = row && row[0] ? atoll(row[0]) : 0;
    mysql_free_result(res);
    return 0;
}

/* Message k (0-based) as its row. */
static void make_row(const struct bh_options *o, long long k, long long id, long long ts0,
                     struct row_text *r)
{
    int c = (int)(k % o->conversations);
    int privates = o->conversations - o->groups;
    char peer[BH_NAME_MAX + 1], group[BH_NAME_MAX + 1];
    r->id = id;
    r->ts = ts0 + k / 10;
    if (c < privates) {
        bh_peer_name(c, peer);
        /* "<lower>|<higher>" in byte order: "hb_p..." < "hb_reader". */
        snprintf(r->conversation, sizeof(r->conversation), "%s|%s", peer, BH_READER);
        int from_reader = (k / o->conversations) % 2 == 0;
        snprintf(r->sender, sizeof(r->sender), "%s", from_reader ? BH_READER : peer);
        r->flags = 1; /* private */
        snprintf(r->body, sizeof(r->body),
                 "{\"cmd\":\"private_chat_recv\",\"user_from\":\"%s\","
                 "\"text\":\"history benchmark message number %lld\"}",
                 r->sender, k);
    } else {
        bh_group_name(c - privates, group);
        snprintf(r->conversation, sizeof(r->conversation), "#%s", group);
        bh_peer_name((int)(k % 7), peer);
        snprintf(r->sender, sizeof(r->sender), "%s", peer);
        r->flags = 0;
        snprintf(r->body, sizeof(r->body),
                 "{\"cmd\":\"group_chat_recv\",\"group\":\"%s\",\"user_from\":\"%s\","
                 "\"text\":\"history benchmark message number %lld\"}",
                 group, r->sender, k);
    }
    r->sender_len = strlen(r->sender);
    r->conversation_len = strlen(r->conversation);
    r->body_len = strlen(r->body);
}

/* The INSERT for n rows: "(?, ?, ?, ?, ?, ?)" n times. */
static char *insert_sql(size_t n)
{
    static const char head[] =
        "INSERT INTO chatd_messages (id, sender, conversation, ts, flags, body) VALUES ";
    static const char tuple[] = "(?, ?, ?, ?, ?, ?),";
    char *sql = malloc(sizeof(head) + n * (sizeof(tuple) - 1));
    if (!sql)
        return NULL;
    char *p = sql + sprintf(sql, "%s", head);
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s", tuple);
    p[-1] = '\0'; /* the last comma */
    return sql;
}

static void bind_rows(struct row_text *rows, size_t n, MYSQL_BIND *b)
{
    memset(b, 0, sizeof(*b) * n * COLUMNS);
    for (size_t i = 0; i < n; i++, b += COLUMNS) {
        struct row_text *r = &rows[i];
        b[0] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_LONGLONG, .buffer = &r->id};
        b[1] = (MYSQL_BIND){
            .buffer_type = MYSQL_TYPE_STRING, .buffer = r->sender, .length = &r->sender_len};
        b[2] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_STRING,
                            .buffer = r->conversation,
                            .length = &r->conversation_len};
        b[3] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_LONGLONG, .buffer = &r->ts};
        b[4] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_LONGLONG, .buffer = &r->flags};
        b[5] = (MYSQL_BIND){
            .buffer_type = MYSQL_TYPE_STRING, .buffer = r->body, .length = &r->body_len};
    }
}

static int fill_rows(MYSQL *db, const struct bh_options *o, long long first_id)
{
    struct row_text *rows = calloc(ROWS_PER_INSERT, sizeof(*rows));
    MYSQL_BIND *binds = calloc(ROWS_PER_INSERT * COLUMNS, sizeof(*binds));
    char *sql = insert_sql(ROWS_PER_INSERT);
    MYSQL_STMT *stmt = mysql_stmt_init(db);
    int rc = -1;
    if (!rows || !binds || !sql || !stmt) {
        fprintf(stderr, "chatd-bench-history: out of memory\n");
        goto out;
    }
    if (mysql_stmt_prepare(stmt, sql, strlen(sql)) != 0) {
        fprintf(stderr, "chatd-bench-history: prepare: %s\n", mysql_stmt_error(stmt));
        goto out;
    }
    bind_rows(rows, ROWS_PER_INSERT, binds);
    if (mysql_stmt_bind_param(stmt, binds) != 0) {
        fprintf(stderr, "chatd-bench-history: bind: %s\n", mysql_stmt_error(stmt));
        goto out;
    }
    long long ts0 = (long long)time(NULL) * 1000 - o->messages / 10;
    double started = now_s(), reported = started;
    mysql_autocommit(db, 0);
    /* messages is rounded up to whole INSERTs. */
    for (long long k = 0; k < o->messages; k += ROWS_PER_INSERT) {
        for (size_t i = 0; i < ROWS_PER_INSERT; i++)
            make_row(o, k + (long long)i, first_id + k + (long long)i, ts0, &rows[i]);
        if (mysql_stmt_execute(stmt) != 0) {
            fprintf(stderr, "chatd-bench-history: insert: %s\n", mysql_stmt_error(stmt));
            goto out;
        }
        if ((k + ROWS_PER_INSERT) % ROWS_PER_COMMIT == 0 && mysql_commit(db) != 0) {
            fail(db, "commit");
            goto out;
        }
        double t = now_s();
        if (t - reported >= 10) {
            fprintf(stderr, "fill: %lld messages, %.0f/s\n", k + ROWS_PER_INSERT,
                    (double)(k + ROWS_PER_INSERT) / (t - started));
            reported = t;
        }
    }
    rc = mysql_commit(db) == 0 ? 0 : fail(db, "commit");
out:
    if (stmt)
        mysql_stmt_close(stmt);
    free(sql);
    free(binds);
    free(rows);
    return rc;
}

int bh_fill(const struct bh_options *o)
{
    char *password = read_password(o->db_password_file);
    MYSQL *db = password ? mysql_init(NULL) : NULL;
    if (!db)
        return -1;
    if (!mysql_real_connect(db, NULL, o->db_user, password, o->db_name, 0, o->db_socket, 0)) {
        fail(db, "connect");
        mysql_close(db);
        return -1;
    }
    long long first_id = 0, before_rows = 0;
    int rc = query_int(db, "SELECT COALESCE(MAX(id), 0) + 1 FROM chatd_messages", &first_id);
    if (rc == 0)
        rc = query_int(db, "SELECT COUNT(*) FROM chatd_messages", &before_rows);
    double started = now_s();
    if (rc == 0)
        rc = fill_rows(db, o, first_id);
    double took = now_s() - started;
    /* chatd's next id comes after MAX(id) and this counter; raise it as a commit would. */
    if (rc == 0 && mysql_query(db, "UPDATE chatd_counters SET value = GREATEST(value,"
                                   " (SELECT MAX(id) FROM chatd_messages))"
                                   " WHERE name = 'message_id'") != 0)
        rc = fail(db, "raising chatd_counters");
    if (rc == 0)
        rc = mysql_commit(db) == 0 ? 0 : fail(db, "commit");
    long long data = 0, index = 0;
    /* Fresh statistics, for the sizes below. */
    if (rc == 0 && mysql_query(db, "ANALYZE TABLE chatd_messages") != 0)
        rc = fail(db, "ANALYZE TABLE");
    if (rc == 0)
        mysql_free_result(mysql_store_result(db));
    if (rc == 0)
        rc = query_int(db,
                       "SELECT data_length FROM information_schema.tables WHERE"
                       " table_schema = DATABASE() AND table_name = 'chatd_messages'",
                       &data);
    if (rc == 0)
        rc = query_int(db,
                       "SELECT index_length FROM information_schema.tables WHERE"
                       " table_schema = DATABASE() AND table_name = 'chatd_messages'",
                       &index);
    if (rc == 0) {
        long long inserted =
            (o->messages + ROWS_PER_INSERT - 1) / ROWS_PER_INSERT * ROWS_PER_INSERT;
        printf("fill: %lld messages (%lld there before) over %d conversations (%d groups) in "
               "%.1f s, %.0f messages/s\n",
               inserted, before_rows, o->conversations, o->groups, took, (double)inserted / took);
        printf("table chatd_messages: data %.0f MiB, indexes %.0f MiB (InnoDB's estimate)\n",
               (double)data / 1048576, (double)index / 1048576);
    }
    mysql_close(db);
    return rc;
}
