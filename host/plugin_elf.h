/* plugin_elf.h - reading a plugin's descriptor straight from its ELF file, without
 * loading it: no constructor or other plugin code runs. */
#ifndef CHATD_HOST_PLUGIN_ELF_H
#define CHATD_HOST_PLUGIN_ELF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct elf_plugin;

/* Map the file and find its `chatd_plugin` symbol. -1 with the reason in err. */
int elf_plugin_open(const char *path, struct elf_plugin **out, char *err, size_t errlen);
void elf_plugin_close(struct elf_plugin *ep);

/* The descriptor's leading fields (stable across ABI majors, then jansson_major). */
void elf_plugin_versions(const struct elf_plugin *ep, uint32_t *abi_major, uint32_t *abi_minor,
                         uint32_t *size, uint32_t *jansson_major);

/* The symbols the object exports (defined in .dynsym, global or weak, default or
 * protected visibility): calls fn (may be NULL) with each name, returns how many. A
 * well-built plugin exports one, its descriptor. */
size_t elf_plugin_exports(const struct elf_plugin *ep, void (*fn)(const char *name, void *arg),
                          void *arg);

/* Print the ABI 1 descriptor: name, version, description, options, migrations. */
void elf_plugin_print(const struct elf_plugin *ep, FILE *out);

#endif
