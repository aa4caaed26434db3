/* device.c - the installation's device name (see device.h). */
#include "device.h"

#include "state_dir.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

int chat_device_valid(const char *name)
{
    size_t n = strlen(name);
    return n >= 1 && n <= CHAT_DEVICE_MAX &&
           strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

/* The stored name, if there is a valid one. */
static int load(const char *path, char *out, size_t cap)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, out, cap - 1);
    close(fd);
    if (n <= 0)
        return -1;
    out[n] = '\0';
    out[strcspn(out, "\r\n")] = '\0';
    return chat_device_valid(out) ? 0 : -1;
}

/* A new name, written whole under another name and renamed, so two first runs at once
 * both end up with the one that was renamed last (the second load below). */
static int create(const char *path, char *out, size_t cap)
{
    unsigned char bytes[6];
    if (getrandom(bytes, sizeof(bytes), 0) != (ssize_t)sizeof(bytes))
        return -1;
    snprintf(out, cap, "chat-%02x%02x%02x%02x%02x%02x", bytes[0], bytes[1], bytes[2], bytes[3],
             bytes[4], bytes[5]);
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    size_t len = strlen(out);
    int ok = write(fd, out, len) == (ssize_t)len && write(fd, "\n", 1) == 1;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

void chat_device_name(char *out, size_t cap)
{
    char path[4096];
    if (chat_state_path("device", path, sizeof(path), 0) == 0 && load(path, out, cap) == 0)
        return;
    if (chat_state_path("device", path, sizeof(path), 1) == 0 && create(path, out, cap) == 0 &&
        load(path, out, cap) == 0)
        return;
    snprintf(out, cap, "default");
}
