/* plugin_elf.c - a small reader for 64-bit little-endian ELF shared objects: finds the
 * `chatd_plugin` symbol in .dynsym, follows the relative relocations that fill its
 * pointer fields, and reads the strings and tables they point at - all from the file,
 * so a plugin can be checked before (or without) any of its code runs. */
#include "plugin_elf.h"

#include <chatd/plugin.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct elf_plugin {
    const unsigned char *base;
    size_t size;
    const Elf64_Ehdr *eh;
    uint64_t descriptor; /* virtual address of the symbol */
};

/* Bounds-checked pointer into the mapped file: NULL unless the len bytes at offset lie
 * inside it, at a multiple of `align`, the alignment of the type the caller reads them
 * as (the map starts on a page, so the offset's alignment is the address's). A real
 * object aligns its tables and fields; a misaligned read would be undefined. */
static const void *at(const struct elf_plugin *ep, uint64_t offset, uint64_t len, uint64_t align)
{
    if (offset > ep->size || len > ep->size - offset || offset % align != 0)
        return NULL;
    return ep->base + offset;
}

static const Elf64_Shdr *section(const struct elf_plugin *ep, size_t index)
{
    if (index >= ep->eh->e_shnum)
        return NULL;
    return at(ep, ep->eh->e_shoff + (uint64_t)index * ep->eh->e_shentsize, sizeof(Elf64_Shdr),
              _Alignof(Elf64_Shdr));
}

/* The file offset of a virtual address, through the loadable segments. */
static const void *at_address(const struct elf_plugin *ep, uint64_t vaddr, uint64_t len,
                              uint64_t align)
{
    for (size_t i = 0; i < ep->eh->e_phnum; i++) {
        const Elf64_Phdr *ph = at(ep, ep->eh->e_phoff + (uint64_t)i * ep->eh->e_phentsize,
                                  sizeof(Elf64_Phdr), _Alignof(Elf64_Phdr));
        if (ph && ph->p_type == PT_LOAD && vaddr >= ph->p_vaddr &&
            vaddr + len <= ph->p_vaddr + ph->p_filesz)
            return at(ep, ph->p_offset + (vaddr - ph->p_vaddr), len, align);
    }
    return NULL;
}

/* The value a pointer field at `vaddr` gets when loaded: a relative relocation's
 * addend (position-independent code), else what the file holds. */
static uint64_t pointer_at(const struct elf_plugin *ep, uint64_t vaddr)
{
    for (size_t i = 0; i < ep->eh->e_shnum; i++) {
        const Elf64_Shdr *sh = section(ep, i);
        if (!sh || sh->sh_type != SHT_RELA || sh->sh_entsize != sizeof(Elf64_Rela))
            continue;
        const Elf64_Rela *rela = at(ep, sh->sh_offset, sh->sh_size, _Alignof(Elf64_Rela));
        for (size_t k = 0; rela && k < sh->sh_size / sizeof(Elf64_Rela); k++) {
            uint32_t type = ELF64_R_TYPE(rela[k].r_info);
            if (rela[k].r_offset == vaddr && (type == R_X86_64_RELATIVE || type == 1027))
                return (uint64_t)rela[k].r_addend; /* 1027: R_AARCH64_RELATIVE */
        }
    }
    const uint64_t *raw = at_address(ep, vaddr, sizeof(uint64_t), _Alignof(uint64_t));
    return raw ? *raw : 0;
}

static const char *string_at(const struct elf_plugin *ep, uint64_t vaddr)
{
    if (vaddr == 0)
        return NULL;
    const char *s = at_address(ep, vaddr, 1, 1);
    if (!s)
        return NULL;
    /* It must end inside the file. */
    size_t room = ep->size - (size_t)((const unsigned char *)s - ep->base);
    return memchr(s, '\0', room) ? s : NULL;
}

static uint32_t u32_at(const struct elf_plugin *ep, uint64_t vaddr)
{
    const uint32_t *v = at_address(ep, vaddr, sizeof(uint32_t), _Alignof(uint32_t));
    return v ? *v : 0;
}

static int64_t i64_at(const struct elf_plugin *ep, uint64_t vaddr)
{
    const int64_t *v = at_address(ep, vaddr, sizeof(int64_t), _Alignof(int64_t));
    return v ? *v : 0;
}

/* Call fn for every symbol of .dynsym that the object defines, until fn returns
 * non-zero (which is then returned). -1 when the symbol table cannot be read. */
typedef int (*symbol_fn)(const Elf64_Sym *sym, const char *name, void *arg);

static int each_defined_symbol(const struct elf_plugin *ep, symbol_fn fn, void *arg)
{
    for (size_t i = 0; i < ep->eh->e_shnum; i++) {
        const Elf64_Shdr *sh = section(ep, i);
        if (!sh || sh->sh_type != SHT_DYNSYM || sh->sh_entsize != sizeof(Elf64_Sym))
            continue;
        const Elf64_Shdr *strtab = section(ep, sh->sh_link);
        const Elf64_Sym *syms = at(ep, sh->sh_offset, sh->sh_size, _Alignof(Elf64_Sym));
        const char *names = strtab ? at(ep, strtab->sh_offset, strtab->sh_size, 1) : NULL;
        if (!syms || !names)
            return -1;
        for (size_t k = 0; k < sh->sh_size / sizeof(Elf64_Sym); k++) {
            if (syms[k].st_name >= strtab->sh_size || syms[k].st_shndx == SHN_UNDEF)
                continue;
            const char *name = names + syms[k].st_name;
            if (strnlen(name, strtab->sh_size - syms[k].st_name) ==
                strtab->sh_size - syms[k].st_name)
                continue; /* not terminated inside the table */
            int rc = fn(&syms[k], name, arg);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

static int is_descriptor(const Elf64_Sym *sym, const char *name, void *arg)
{
    struct elf_plugin *ep = arg;
    if (strcmp(name, CHATD_PLUGIN_SYMBOL) != 0 ||
        !at_address(ep, sym->st_value, 4 * sizeof(uint32_t), _Alignof(uint32_t)))
        return 0;
    ep->descriptor = sym->st_value;
    return 1;
}

static int find_symbol(struct elf_plugin *ep)
{
    return each_defined_symbol(ep, is_descriptor, ep) == 1 ? 0 : -1;
}

struct export_walk {
    void (*fn)(const char *name, void *arg);
    void *arg;
    size_t count;
};

static int count_export(const Elf64_Sym *sym, const char *name, void *arg)
{
    struct export_walk *walk = arg;
    unsigned bind = ELF64_ST_BIND(sym->st_info);
    unsigned visibility = ELF64_ST_VISIBILITY(sym->st_other);
    if ((bind == STB_GLOBAL || bind == STB_WEAK || bind == STB_GNU_UNIQUE) &&
        (visibility == STV_DEFAULT || visibility == STV_PROTECTED)) {
        walk->count++;
        if (walk->fn)
            walk->fn(name, walk->arg);
    }
    return 0;
}

size_t elf_plugin_exports(const struct elf_plugin *ep, void (*fn)(const char *name, void *arg),
                          void *arg)
{
    struct export_walk walk = {.fn = fn, .arg = arg};
    each_defined_symbol(ep, count_export, &walk);
    return walk.count;
}

int elf_plugin_open(const char *path, struct elf_plugin **out, char *err, size_t errlen)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        snprintf(err, errlen, "cannot load plugin %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    void *map =
        st.st_size > 0 ? mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    close(fd);
    if (map == MAP_FAILED) {
        snprintf(err, errlen, "cannot load plugin %s: cannot map it", path);
        return -1;
    }
    struct elf_plugin *ep = calloc(1, sizeof(*ep));
    if (!ep) {
        munmap(map, (size_t)st.st_size);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    ep->base = map;
    ep->size = (size_t)st.st_size;
    ep->eh = at(ep, 0, sizeof(Elf64_Ehdr), _Alignof(Elf64_Ehdr));
    if (!ep->eh || memcmp(ep->eh->e_ident, ELFMAG, SELFMAG) != 0 ||
        ep->eh->e_ident[EI_CLASS] != ELFCLASS64 || ep->eh->e_ident[EI_DATA] != ELFDATA2LSB ||
        ep->eh->e_type != ET_DYN || ep->eh->e_shentsize != sizeof(Elf64_Shdr) ||
        ep->eh->e_phentsize != sizeof(Elf64_Phdr)) {
        snprintf(err, errlen, "%s is not a 64-bit little-endian ELF shared object", path);
        elf_plugin_close(ep);
        return -1;
    }
    if (find_symbol(ep) < 0) {
        snprintf(err, errlen,
                 "%s has no '%s' symbol: it is not a chatd plugin, or it was built without "
                 "CHATD_PLUGIN_DEFINE",
                 path, CHATD_PLUGIN_SYMBOL);
        elf_plugin_close(ep);
        return -1;
    }
    *out = ep;
    return 0;
}

void elf_plugin_close(struct elf_plugin *ep)
{
    if (!ep)
        return;
    munmap((void *)(uintptr_t)ep->base, ep->size);
    free(ep);
}

void elf_plugin_versions(const struct elf_plugin *ep, uint32_t *abi_major, uint32_t *abi_minor,
                         uint32_t *size, uint32_t *jansson_major)
{
    *abi_major = u32_at(ep, ep->descriptor + offsetof(struct chatd_plugin_descriptor, abi_major));
    *abi_minor = u32_at(ep, ep->descriptor + offsetof(struct chatd_plugin_descriptor, abi_minor));
    *size = u32_at(ep, ep->descriptor + offsetof(struct chatd_plugin_descriptor, size));
    *jansson_major =
        u32_at(ep, ep->descriptor + offsetof(struct chatd_plugin_descriptor, jansson_major));
}

static const char *field_string(const struct elf_plugin *ep, size_t offset)
{
    const char *s = string_at(ep, pointer_at(ep, ep->descriptor + offset));
    return s ? s : "(none)";
}

static const char *type_name(uint32_t type)
{
    switch (type) {
    case CHATD_OPT_BOOL:
        return "bool";
    case CHATD_OPT_INT:
        return "int";
    case CHATD_OPT_STRING:
        return "string";
    }
    return "?";
}

void elf_plugin_print(const struct elf_plugin *ep, FILE *out)
{
    typedef struct chatd_plugin_descriptor D;
    typedef struct chatd_option O;
    typedef struct chatd_migration M;
    fprintf(out, "name:          %s\nversion:       %s\ndescription:   %s\n",
            field_string(ep, offsetof(D, name)), field_string(ep, offsetof(D, version)),
            field_string(ep, offsetof(D, description)));
    uint32_t major, minor, size, jansson;
    elf_plugin_versions(ep, &major, &minor, &size, &jansson);
    fprintf(out, "jansson:       %u.x\n", jansson);

    uint64_t migrations = pointer_at(ep, ep->descriptor + offsetof(D, migrations));
    size_t n_migrations = 0;
    while (migrations && n_migrations < 10000 &&
           pointer_at(ep, migrations + n_migrations * sizeof(M) + offsetof(M, sql)))
        n_migrations++;
    fprintf(out, "migrations:    %zu\n", n_migrations);

    uint64_t options = pointer_at(ep, ep->descriptor + offsetof(D, options));
    uint64_t key = options ? pointer_at(ep, options + offsetof(O, key)) : 0;
    fprintf(out, "options:%s\n", key ? "" : "       (none)");
    for (size_t i = 0; key && i < 1000; i++) {
        uint64_t o = options + i * sizeof(O);
        if (!(key = pointer_at(ep, o + offsetof(O, key))))
            break;
        uint32_t type = u32_at(ep, o + offsetof(O, type));
        const char *def = string_at(ep, pointer_at(ep, o + offsetof(O, default_value)));
        const char *help = string_at(ep, pointer_at(ep, o + offsetof(O, help)));
        const char *name = string_at(ep, key);
        fprintf(out, "  %-22s %-6s default %s", name ? name : "?", type_name(type),
                def ? def : "(required)");
        if (type == CHATD_OPT_INT)
            fprintf(out, ", range [%lld, %lld]", (long long)i64_at(ep, o + offsetof(O, min)),
                    (long long)i64_at(ep, o + offsetof(O, max)));
        fprintf(out, "%s%s\n", help ? " - " : "", help ? help : "");
    }
}
