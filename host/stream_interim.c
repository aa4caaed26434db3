/* stream_interim.c - INTERIM stream.h on top of the version 1 delivery (delivery.c's
 * holding and drains, reading chatd_timeline), so that post() works end to end before
 * the read side of delivery version 2 lands; helper `stream` replaces this file with
 * the real stream.c. Loop thread only. */
#include "stream.h"

#include "delivery_internal.h"
#include "server.h"
#include "users.h"

/* Interim: rows only for users with no session (a message accepted while offline and
 * committed during the user's login may then come twice: at least once, as in v1). */
int stream_needs_row(struct server *srv, const char *user)
{
    return !users_find(srv, user);
}

size_t stream_push_live(struct server *srv, const char *user, json_t *msg)
{
    return delivery_push(srv, user, msg);
}

size_t stream_push(struct server *srv, const char *user, json_t *msg, int64_t seq,
                   const char *receipt_sender)
{
    (void)seq;
    (void)receipt_sender;
    return stream_push_live(srv, user, msg);
}
