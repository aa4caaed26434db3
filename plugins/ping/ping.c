/* ping.c - the `ping` command: answers at once, logged in or not. It is the smallest
 * complete plugin, and the liveness check clients and operators use.
 *
 *   request:  {"cmd":"ping","id":1}
 *   reply:    {"cmd":"ping_reply","result":"success","id":1}
 *
 * Enable it with `enable = ping` in [plugins]; it has no options. */
#include <chatd/plugin.h>

static const struct chatd_host *host;

static void handle_ping(struct chatd_request *req, const json_t *body, void *arg)
{
    (void)body;
    (void)arg;
    host->reply(req, "success", NULL);
}

static int ping_init(struct chatd_plugin *self, const struct chatd_host *h)
{
    host = h;
    static const struct chatd_command ping = {
        .name = "ping",
        .handler = handle_ping,
        .flags = CHATD_CMD_ANONYMOUS,
    };
    return host->register_command(self, &ping);
}

CHATD_PLUGIN_DEFINE(.name = "ping", .version = "1.0.0",
                    .description = "answers ping with success; works before login",
                    .init = ping_init);
