/* secret_file.h - reading a secret (a token, a password) from the first line of a file
 * that other users cannot read or write. */
#ifndef CHATD_HOST_SECRET_FILE_H
#define CHATD_HOST_SECRET_FILE_H

#include <stddef.h>

/* Read the first line of `path` into line (at most cap - 1 bytes; the line break and
 * trailing blanks are cut). The file must be a regular file with no permission for
 * other users. `what` names it in the reason ("[admin] token_file"). 0, or -1 with the
 * reason in err. */
int secret_file_first_line(const char *what, const char *path, char *line, size_t cap, char *err,
                           size_t errlen);

#endif
