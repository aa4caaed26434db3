/* fuzz_elf.c - the ELF descriptor reader on any file: opening it, reading the
 * descriptor's versions, listing the exports and printing the descriptor (what chatd
 * does before it would dlopen a plugin, and what --check-plugin prints) must never
 * read outside the file or crash, whatever the headers, tables and offsets say. */
#include "plugin_elf.h"

#include "fuzz_check.h"
#include "fuzz_memfile.h"

#include <string.h>
#include <unistd.h>

static void count_export(const char *name, void *arg)
{
    /* Touch every byte of the name: it must be a terminated string inside the file. */
    *(size_t *)arg += strlen(name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *sink;
    if (!sink)
        sink = fopen("/dev/null", "w");
    FUZZ_CHECK(sink != NULL);
    char path[64];
    int fd = fuzz_memfile(data, size, path, sizeof(path));
    struct elf_plugin *ep;
    char err[512];
    if (elf_plugin_open(path, &ep, err, sizeof(err)) == 0) {
        uint32_t major, minor, desc_size, jansson_major;
        elf_plugin_versions(ep, &major, &minor, &desc_size, &jansson_major);
        size_t name_bytes = 0;
        size_t n = elf_plugin_exports(ep, count_export, &name_bytes);
        FUZZ_CHECK(n == elf_plugin_exports(ep, NULL, NULL));
        elf_plugin_print(ep, sink);
        elf_plugin_close(ep);
    }
    close(fd);
    return 0;
}
