/* commands.h - the table of registered commands, from `cmd` word to plugin handler. */
#ifndef CHATD_HOST_COMMANDS_H
#define CHATD_HOST_COMMANDS_H

#include "server.h"

/* Register cmd for plugin p. CHATD_EEXIST (recording the refusal in p->load_error)
 * when another plugin has the name. */
int commands_add(struct server *srv, struct chatd_plugin *p, const struct chatd_command *cmd);
struct command *commands_find(struct server *srv, const char *name);
/* Forget p's commands, routed or retired. */
void commands_remove_plugin(struct server *srv, struct chatd_plugin *p);
/* Take p's commands out of routing (they answer unknown_cmd, or go to a new instance
 * that registers them) but keep them for p's in-flight requests. */
void commands_retire_plugin(struct server *srv, struct chatd_plugin *p);
/* Put the commands retire took out back into routing (a replacement failed). */
void commands_restore_plugin(struct server *srv, struct chatd_plugin *p);

#endif
