/* web_static.h - finding a static file of the [web] listener under its root: the path
 * checked and each component opened with O_NOFOLLOW, so nothing outside the root and no
 * symbolic link is served; its type, size and validators. Loop thread only. */
#ifndef CHATD_HOST_WEB_STATIC_H
#define CHATD_HOST_WEB_STATIC_H

#include <stdint.h>
#include <sys/types.h>

/* The largest file served. */
#define WEB_FILE_MAX (4 << 20)

struct web_file {
    int fd; /* open for reading; the caller closes it (or hands it to an evbuffer) */
    off_t size;
    const char *type;       /* Content-Type */
    char etag[48];          /* "\"size-mtime\"" */
    char last_modified[40]; /* IMF-fixdate */
};

/* Open the file `path` (a request target: absolute, percent-encoded, a query after `?`
 * ignored; a trailing `/` means index.html) under `root`. Returns 200 with *file filled,
 * 400 for a path that is not well formed, or 404 (no such regular file, a component
 * starting with a dot, a symbolic link, too large). */
int web_static_open(const char *root, const char *path, struct web_file *file);

#endif
