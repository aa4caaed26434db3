/* config_file.h - chat's config file: where to connect, who to log in as, the device
 * name and the TLS options, so they need not be typed every time. The command line
 * overrides it. Format (inih): `key = value` lines, `#` or `;` comments, no sections:
 *
 *     host = chat.example.org
 *     port = 8001
 *     tls = yes
 *     ca_file = /home/alice/chat-ca.pem
 *     user = alice
 *     device = laptop
 *
 * Keys: host, port, user, device, tls, ca_file, insecure, timeout (seconds). */
#ifndef CHAT_CONFIG_FILE_H
#define CHAT_CONFIG_FILE_H

#include <stddef.h>

struct chat_config {
    char host[256];     /* "" when not given */
    char port[16];      /* "" when not given */
    char user[64];      /* "" when not given */
    char device[72];    /* "" when not given */
    char ca_file[4096]; /* "" when not given */
    int tls;            /* -1 when not given, else 0 or 1 */
    int insecure;       /* -1 when not given, else 0 or 1 */
    int timeout_s;      /* 0 when not given */
};

/* The default path into out: $XDG_CONFIG_HOME/chatd/chat.conf, or
 * ~/.config/chatd/chat.conf. -1 when there is no home folder. */
int chat_config_default_path(char *out, size_t cap);

/* Read the file at `path` into `cfg` (which it first clears). A missing file is fine
 * unless `must_exist` (a file named with --config). 0, or -1 with the reason in err,
 * "FILE:LINE: ..." for a bad line. */
int chat_config_load(const char *path, int must_exist, struct chat_config *cfg, char *err,
                     size_t cap);

#endif
