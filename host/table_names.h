/* table_names.h - the table-name rule of ABI 1.2: every table a plugin's migration
 * creates, alters, drops, renames, truncates, indexes or writes is named after the
 * plugin (`<name>` or `<name>_...`), so two plugins never share a table by accident. */
#ifndef CHATD_HOST_TABLE_NAMES_H
#define CHATD_HOST_TABLE_NAMES_H

#include <stddef.h>

/* 0 when every table `sql` changes belongs to plugin `plugin`; -1 with the first one
 * that does not in `bad` (a qualified name such as other_db.t never belongs). Tables
 * only read (SELECT, REFERENCES) are not looked at. */
int table_names_check(const char *sql, const char *plugin, char *bad, size_t badlen);

#endif
