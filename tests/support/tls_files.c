/* tls_files.c - see tls_files.h. */
#include "tls_files.h"

#include <stdio.h>
#include <stdlib.h>

int test_tls_make_certificate(const char *dir, const char *stem, char *cert, char *key, size_t cap)
{
    snprintf(cert, cap, "%s/%s.crt", dir, stem);
    snprintf(key, cap, "%s/%s.key", dir, stem);
    char command[4096];
    snprintf(command, sizeof(command),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
             "-subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 "
             "-keyout '%s' -out '%s' 2>/dev/null",
             key, cert);
    if (system(command) != 0) {
        fprintf(stderr, "tls_files: cannot make a certificate with: %s\n", command);
        return -1;
    }
    return 0;
}
