/* history.h - one page of a conversation's history (ABI 1.4 history_read): the
 * messages kept in chatd_messages under a conversation key, read newest first through
 * the (conversation, id) key and handed back oldest first. Loop thread. */
#ifndef CHATD_HOST_HISTORY_H
#define CHATD_HOST_HISTORY_H

#include <chatd/plugin.h>

/* The host table's history_read (see chatd/plugin.h). */
int history_read(struct chatd_plugin *self, struct chatd_request *req,
                 const struct chatd_history_query *query, chatd_history_done_fn done, void *arg);

#endif
