/* web_static.c - the [web] listener's static files (see web_static.h). */
#include "web_static.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "web_http.h"

static const struct {
    const char *ext;
    const char *type;
} types[] = {
    {"html", "text/html; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"json", "application/json"},
    {"webmanifest", "application/manifest+json"},
    {"map", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"ico", "image/x-icon"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"wasm", "application/wasm"},
};

static const char *type_of(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (dot)
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
            if (strcasecmp(dot + 1, types[i].ext) == 0)
                return types[i].type;
    return "application/octet-stream";
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The path part of a request target, percent-decoded into out. -1 when it is not an
 * absolute path, an escape is broken or decodes to a NUL or backslash. */
static int decode_path(const char *target, char *out, size_t cap)
{
    if (target[0] != '/')
        return -1;
    size_t n = 0;
    for (const char *p = target; *p && *p != '?' && *p != '#'; p++) {
        char c = *p;
        if (c == '%') {
            int hi = hex_value(p[1]), lo = hi < 0 ? -1 : hex_value(p[2]);
            if (lo < 0)
                return -1;
            c = (char)(hi * 16 + lo);
            p += 2;
        }
        if (c == '\0' || c == '\\' || n + 1 >= cap)
            return -1;
        out[n++] = c;
    }
    out[n] = '\0';
    return 0;
}

/* Walk `path` (decoded, absolute) from the root's descriptor, one component at a time,
 * never following a symbolic link. Returns the open file or -1. */
static int open_beneath(int dir, char *path)
{
    int fd = dup(dir);
    char *save = NULL;
    char *comp = strtok_r(path, "/", &save);
    while (fd >= 0 && comp) {
        char *next = strtok_r(NULL, "/", &save);
        /* Hidden files, "." and ".." alike. */
        if (comp[0] == '.') {
            close(fd);
            return -1;
        }
        int flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | (next ? O_DIRECTORY : 0);
        int child = openat(fd, comp, flags);
        close(fd);
        fd = child;
        comp = next;
    }
    return fd;
}

int web_static_open(const char *root, const char *path, struct web_file *file)
{
    char decoded[WEB_PATH_MAX + sizeof("index.html")];
    if (decode_path(path, decoded, WEB_PATH_MAX + 1) < 0 || strstr(decoded, "//"))
        return 400;
    size_t n = strlen(decoded);
    if (decoded[n - 1] == '/')
        memcpy(decoded + n, "index.html", sizeof("index.html"));
    const char *slash = strrchr(decoded, '/');
    const char *type = type_of(slash ? slash + 1 : decoded);
    int dir = open(root, O_RDONLY | O_CLOEXEC | O_DIRECTORY);
    if (dir < 0)
        return 404;
    int fd = open_beneath(dir, decoded);
    close(dir);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > WEB_FILE_MAX) {
        if (fd >= 0)
            close(fd);
        return 404;
    }
    file->fd = fd;
    file->size = st.st_size;
    file->type = type;
    snprintf(file->etag, sizeof(file->etag), "\"%llx-%llx\"", (unsigned long long)st.st_size,
             (unsigned long long)st.st_mtim.tv_sec * 1000000000ULL +
                 (unsigned long long)st.st_mtim.tv_nsec);
    struct tm tm;
    gmtime_r(&st.st_mtim.tv_sec, &tm);
    strftime(file->last_modified, sizeof(file->last_modified), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    return 200;
}
