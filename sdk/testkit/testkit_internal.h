/* testkit_internal.h - what the test kit's files share: the kit and session records,
 * and the hooks between the kit's host table and the kit. Not installed. */
#ifndef CHATD_TESTKIT_INTERNAL_H
#define CHATD_TESTKIT_INTERNAL_H

#include "chatd_testkit.h"
#include "config.h"
#include "server.h"

struct bufferevent;

struct chatd_testkit_session {
    struct chatd_testkit *kit;
    chatd_session_id id;
    struct bufferevent *client; /* the client's end of the socket pair; NULL once closed */
    json_t *replies;            /* every reply received, in order */
    json_t *pushes;             /* every push received, in order */
    size_t pushes_taken;
    struct chatd_testkit_session *next;
};

struct chatd_testkit {
    char *path, *dir, *name;
    char **settings; /* chatd --set assignments, applied at start */
    size_t n_settings;
    struct config cfg;
    int have_cfg;
    struct server *srv;
    struct chatd_host table; /* host_api, with the kit's checks around reply */
    struct event *tick;      /* wakes the loop while the kit waits */
    int started;

    int has_db;
    char db_name[64];
    struct config_database db; /* the kit's own connection settings, for create/drop */

    unsigned timeout_ms;
    int strict;
    char **violations;
    size_t n_violations, n_reported;

    struct chatd_testkit_session *sessions;
    json_t *hook_outcomes;          /* what chatd_testkit_run_hook returned, kept till free */
    struct chatd_testkit *next_kit; /* the kits alive in this process */
    char error[2048];
};

/* The host table a kit hands to its plugin (kit_host.c): chatd's own, with a check on
 * every reply. */
void testkit_host_table(struct chatd_host *table);
/* The kit whose server this is, or NULL. */
struct chatd_testkit *testkit_of_server(const struct server *srv);
/* Record a breach of the plugin contract; fails the test at the next kit call when
 * the kit is strict. */
void testkit_violation(struct chatd_testkit *kit, const char *fmt, ...) CHATD_PRINTF(2, 3);
/* Fail the test now if a breach was recorded since the last look (strict kits). */
void testkit_report_violations(struct chatd_testkit *kit);

#endif
