/* fuzz_memfile.h - the fuzz input as a file (an anonymous one in memory, so nothing is
 * left on disk), for code that reads by path: the config reader, the ELF reader. */
#ifndef CHATD_FUZZ_MEMFILE_H
#define CHATD_FUZZ_MEMFILE_H

#include <stddef.h>
#include <stdint.h>

/* A new file holding data[0..size); its path (/proc/self/fd/N) in path. The fd, to
 * close when done. Aborts on failure: the run cannot go on without it. */
int fuzz_memfile(const uint8_t *data, size_t size, char *path, size_t cap);

#endif
