/* utf8.h - UTF-8 validation, by the rules JSON text and jansson follow: no overlong
 * forms, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF. */
#ifndef CHATD_UTF8_H
#define CHATD_UTF8_H

#include <stddef.h>

/* Whether the n bytes at s are valid UTF-8 (NUL bytes count as valid here). */
int utf8_valid(const char *s, size_t n);

#endif
