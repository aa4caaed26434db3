/* tls_files.h - certificates for TLS tests, made at run time with the openssl command
 * (no key is ever committed). */
#ifndef CHATD_TEST_TLS_FILES_H
#define CHATD_TEST_TLS_FILES_H

#include <stddef.h>

/* A self-signed EC P-256 certificate for localhost and 127.0.0.1 in DIR/STEM.crt, its
 * key in DIR/STEM.key; their paths in cert and key (cap bytes each). 0, or -1 after
 * printing why. */
int test_tls_make_certificate(const char *dir, const char *stem, char *cert, char *key, size_t cap);

#endif
