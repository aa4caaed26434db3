/* host_self.c - the host's own pseudo-plugins (host_self.h). */
#include "host_self.h"

#include "plugin_loader.h"

#include <stdlib.h>
#include <string.h>

int host_self_init(struct chatd_plugin *self, struct server *srv)
{
    if (!(self->name = strdup("chatd")))
        return -1;
    self->state = PLUGIN_RUNNING;
    self->server = srv;
    return 0;
}

void host_self_free(struct chatd_plugin *self)
{
    free(self->name);
    self->name = NULL;
}
