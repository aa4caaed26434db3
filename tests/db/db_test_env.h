/* db_test_env.h - the real MariaDB that scripts/test starts, as seen by Check tests:
 * its socket and folder come from the environment; each test gets a fresh database. */
#ifndef CHATD_DB_TEST_ENV_H
#define CHATD_DB_TEST_ENV_H

#include "chatd_proc.h"
#include "config.h"

/* Fill cfg for the test server (the administrator over the unix socket: root,
 * or the user running the tests when not root) with a new, empty database
 * of its own, created now. Fails the test when CHATD_TEST_DB_SOCKET is not set. */
void db_test_config(struct config_database *cfg);
/* Drop the database made by db_test_config and free cfg's strings. */
void db_test_cleanup(struct config_database *cfg);
/* Start chatd as scripts/run does: the sample config (config/chatd.conf), with only the
 * database (cfg, from db_test_config), a cheap password hash and more_sets (--set
 * values, NULL-terminated; may be NULL) from the command line. chatd_proc_start's
 * result. */
int db_test_start_sample(struct chatd_proc *srv, const struct config_database *cfg,
                         const char *const *more_sets);
/* db_test_start_sample, with a TLS listener too when `tls` (srv->tls_port; more_sets
 * must give tls.certificate and tls.key). */
int db_test_start_sample_tls(struct chatd_proc *srv, const struct config_database *cfg,
                             const char *const *more_sets, int tls);
/* db_test_start_sample_tls with the [web] listener on too (srv->web_port). */
int db_test_start_sample_web(struct chatd_proc *srv, const struct config_database *cfg,
                             const char *const *more_sets, int tls);
/* db_test_start_sample on a given port, e.g. to start chatd again where its clients
 * knew it (same database, a new temporary directory). */
int db_test_start_sample_on(struct chatd_proc *srv, const struct config_database *cfg, int port);
/* db_test_start_sample with more_sets on a given port (0: a free one), e.g. a node of a
 * cluster started again where its clients and its proxy knew it. */
int db_test_start_sample_at(struct chatd_proc *srv, const struct config_database *cfg,
                            const char *const *more_sets, int port);
/* Stop or start the test server (scripts/mariadb with CHATD_TEST_DB_DIR). */
void db_test_server(const char *action);

#endif
