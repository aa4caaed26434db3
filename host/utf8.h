/* utf8.h - UTF-8 validation, by the rules JSON text and jansson follow: no overlong
 * forms, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF. */
#ifndef CHATD_UTF8_H
#define CHATD_UTF8_H

#include <stddef.h>

/* Length of the valid multi-byte sequence at s (at most n bytes available), or 0 when
 * s[0] does not start one. */
size_t utf8_sequence_length(const unsigned char *s, size_t n);

/* Whether the n bytes at s are valid UTF-8 (NUL bytes count as valid here). */
int utf8_valid(const char *s, size_t n);

#endif
