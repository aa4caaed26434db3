/* read.h - the `read` command of private_chat: {"cmd":"read","with":"LiHua",
 * "msg_id":"..."} marks every private message from LiHua up to that one as read (the
 * host's read_mark, which sends LiHua the "read" receipt). */
#ifndef CHATD_PLUGIN_PRIVATE_CHAT_READ_H
#define CHATD_PLUGIN_PRIVATE_CHAT_READ_H

#include <chatd/plugin.h>

/* What the command needs of the plugin instance it lives in. */
struct read_command {
    const struct chatd_host *host;
    struct chatd_plugin *self;
};

/* During init: register `read`, with r (in the instance) as its handler's arg. */
int read_register(struct read_command *r, const struct chatd_host *host, struct chatd_plugin *self);

#endif
