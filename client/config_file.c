/* config_file.c - reading chat's config file with inih (see config_file.h). */
#include "config_file.h"

#include "device.h"

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct parse {
    FILE *f;
    struct chat_config *cfg;
    const char *path;
    char *err;
    size_t cap;
    int line; /* the line inih read last */
};

/* inih's reader: one line, counted, so errors can name it. */
static char *read_line(char *str, int num, void *stream)
{
    struct parse *p = stream;
    char *got = fgets(str, num, p->f);
    if (got)
        p->line++;
    return got;
}

int chat_config_default_path(char *out, size_t cap)
{
    const char *config = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    int n;
    if (config && config[0] == '/')
        n = snprintf(out, cap, "%s/chatd/chat.conf", config);
    else if (home && home[0] == '/')
        n = snprintf(out, cap, "%s/.config/chatd/chat.conf", home);
    else
        return -1;
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static int parse_bool(const char *value, int *out)
{
    if (strcmp(value, "yes") == 0 || strcmp(value, "true") == 0 || strcmp(value, "1") == 0)
        *out = 1;
    else if (strcmp(value, "no") == 0 || strcmp(value, "false") == 0 || strcmp(value, "0") == 0)
        *out = 0;
    else
        return -1;
    return 0;
}

/* Copy value into a field of `cap` bytes; -1 when it does not fit or is empty. */
static int set_text(char *field, size_t cap, const char *value)
{
    size_t n = strlen(value);
    if (n == 0 || n >= cap)
        return -1;
    memcpy(field, value, n + 1);
    return 0;
}

__attribute__((format(printf, 2, 3))) static int bad(struct parse *p, const char *fmt, ...)
{
    char why[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    snprintf(p->err, p->cap, "%s:%d: %s", p->path, p->line, why);
    return 0;
}

static int on_entry(void *user, const char *section, const char *name, const char *value)
{
    struct parse *p = user;
    struct chat_config *c = p->cfg;
    if (section[0])
        return bad(p, "sections are not used: [%s]", section);
    if (strcmp(name, "host") == 0) {
        if (set_text(c->host, sizeof(c->host), value) != 0)
            return bad(p, "host wants a name or an address");
    } else if (strcmp(name, "port") == 0) {
        char *end;
        long v = strtol(value, &end, 10);
        if (!*value || *end || v < 1 || v > 65535)
            return bad(p, "port wants a number from 1 to 65535, not '%s'", value);
        snprintf(c->port, sizeof(c->port), "%ld", v);
    } else if (strcmp(name, "user") == 0) {
        if (set_text(c->user, sizeof(c->user), value) != 0)
            return bad(p, "user wants a name of at most 63 bytes");
    } else if (strcmp(name, "device") == 0) {
        if (!chat_device_valid(value))
            return bad(p, "device wants 1 to 64 of A-Z a-z 0-9 _ . -, not '%s'", value);
        snprintf(c->device, sizeof(c->device), "%s", value);
    } else if (strcmp(name, "ca_file") == 0) {
        if (set_text(c->ca_file, sizeof(c->ca_file), value) != 0)
            return bad(p, "ca_file wants a path");
    } else if (strcmp(name, "tls") == 0 || strcmp(name, "insecure") == 0) {
        if (parse_bool(value, strcmp(name, "tls") == 0 ? &c->tls : &c->insecure) != 0)
            return bad(p, "wants yes or no, not '%s'", value);
    } else if (strcmp(name, "timeout") == 0) {
        char *end;
        long v = strtol(value, &end, 10);
        if (!*value || *end || v < 1 || v > 3600)
            return bad(p, "timeout wants whole seconds from 1 to 3600, not '%s'", value);
        c->timeout_s = (int)v;
    } else {
        return bad(p, "unknown key '%s'", name);
    }
    return 1;
}

int chat_config_load(const char *path, int must_exist, struct chat_config *cfg, char *err,
                     size_t cap)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->tls = cfg->insecure = -1;
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT && !must_exist)
            return 0;
        snprintf(err, cap, "cannot read the config file %s: %s", path, strerror(errno));
        return -1;
    }
    struct parse p = {.f = f, .cfg = cfg, .path = path, .err = err, .cap = cap};
    err[0] = '\0';
    int rc = ini_parse_stream(read_line, &p, on_entry, &p);
    fclose(f);
    if (rc == 0)
        return 0;
    if (!err[0]) /* a line inih itself could not read */
        snprintf(err, cap, "%s:%d: not a 'key = value' line", path, rc);
    return -1;
}
