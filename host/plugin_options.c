/* plugin_options.c - a plugin's option values: its [plugin.<name>] lines checked against
 * the option table of its descriptor, with the table's defaults for keys not set. */
#include "plugin_options.h"

#include "plugin_loader.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct option_value *plugin_option(struct chatd_plugin *p, const char *key)
{
    for (size_t i = 0; i < p->n_options; i++)
        if (strcmp(p->options[i].option->key, key) == 0)
            return &p->options[i];
    return NULL;
}

static int set_option(struct option_value *v, const char *text, char *reason, size_t len)
{
    const struct chatd_option *o = v->option;
    int flag;
    switch (o->type) {
    case CHATD_OPT_INT:
        return config_parse_int(text, o->min, o->max, &v->number, reason, len);
    case CHATD_OPT_BOOL:
        if (config_parse_bool(text, &flag, reason, len) < 0)
            return -1;
        v->number = flag;
        return 0;
    case CHATD_OPT_STRING:
        if (o->max > 0 && strlen(text) > (size_t)o->max) {
            snprintf(reason, len, "longer than %lld bytes", (long long)o->max);
            return -1;
        }
        free(v->text);
        v->text = strdup(text);
        return v->text ? 0 : -1;
    }
    return -1;
}

/* "file:line" for a line of the file, "--set" for a value from the command line. */
static const char *where(const char *file, int line, char *buf, size_t len)
{
    if (line > 0)
        snprintf(buf, len, "%s:%d", file, line);
    else
        snprintf(buf, len, "--set");
    return buf;
}

int plugin_configure(struct chatd_plugin *p, const struct config *cfg, char *err, size_t errlen)
{
    const char *file = cfg->path ? cfg->path : "(config)";
    size_t n = 0;
    for (const struct chatd_option *o = p->desc->options; o && o->key; o++)
        n++;
    p->options = calloc(n ? n : 1, sizeof(*p->options));
    if (!p->options) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    p->n_options = n;
    char reason[CONFIG_ERROR_MAX];
    char place[PATH_MAX + 16];
    for (size_t i = 0; i < n; i++) {
        p->options[i].option = &p->desc->options[i];
        const char *def = p->desc->options[i].default_value;
        if (def && set_option(&p->options[i], def, reason, sizeof(reason)) < 0) {
            snprintf(err, errlen, "plugin '%s': default of '%s': %s", p->name,
                     p->options[i].option->key, reason);
            return -1;
        }
    }

    for (size_t i = 0; i < cfg->n_plugin_entries; i++) {
        const struct config_entry *e = &cfg->plugin_entries[i];
        if (strcmp(e->plugin, p->name) != 0)
            continue;
        struct option_value *v = plugin_option(p, e->key);
        if (!v) {
            char known[256] = "";
            for (size_t k = 0; k < n; k++) {
                size_t used = strlen(known);
                snprintf(known + used, sizeof(known) - used, "%s%s", k ? ", " : "",
                         p->options[k].option->key);
            }
            snprintf(err, errlen, "%s: unknown key '%s' in [plugin.%s] (it knows: %s)",
                     where(file, e->line, place, sizeof(place)), e->key, p->name,
                     n ? known : "no keys");
            return -1;
        }
        if (set_option(v, e->value, reason, sizeof(reason)) < 0) {
            snprintf(err, errlen, "%s: [plugin.%s] %s: %s",
                     where(file, e->line, place, sizeof(place)), p->name, e->key, reason);
            return -1;
        }
    }

    for (size_t i = 0; i < n; i++) {
        const struct option_value *v = &p->options[i];
        int set = v->option->default_value != NULL;
        for (size_t k = 0; !set && k < cfg->n_plugin_entries; k++)
            set = strcmp(cfg->plugin_entries[k].plugin, p->name) == 0 &&
                  strcmp(cfg->plugin_entries[k].key, v->option->key) == 0;
        if (!set) {
            snprintf(err, errlen, "%s: [plugin.%s] needs '%s' (%s)", file, p->name, v->option->key,
                     v->option->help ? v->option->help : "no default");
            return -1;
        }
    }
    return 0;
}
