/* migrations.c - per-plugin schema versions in one table, applied in order at start.
 * Note that MariaDB commits DDL implicitly, so a migration should be one statement:
 * then it and its record either both happen or, on a failed statement, neither does. */
#include "migrations.h"

#include "log.h"
#include "plugin_loader.h"
#include "table_names.h"

#include <mysql.h>
#include <stdio.h>
#include <string.h>

static const char create_schema_table[] =
    "CREATE TABLE IF NOT EXISTS chatd_schema ("
    " plugin VARCHAR(64) NOT NULL PRIMARY KEY,"
    " version INT UNSIGNED NOT NULL,"
    " applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin";

/* The table-name rule (table_names.h) for plugins that need ABI 1.2 or later, on every
 * migration before any runs, so a bad one cannot leave the schema half changed. */
static int check_table_names(const struct chatd_plugin *p, const struct chatd_migration *m,
                             char *err, size_t errlen)
{
    if (p->desc->abi_minor < 2)
        return 0;
    for (; m->sql; m++) {
        char table[128];
        if (table_names_check(m->sql, p->name, table, sizeof(table)) < 0) {
            snprintf(err, errlen,
                     "migration %u (%s) touches table '%s', which is not the plugin's: the tables "
                     "of plugin '%s' are named '%s' or '%s_...'",
                     m->version, m->description ? m->description : "no description", table, p->name,
                     p->name, p->name);
            return -1;
        }
    }
    return 0;
}

static int apply_locked(struct chatd_db *db, struct chatd_plugin *p, char *err, size_t errlen)
{
    const struct chatd_migration *m = p->desc->migrations;
    if (db_simple(db, create_schema_table) != 0) {
        snprintf(err, errlen, "cannot create the chatd_schema table: %s", db->last_error);
        return -1;
    }
    struct chatd_value name = {.type = CHATD_PARAM_TEXT, .s = p->name, .len = strlen(p->name)};
    int64_t current = 0;
    if (db_query(db, "SELECT version FROM chatd_schema WHERE plugin = ?", &name, 1, db_read_int64,
                 &current) != 0) {
        snprintf(err, errlen, "cannot read its schema version: %s", db->last_error);
        return -1;
    }
    if (check_table_names(p, m, err, errlen) < 0)
        return -1;
    uint32_t expected = 1;
    for (; m->sql; m++, expected++) {
        if (m->version != expected) {
            snprintf(err, errlen,
                     "it declares migration %u where %u was expected: versions must start at 1 "
                     "and go up by 1",
                     m->version, expected);
            return -1;
        }
        if ((int64_t)m->version <= current)
            continue;
        struct chatd_value record[2] = {name, {.type = CHATD_PARAM_INT64, .i = m->version}};
        if (db_simple(db, "START TRANSACTION") != 0 || db_simple(db, m->sql) != 0 ||
            db_exec(db,
                    "INSERT INTO chatd_schema (plugin, version) VALUES (?, ?) "
                    "ON DUPLICATE KEY UPDATE version = VALUES(version)",
                    record, 2, NULL, NULL) != 0) {
            snprintf(err, errlen, "migration %u (%s) failed: %s (MariaDB error %u)", m->version,
                     m->description ? m->description : "no description", db->last_error,
                     db->last_errno);
            db_simple(db, "ROLLBACK");
            return -1;
        }
        if (db_simple(db, "COMMIT") != 0) {
            snprintf(err, errlen, "migration %u: commit failed: %s", m->version, db->last_error);
            return -1;
        }
        log_info("plugin %s: applied migration %u (%s)", p->name, m->version,
                 m->description ? m->description : "");
    }
    if (current > (int64_t)expected - 1) {
        snprintf(err, errlen,
                 "the database is at its schema version %lld, newer than the %u this build "
                 "knows: run the plugin version that matches the database",
                 (long long)current, expected - 1);
        return -1;
    }
    return 0;
}

int migrations_apply(struct chatd_db *db, struct chatd_plugin *p, char *err, size_t errlen)
{
    if (!p->desc->migrations || !p->desc->migrations->sql)
        return 0;
    /* Two chatd starting at once against one database take turns. */
    int64_t locked = 0;
    if (db_query(db, "SELECT GET_LOCK('chatd_migrations', 60)", NULL, 0, db_read_int64, &locked) !=
            0 ||
        locked != 1) {
        snprintf(err, errlen, "cannot take the migration lock: %s",
                 db->last_error[0] ? db->last_error : "another chatd holds it");
        return -1;
    }
    int rc = apply_locked(db, p, err, errlen);
    db_simple(db, "DO RELEASE_LOCK('chatd_migrations')");
    return rc;
}
