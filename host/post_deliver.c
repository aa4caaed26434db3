/* post_deliver.c - deliver() and deliver_from() (ABI 1.2 and 1.3) on top of post: with
 * CHATD_DELIVER_STORE the message is a post without conversation or client_msg_id (it
 * keeps its own msg_id; "seq" is added) and done gets what the post's done got; without
 * it the message is a live push to each user's sessions (stream_push_live, and with
 * [cluster] to the other nodes where they are: cluster_route_push_live), and done
 * runs before this returns. */
#include "post_internal.h"

#include "cluster_route.h"
#include "server.h"
#include "stream.h"

#include <stdlib.h>

/* deliver's done, waiting for the post's. */
struct delivery_wait {
    chatd_deliver_done_fn done;
    void *arg;
    size_t n_users;
};

static void posted(const struct chatd_posted *p, void *arg)
{
    struct delivery_wait *w = arg;
    if (w->done)
        w->done(p->status, p->status == 0 ? p->online : 0,
                p->status == 0 ? w->n_users - p->online : 0, w->arg);
    free(w);
}

int post_deliver(struct chatd_plugin *caller, const char *sender, const char *const *users,
                 size_t n_users, json_t *msg, uint32_t flags, int64_t max_stored,
                 int64_t max_per_sender, chatd_deliver_done_fn done, void *arg)
{
    struct server *srv = caller->server;
    int rc = 0;
    if (!json_is_object(msg) || (n_users > 0 && !users) || max_stored < 0 || max_per_sender < 0 ||
        (sender && !post_valid_name(sender)))
        rc = CHATD_EINVAL;
    for (size_t i = 0; rc == 0 && i < n_users; i++)
        if (!users[i] || ((flags & CHATD_DELIVER_STORE) && !post_valid_name(users[i])))
            rc = CHATD_EINVAL;
    if (rc == 0 && (flags & CHATD_DELIVER_STORE) && (!srv->cfg->db.enable || srv->check_only))
        rc = CHATD_ENOSYS;
    if (rc != 0) {
        json_decref(msg);
        return rc;
    }
    if (!(flags & CHATD_DELIVER_STORE) || n_users == 0) {
        json_object_del(msg, "id");
        json_object_del(msg, "offline");
        size_t online = 0;
        cluster_route_push_live(srv, users, n_users, msg, 0, &online);
        json_decref(msg);
        if (done)
            done(0, online, 0, arg);
        return 0;
    }
    struct delivery_wait *w = malloc(sizeof(*w));
    if (!w) {
        json_decref(msg);
        if (done)
            done(CHATD_ENOMEM, 0, 0, arg);
        return 0;
    }
    *w = (struct delivery_wait){done, arg, n_users};
    const struct chatd_post p = {
        .sender = sender,
        .users = users,
        .n_users = n_users,
        .msg = msg,
        .max_stored = n_users == 1 ? max_stored : 0,
        .max_per_sender = n_users == 1 && sender ? max_per_sender : 0,
    };
    rc = post_accept(caller, &p, 1, posted, w);
    if (rc != 0) {
        free(w);
        if (done && rc == CHATD_ENOMEM)
            done(rc, 0, 0, arg);
        return rc == CHATD_ENOMEM ? 0 : rc;
    }
    return 0;
}
