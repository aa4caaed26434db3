/* kit_host.c - the host table the test kit hands to a plugin: chatd's own table
 * (host_api.c), so every service behaves exactly as in chatd, with the kit's checks of
 * the plugin contract wrapped around the calls a plugin can get wrong silently. */
#include "testkit_internal.h"

#include "plugin_loader.h"
#include "request.h"

/* chatd answers a second reply with CHATD_ESTATE and a log line, and the client never
 * sees it; a test should fail on it. */
static int kit_reply(struct chatd_request *req, const char *result, json_t *fields)
{
    if (req && req->replied) {
        struct chatd_testkit *kit = testkit_of_server(req->server);
        if (kit)
            testkit_violation(kit, "plugin %s replied twice to one '%s' request (second: %s)",
                              req->command->plugin->name, req->command->name,
                              result ? result : "(null)");
    }
    return host_api.reply(req, result, fields);
}

void testkit_host_table(struct chatd_host *table)
{
    *table = host_api;
    table->reply = kit_reply;
}
