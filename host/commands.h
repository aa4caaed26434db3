/* commands.h - the table of registered commands, from `cmd` word to plugin handler. */
#ifndef CHATD_HOST_COMMANDS_H
#define CHATD_HOST_COMMANDS_H

#include "server.h"

/* Register cmd for plugin p. CHATD_EEXIST (recording the refusal in p->load_error)
 * when another plugin has the name. */
int commands_add(struct server *srv, struct chatd_plugin *p, const struct chatd_command *cmd);
struct command *commands_find(struct server *srv, const char *name);
void commands_remove_plugin(struct server *srv, struct chatd_plugin *p);

#endif
