/* chatd/groups.h - the "groups" service of the groups plugin, version 1: what other
 * plugins may ask about groups and memberships without reading its tables (the history
 * plugin asks it before a group's history).
 *
 * A plugin that uses it finds it with service_get(self, CHATD_GROUPS_SERVICE,
 * CHATD_GROUPS_VERSION, &svc) (CHATD_ENOENT: the groups plugin is not enabled) and, to
 * call it from a job, holds it (service_hold) until the job's done has called
 * service_release. Every function takes the provider's instance (svc.instance) first.
 * Later versions only append members. */
#ifndef CHATD_GROUPS_H
#define CHATD_GROUPS_H

#include <chatd/plugin.h>
#include <stdint.h>

#define CHATD_GROUPS_SERVICE "groups"
#define CHATD_GROUPS_VERSION 1

/** What membership answers. */
enum chatd_groups_membership {
    CHATD_GROUPS_NO_GROUP = 0,   /**< no group of that name (or a name that breaks the rule) */
    CHATD_GROUPS_NOT_MEMBER = 1, /**< the group exists; the user is not in it */
    CHATD_GROUPS_MEMBER = 2,     /**< the user is in it; *since_msg is set */
};

struct chatd_groups_v1 {
    /** Worker thread, inside the caller's own CHATD_JOB_DB job, on its connection `db`:
     *  whether `user` is a member of `group`, one of enum chatd_groups_membership, or <0 a
     *  CHATD_E* error (CHATD_EDB...). For a member, *since_msg is the id of the last
     *  message posted before they (last) joined (chatd_host.message_last_id): the
     *  group's messages they may see are the ones after it. */
    int (*membership)(void *instance, struct chatd_db *db, const char *group, const char *user,
                      int64_t *since_msg);
};

#endif
