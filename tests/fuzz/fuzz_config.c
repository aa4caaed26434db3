/* fuzz_config.c - the config reader on any file: it must never crash or leak, and a
 * file it refuses is refused with "path:line: reason" (line 1 or later, at most one
 * past the file's last line), or "path: out of memory". */
#include "config.h"

#include "fuzz_check.h"
#include "fuzz_memfile.h"

#include <ctype.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    int fd = fuzz_memfile(data, size, path, sizeof(path));
    struct config cfg;
    char err[1024] = "";
    if (config_load(&cfg, path, err, sizeof(err)) == 0) {
        config_free(&cfg);
    } else {
        size_t n = strlen(path);
        if (strncmp(err, path, n) != 0 || err[n] != ':')
            fprintf(stderr, "an error without its file: %s\n", err);
        FUZZ_CHECK(strncmp(err, path, n) == 0 && err[n] == ':');
        if (strcmp(err + n, ": out of memory") != 0) {
            long line = isdigit((unsigned char)err[n + 1]) ? strtol(err + n + 1, NULL, 10) : 0;
            size_t lines = 1;
            for (size_t i = 0; i < size; i++)
                lines += data[i] == '\n';
            if (line < 1 || (size_t)line > lines)
                fprintf(stderr, "an error without a line of the file: %s\n", err);
            FUZZ_CHECK(line >= 1 && (size_t)line <= lines);
        }
    }
    close(fd);
    return 0;
}
