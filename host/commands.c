/* commands.c - the command table: a hash from `cmd` word to the plugin that owns it. */
#include "commands.h"

#include "config.h"
#include "plugin_loader.h"
#include "reply_line.h"

#include <stdlib.h>
#include <string.h>

int commands_add(struct server *srv, struct chatd_plugin *p, const struct chatd_command *cmd)
{
    if (!cmd || !cmd->name || !cmd->handler || !config_valid_name(cmd->name, 64))
        return CHATD_EINVAL;
    struct command *existing = commands_find(srv, cmd->name);
    if (existing) {
        if (!p->load_error[0])
            snprintf(p->load_error, sizeof(p->load_error),
                     "command '%s' is registered by both plugin '%s' and plugin '%s': disable "
                     "one of them in [plugins] enable",
                     cmd->name, existing->plugin->name, p->name);
        return CHATD_EEXIST;
    }
    struct command *c = calloc(1, sizeof(*c));
    if (!c || !(c->name = strdup(cmd->name)) || !(c->reply_prefix = reply_line_prefix(c->name))) {
        if (c)
            free(c->name);
        free(c);
        return CHATD_ENOMEM;
    }
    c->spec = *cmd;
    c->plugin = p;
    int rc = fields_copy(&c->fields, cmd->fields);
    if (rc != 0) {
        free(c->name);
        free(c->reply_prefix);
        free(c);
        return rc;
    }
    c->spec.fields = c->fields.fields;
    HASH_ADD_KEYPTR(hh, srv->commands, c->name, strlen(c->name), c);
    return 0;
}

struct command *commands_find(struct server *srv, const char *name)
{
    struct command *c;
    HASH_FIND_STR(srv->commands, name, c);
    return c;
}

static void command_free(struct command *c)
{
    metrics_command_free(c);
    fields_free(&c->fields);
    free(c->name);
    free(c->reply_prefix);
    free(c);
}

void commands_remove_plugin(struct server *srv, struct chatd_plugin *p)
{
    struct command *c, *tmp;
    HASH_ITER (hh, srv->commands, c, tmp) {
        if (c->plugin == p) {
            HASH_DEL(srv->commands, c);
            command_free(c);
        }
    }
    HASH_ITER (hh, p->retired_commands, c, tmp) {
        HASH_DEL(p->retired_commands, c);
        command_free(c);
    }
}

void commands_retire_plugin(struct server *srv, struct chatd_plugin *p)
{
    struct command *c, *tmp;
    HASH_ITER (hh, srv->commands, c, tmp) {
        if (c->plugin == p) {
            HASH_DEL(srv->commands, c);
            HASH_ADD_KEYPTR(hh, p->retired_commands, c->name, strlen(c->name), c);
        }
    }
}

void commands_restore_plugin(struct server *srv, struct chatd_plugin *p)
{
    struct command *c, *tmp;
    HASH_ITER (hh, p->retired_commands, c, tmp) {
        HASH_DEL(p->retired_commands, c);
        HASH_ADD_KEYPTR(hh, srv->commands, c->name, strlen(c->name), c);
    }
}
