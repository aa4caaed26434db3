/* host_self.h - the pseudo-plugin a part of the host (the delivery stream, the commit
 * batches, the cluster's merge) acts as: named "chatd", RUNNING, on the server. The jobs, commands
 * and migrations of that part are tied to it as a plugin's are to the plugin. */
#ifndef CHATD_HOST_SELF_H
#define CHATD_HOST_SELF_H

struct chatd_plugin;
struct server;

/* Fill a zeroed self. -1 out of memory (nothing to free then). */
int host_self_init(struct chatd_plugin *self, struct server *srv);
/* Free what host_self_init allocated. */
void host_self_free(struct chatd_plugin *self);

#endif
