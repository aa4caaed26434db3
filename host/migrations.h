/* migrations.h - applying each plugin's numbered schema migrations at start. */
#ifndef CHATD_HOST_MIGRATIONS_H
#define CHATD_HOST_MIGRATIONS_H

#include "db.h"

/* Apply the migrations of plugin `p` that the schema table does not record yet, in
 * order, each with its record in one transaction. -1 with a message naming the plugin,
 * the version and MariaDB's error in err. */
int migrations_apply(struct chatd_db *db, struct chatd_plugin *p, char *err, size_t errlen);

#endif
