/* token_store.c - the login token file (see token_store.h). */
#include "token_store.h"

#include "state_dir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The folder of the token files into out, created (0700) as needed when `create`. */
static int token_dir(char *out, size_t cap, int create)
{
    if (chat_state_path("tokens", out, cap, create) != 0)
        return -1;
    if (create && mkdir(out, 0700) != 0 && errno != EEXIST)
        return -1;
    return create ? chmod(out, 0700) : 0; /* also a folder made earlier with a wider mode */
}

/* A file name from host, port and user: characters other than letters, digits, '.',
 * '-' and '_' become '_' (names are such already; hosts may hold ':' or '%'). */
static int file_name(const char *host, const char *port, const char *user, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s_%s_%s", host, port, user);
    if (n < 0 || (size_t)n >= cap)
        return -1;
    for (char *p = out; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_", *p))
            *p = '_';
    return 0;
}

static int path_of(const char *host, const char *port, const char *user, char *out, size_t cap,
                   int create)
{
    char name[512];
    if (token_dir(out, cap, create) != 0 || file_name(host, port, user, name, sizeof(name)) != 0)
        return -1;
    size_t used = strlen(out);
    int n = snprintf(out + used, cap - used, "/%s", name);
    return n < 0 || (size_t)n >= cap - used ? -1 : 0;
}

int chat_token_load(const char *host, const char *port, const char *user, char out[CHAT_TOKEN_MAX])
{
    char path[4096];
    if (path_of(host, port, user, path, sizeof(path), 0) != 0)
        return -1;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    ssize_t n = -1;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
        (st.st_mode & 077) == 0)
        n = read(fd, out, CHAT_TOKEN_MAX - 1);
    close(fd);
    if (n <= 0)
        return -1;
    out[n] = '\0';
    out[strcspn(out, "\r\n")] = '\0';
    return out[0] ? 0 : -1;
}

int chat_token_save(const char *host, const char *port, const char *user, const char *token)
{
    char path[4096], tmp[4200];
    if (path_of(host, port, user, path, sizeof(path), 1) != 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
    /* Written whole under another name, then renamed: a reader never sees half a token,
     * and the file is 0600 from its first byte. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    size_t len = strlen(token);
    int ok =
        write(fd, token, len) == (ssize_t)len && write(fd, "\n", 1) == 1 && fchmod(fd, 0600) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        int saved = errno;
        unlink(tmp);
        errno = saved;
        return -1;
    }
    return 0;
}

void chat_token_forget(const char *host, const char *port, const char *user)
{
    char path[4096];
    if (path_of(host, port, user, path, sizeof(path), 0) == 0)
        unlink(path);
}
