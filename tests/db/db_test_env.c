/* db_test_env.c - see db_test_env.h. */
#include "db_test_env.h"

#include "chat_plugin.h"
#include "db.h"

#include <check.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *dup_or_empty(const char *s)
{
    char *copy = strdup(s ? s : "");
    ck_assert_ptr_nonnull(copy);
    return copy;
}

void db_test_config(struct config_database *cfg)
{
    static unsigned counter;
    const char *socket = getenv("CHATD_TEST_DB_SOCKET");
    ck_assert_msg(socket && *socket,
                  "CHATD_TEST_DB_SOCKET is not set: run the suite with scripts/test, which "
                  "starts the test MariaDB");
    memset(cfg, 0, sizeof(*cfg));
    cfg->enable = 1;
    cfg->socket = dup_or_empty(socket);
    cfg->host = dup_or_empty("localhost");
    cfg->port = 3306;
    /* scripts/mariadb's administrator: MariaDB's root for the system's root, else the
     * account of the user running it (unix_socket authentication, no password). */
    const struct passwd *pw = getpwuid(geteuid());
    ck_assert_msg(pw != NULL, "no name for user id %ld", (long)geteuid());
    cfg->user = dup_or_empty(pw->pw_name);
    cfg->password = dup_or_empty("");
    cfg->password_file = dup_or_empty("");
    cfg->name = dup_or_empty("mysql");
    cfg->tls_ca = dup_or_empty("");
    cfg->tls_cert = dup_or_empty("");
    cfg->tls_key = dup_or_empty("");
    cfg->workers = 4;
    cfg->queue_max = 64;
    cfg->job_timeout_ms = 5000;
    cfg->connect_timeout_s = 2;

    char name[64];
    snprintf(name, sizeof(name), "chatd_t_%ld_%u", (long)getpid(), counter++);
    struct chatd_db db = {0};
    char err[512];
    ck_assert_msg(db_open(&db, cfg, "", err, sizeof(err)) == 0, "%s", err);
    char sql[128];
    /* The name is made here from a pid and a counter, never from outside input. */
    snprintf(sql, sizeof(sql), "CREATE DATABASE `%s` CHARACTER SET utf8mb4", name);
    ck_assert_int_eq(db_simple(&db, sql), 0);
    db_close(&db);
    free(cfg->name);
    cfg->name = dup_or_empty(name);
}

void db_test_cleanup(struct config_database *cfg)
{
    struct chatd_db db = {0};
    char err[512];
    if (db_open(&db, cfg, "", err, sizeof(err)) == 0) {
        char sql[128];
        snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS `%s`", cfg->name);
        db_simple(&db, sql);
        db_close(&db);
    }
    char **strings[] = {&cfg->socket,   &cfg->host,          &cfg->user,
                        &cfg->password, &cfg->password_file, &cfg->name,
                        &cfg->tls_ca,   &cfg->tls_cert,      &cfg->tls_key};
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
        free(*strings[i]);
}

void db_test_server(const char *action)
{
    const char *dir = getenv("CHATD_TEST_DB_DIR");
    ck_assert_msg(dir && *dir, "CHATD_TEST_DB_DIR is not set: run the suite with scripts/test");
    char command[1024];
    snprintf(command, sizeof(command), "%s/scripts/mariadb %s '%s' >/dev/null", CHATD_SOURCE_DIR,
             action, dir);
    ck_assert_int_eq(system(command), 0);
}

int db_test_start_sample(struct chatd_proc *srv, const struct config_database *cfg,
                         const char *const *more_sets)
{
    return db_test_start_sample_tls(srv, cfg, more_sets, 0);
}

/* db_test_start_sample_tls on `port` (0: a free one). */
static int start_sample(struct chatd_proc *srv, const struct config_database *cfg,
                        const char *const *more_sets, int tls, int port, int web)
{
    char socket[4200], name[200], user[200];
    snprintf(socket, sizeof(socket), "database.socket=%s", cfg->socket);
    snprintf(user, sizeof(user), "database.user=%s", cfg->user);
    snprintf(name, sizeof(name), "database.name=%s", cfg->name);
    char opslimit[CHAT_PLUGIN_TEXT_MAX], memlimit[CHAT_PLUGIN_TEXT_MAX];
    const char *sets[32] = {
        socket,
        name,
        user,
        "database.password_file=",
        chat_plugin_set(opslimit, "password_opslimit", "1"),
        chat_plugin_set(memlimit, "password_memlimit_kib", "8"),
    };
    size_t n = 6;
    for (size_t i = 0; more_sets && more_sets[i] && n < 31; i++)
        sets[n++] = more_sets[i];
    struct chatd_proc_options opts = {.config_path = CHATD_SOURCE_DIR "/config/chatd.conf",
                                      .sets = sets,
                                      .tls = tls,
                                      .port = port,
                                      .web = web};
    return chatd_proc_start(srv, &opts);
}

int db_test_start_sample_tls(struct chatd_proc *srv, const struct config_database *cfg,
                             const char *const *more_sets, int tls)
{
    return start_sample(srv, cfg, more_sets, tls, 0, 0);
}

int db_test_start_sample_web(struct chatd_proc *srv, const struct config_database *cfg,
                             const char *const *more_sets, int tls)
{
    return start_sample(srv, cfg, more_sets, tls, 0, 1);
}

int db_test_start_sample_on(struct chatd_proc *srv, const struct config_database *cfg, int port)
{
    return start_sample(srv, cfg, NULL, 0, port, 0);
}

int db_test_start_sample_at(struct chatd_proc *srv, const struct config_database *cfg,
                            const char *const *more_sets, int port)
{
    return start_sample(srv, cfg, more_sets, 0, port, 0);
}
