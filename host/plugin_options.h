/* plugin_options.h - a plugin's option values: its [plugin.<name>] lines validated
 * against the option table its descriptor declares. */
#ifndef CHATD_HOST_PLUGIN_OPTIONS_H
#define CHATD_HOST_PLUGIN_OPTIONS_H

#include "config.h"

#include <chatd/plugin.h>
#include <stddef.h>
#include <stdint.h>

struct option_value {
    const struct chatd_option *option;
    int64_t number; /* CHATD_OPT_INT and CHATD_OPT_BOOL */
    char *text;     /* CHATD_OPT_STRING */
};

/* Check the plugin's [plugin.<name>] lines of cfg against its option table and store
 * the values (defaults for keys not set). -1 with "file:line: reason" in err. */
int plugin_configure(struct chatd_plugin *p, const struct config *cfg, char *err, size_t errlen);
/* The plugin's value of option `key`, or NULL when its table has no such key. */
struct option_value *plugin_option(struct chatd_plugin *p, const char *key);

#endif
