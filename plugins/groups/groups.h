/* groups.h - the groups plugin's instance and the parts its files share. */
#ifndef CHATD_PLUGIN_GROUPS_H
#define CHATD_PLUGIN_GROUPS_H

#include "chatd_groups.h"
#include "common.h"

#include <chatd/plugin.h>
#include <pthread.h>
#include <stdint.h>
#include <uthash.h>

struct members_read;

struct groups {
    const struct chatd_host *host;
    struct chatd_plugin *self;
    int64_t max_groups_per_user, max_members_per_group;
    int64_t max_text; /* a text a hook rewrote is held to it too */
    /* group_chat.c: the members reads waiting for a worker, by group; the loop thread
     * adds to them, a worker takes one out when it starts it. */
    struct members_read *open_reads;
    pthread_mutex_t open_reads_lock;
};

/* schema.c */
extern const struct chatd_migration groups_migrations[];

/* membership.c */
void groups_handle_create(struct chatd_request *req, const json_t *body, void *arg);
void groups_handle_join(struct chatd_request *req, const json_t *body, void *arg);
void groups_handle_leave(struct chatd_request *req, const json_t *body, void *arg);

/* group_chat.c */
void groups_handle_chat(struct chatd_request *req, const json_t *body, void *arg);

/* service.c: the "groups" service, version 1 */
extern const struct chatd_groups_v1 groups_service_v1;

/* lists.c */
void groups_handle_groups(struct chatd_request *req, const json_t *body, void *arg);
void groups_handle_members(struct chatd_request *req, const json_t *body, void *arg);
int groups_on_login(struct chatd_hook_call *call, json_t *payload, void *arg);

#endif
