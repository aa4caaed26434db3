/* test_plugin_elf.c - the ELF descriptor reader on hand-made objects: the smallest file
 * it takes for a plugin, and the malformed ones fuzz_elf found (tests/fuzz), each of
 * which must be refused without a read outside the file or a misaligned one. */
#include "plugin_elf.h"

#include "run_suite.h"

#include <chatd/plugin.h>
#include <check.h>
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DESCRIPTOR_ADDRESS 0x400u
#define FILE_SIZE          0x440u

/* The smallest object the reader takes: a header, a section table with .dynsym and its
 * string table naming the descriptor symbol, one loadable segment mapping the whole
 * file at address 0 from program headers at `phoff`, and the descriptor's leading
 * fields (ABI 1.2, jansson 2) at DESCRIPTOR_ADDRESS. */
static void build_object(unsigned char *file, uint64_t phoff)
{
    memset(file, 0, FILE_SIZE);
    Elf64_Ehdr eh = {.e_type = ET_DYN,
                     .e_machine = EM_X86_64,
                     .e_version = EV_CURRENT,
                     .e_phoff = phoff,
                     .e_shoff = sizeof(Elf64_Ehdr),
                     .e_ehsize = sizeof(Elf64_Ehdr),
                     .e_phentsize = sizeof(Elf64_Phdr),
                     .e_phnum = 1,
                     .e_shentsize = sizeof(Elf64_Shdr),
                     .e_shnum = 3};
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    memcpy(file, &eh, sizeof(eh));

    const uint64_t symtab = 256, strtab = symtab + 2 * sizeof(Elf64_Sym);
    static const char names[] = "\0" CHATD_PLUGIN_SYMBOL;
    Elf64_Shdr sh[3] = {
        {0},
        {.sh_type = SHT_DYNSYM,
         .sh_offset = symtab,
         .sh_size = 2 * sizeof(Elf64_Sym),
         .sh_link = 2,
         .sh_entsize = sizeof(Elf64_Sym)},
        {.sh_type = SHT_STRTAB, .sh_offset = strtab, .sh_size = sizeof(names)},
    };
    memcpy(file + eh.e_shoff, sh, sizeof(sh));
    Elf64_Sym sym[2] = {{0},
                        {.st_name = 1,
                         .st_info = ELF64_ST_INFO(STB_GLOBAL, STT_OBJECT),
                         .st_shndx = 1,
                         .st_value = DESCRIPTOR_ADDRESS,
                         .st_size = 16}};
    memcpy(file + symtab, sym, sizeof(sym));
    memcpy(file + strtab, names, sizeof(names));

    Elf64_Phdr ph = {.p_type = PT_LOAD, .p_filesz = FILE_SIZE, .p_memsz = FILE_SIZE};
    memcpy(file + phoff, &ph, sizeof(ph));
    const uint32_t descriptor[4] = {1, 2, 16, 2};
    memcpy(file + DESCRIPTOR_ADDRESS, descriptor, sizeof(descriptor));
}

/* elf_plugin_open on those bytes, from a temporary file. */
static int open_object(const unsigned char *file, struct elf_plugin **ep, char *err, size_t errlen)
{
    char path[] = "/tmp/chatd-test-elf-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, file, FILE_SIZE), FILE_SIZE);
    close(fd);
    int rc = elf_plugin_open(path, ep, err, errlen);
    unlink(path);
    return rc;
}

START_TEST(the_smallest_object_is_read)
{
    static unsigned char file[FILE_SIZE];
    build_object(file, 320);
    struct elf_plugin *ep;
    char err[512] = "";
    ck_assert_msg(open_object(file, &ep, err, sizeof(err)) == 0, "%s", err);
    uint32_t major, minor, size, jansson;
    elf_plugin_versions(ep, &major, &minor, &size, &jansson);
    ck_assert_uint_eq(major, 1);
    ck_assert_uint_eq(minor, 2);
    ck_assert_uint_eq(jansson, 2);
    ck_assert_uint_eq(elf_plugin_exports(ep, NULL, NULL), 1);
    elf_plugin_close(ep);
}
END_TEST

/* fuzz_elf: program headers at an odd offset were read as Elf64_Phdr through a
 * misaligned pointer (undefined behaviour, reported by UBSan). A table that is not
 * aligned for its type is not read. */
START_TEST(misaligned_program_headers_are_not_read)
{
    static unsigned char file[FILE_SIZE];
    build_object(file, 321);
    struct elf_plugin *ep = NULL;
    char err[512] = "";
    ck_assert_int_eq(open_object(file, &ep, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "has no 'chatd_plugin' symbol") != NULL, "%s", err);
    ck_assert_ptr_null(ep);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("plugin_elf");
    TCase *tc = tcase_create("reader");
    tcase_add_test(tc, the_smallest_object_is_read);
    tcase_add_test(tc, misaligned_program_headers_are_not_read);
    suite_add_tcase(s, tc);
    return chatd_run_suite(s);
}
