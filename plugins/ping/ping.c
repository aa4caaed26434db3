/* ping.c - the `ping` command: answers at once, logged in or not. It is the smallest
 * complete plugin, and the liveness check clients and operators use.
 *
 *   request:  {"cmd":"ping","id":1}
 *   reply:    {"cmd":"ping_reply","result":"success","id":1}
 *
 * Enable it with `enable = ping` in [plugins]; it has no options. */
#include <chatd/plugin.h>

#include <stdlib.h>

/* The instance: all a handler needs, and no globals (ABI 1.2). */
struct ping {
    const struct chatd_host *host;
};

static void handle_ping(struct chatd_request *req, const json_t *body, void *arg)
{
    (void)body;
    const struct ping *ping = arg;
    ping->host->reply(req, "success", NULL);
}

static int ping_init(struct chatd_plugin *self, const struct chatd_host *host)
{
    struct ping *ping = malloc(sizeof(*ping));
    if (!ping)
        return CHATD_ENOMEM;
    ping->host = host;
    host->instance_set(self, ping);
    static const struct chatd_command command = {
        .name = "ping",
        .handler = handle_ping,
        .flags = CHATD_CMD_ANONYMOUS,
    };
    return host->register_command(self, &command);
}

static void ping_destroy(void *instance)
{
    free(instance);
}

CHATD_PLUGIN_DEFINE(.name = "ping", .version = "1.1.0",
                    .description = "answers ping with success; works before login",
                    .init = ping_init, .destroy = ping_destroy);
