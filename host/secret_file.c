/* secret_file.c - the first line of a file only its owner (and group) may read. */
#include "secret_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int secret_file_first_line(const char *what, const char *path, char *line, size_t cap, char *err,
                           size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(err, errlen, "%s %s: cannot open: %s", what, path, strerror(errno));
        return -1;
    }
    struct stat st;
    ssize_t n = -1;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        snprintf(err, errlen, "%s %s: not a regular file", what, path);
    else if (st.st_mode & (S_IROTH | S_IWOTH))
        snprintf(err, errlen, "%s %s: other users can read or write it (mode %03o); chmod 600 it",
                 what, path, (unsigned)(st.st_mode & 0777));
    else if ((n = read(fd, line, cap - 1)) < 0)
        snprintf(err, errlen, "%s %s: cannot read: %s", what, path, strerror(errno));
    close(fd);
    if (n < 0)
        return -1;
    line[n] = '\0';
    size_t len = strcspn(line, "\r\n");
    while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
        len--;
    line[len] = '\0';
    return 0;
}
