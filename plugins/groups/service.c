/* service.c - the "groups" service, version 1 (chatd_groups.h): whether a user is in a
 * group and since which message, asked by the history plugin inside its own job. */
#include "groups.h"

#include "chatd_groups.h"

#include <string.h>

struct membership_row {
    int group_found;
    int member;
    int64_t since_msg;
};

/* Worker: one row (the group's), with the member's since_msg or NULL. */
static int read_membership(const struct chatd_value *cols, size_t ncols, void *arg)
{
    struct membership_row *row = arg;
    row->group_found = 1;
    if (ncols == 1 && cols[0].type == CHATD_PARAM_INT64) {
        row->member = 1;
        row->since_msg = cols[0].i;
    }
    return 0;
}

static int membership(void *instance, struct chatd_db *db, const char *group, const char *user,
                      int64_t *since_msg)
{
    struct groups *g = instance;
    if (!chat_valid_name(group) || !user)
        return CHATD_GROUPS_NO_GROUP;
    const struct chatd_value params[2] = {
        {.type = CHATD_PARAM_TEXT, .s = user, .len = strlen(user)},
        {.type = CHATD_PARAM_TEXT, .s = group, .len = strlen(group)},
    };
    struct membership_row row = {0};
    int rc = g->host->db_query(db,
                               "SELECT m.since_msg FROM groups_groups g LEFT JOIN groups_members m"
                               " ON m.group_id = g.id AND m.user = ? WHERE g.name = ?",
                               params, 2, read_membership, &row);
    if (rc != 0)
        return rc;
    if (!row.group_found)
        return CHATD_GROUPS_NO_GROUP;
    if (!row.member)
        return CHATD_GROUPS_NOT_MEMBER;
    *since_msg = row.since_msg;
    return CHATD_GROUPS_MEMBER;
}

const struct chatd_groups_v1 groups_service_v1 = {
    .membership = membership,
};
