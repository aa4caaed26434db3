/* fuzz_memfile.c - see fuzz_memfile.h. */
#define _GNU_SOURCE /* memfd_create */
#include "fuzz_memfile.h"

#include "fuzz_check.h"

#include <sys/mman.h>
#include <unistd.h>

int fuzz_memfile(const uint8_t *data, size_t size, char *path, size_t cap)
{
    int fd = memfd_create("chatd-fuzz", MFD_CLOEXEC);
    FUZZ_CHECK(fd >= 0);
    for (size_t done = 0; done < size;) {
        ssize_t n = write(fd, data + done, size - done);
        FUZZ_CHECK(n > 0);
        done += (size_t)n;
    }
    int n = snprintf(path, cap, "/proc/self/fd/%d", fd);
    FUZZ_CHECK(n > 0 && (size_t)n < cap);
    return fd;
}
