/* db_test_env.h - the real MariaDB that scripts/test starts, as seen by Check tests:
 * its socket and folder come from the environment; each test gets a fresh database. */
#ifndef CHATD_DB_TEST_ENV_H
#define CHATD_DB_TEST_ENV_H

#include "config.h"

/* Fill cfg for the test server (root over the unix socket) with a new, empty database
 * of its own, created now. Fails the test when CHATD_TEST_DB_SOCKET is not set. */
void db_test_config(struct config_database *cfg);
/* Drop the database made by db_test_config and free cfg's strings. */
void db_test_cleanup(struct config_database *cfg);
/* Stop or start the test server (scripts/mariadb with CHATD_TEST_DB_DIR). */
void db_test_server(const char *action);

#endif
