/* online.c - users online, their friend lists, presence, and "fri" in login_reply.
 *
 * A user's first LOGIN event on this node (first_or_last is this node's) makes their
 * entry and starts a job that reads their friends. The user.login hook that accounts
 * runs right after (before login_reply) waits for that list if it is still being read,
 * puts it into the reply as "fri", and, when that session is the user's only one in the
 * cluster (user_session_count), tells the user's friends online anywhere they are
 * online. Their last LOGOUT here tells the same friends they are offline, from memory,
 * when no session of theirs is left elsewhere either, then reads the list for friends
 * added on another node meanwhile (which could not tell this one). An event with no
 * session is a change the host raises for the cluster where no session's event told
 * it (their last session was on a node that died, ended at the same moment as one on
 * another node, or the change was made while Redis was down): a LOGOUT reads the list
 * first, since no entry is here; a LOGIN tells from the entry's list when it has one. */
#include "friends.h"

#include <stdlib.h>
#include <string.h>

/* A user.login hook deferred until the user's friend list is read. */
struct login_wait {
    struct chatd_hook_call *call;
    json_t *payload;
    chatd_session_id session;
    struct login_wait *next;
};

static struct online_user *find(struct friends *f, const char *name)
{
    struct online_user *u;
    HASH_FIND_STR(f->online, name, u);
    return u;
}

static int has_friend(const struct online_user *u, const char *name)
{
    for (size_t i = 0; i < u->n_friends; i++)
        if (strcmp(u->friends[i], name) == 0)
            return 1;
    return 0;
}

static int add_friend(struct online_user *u, const char *name)
{
    if (has_friend(u, name))
        return 0;
    if (u->n_friends == u->cap_friends) {
        size_t cap = u->cap_friends ? u->cap_friends * 2 : 8;
        void *more = realloc(u->friends, cap * sizeof(*u->friends));
        if (!more)
            return CHATD_ENOMEM;
        u->friends = more;
        u->cap_friends = cap;
    }
    strcpy(u->friends[u->n_friends++], name);
    return 0;
}

void friends_online_add(struct friends *f, const char *user, const char *friend_name)
{
    struct online_user *u = find(f, user);
    struct online_user *v = find(f, friend_name);
    /* The friendship is stored; only presence misses it until the next first login
     * reads the list again. */
    if ((u && add_friend(u, friend_name) != 0) || (v && add_friend(v, user) != 0))
        f->host->log(f->self, CHATD_LOG_ERROR,
                     "presence between %s and %s waits for their next login: out of memory", user,
                     friend_name);
}

/* Push presence to the user's friends who have a session. */
static void tell_friends(struct friends *f, const struct online_user *u, const char *status)
{
    const char **to = calloc(u->n_friends ? u->n_friends : 1, sizeof(*to));
    size_t n = 0;
    for (size_t i = 0; to && i < u->n_friends; i++)
        if (f->host->user_session_count(f->self, u->friends[i]) > 0)
            to[n++] = u->friends[i];
    if (n > 0)
        f->host->deliver(
            f->self, to, n,
            json_pack("{ssssss}", "cmd", "presence", "user", u->name, "status", status), 0, 0, NULL,
            NULL);
    free(to);
}

/* Complete one login: its reply gets "fri", and the first session announces the user.
 * Out of memory the login is refused `internal` (never answered with a partial list). */
static void serve_login(struct friends *f, struct online_user *u, struct chatd_hook_call *call,
                        json_t *payload, chatd_session_id session)
{
    json_t *fri = json_array();
    for (size_t i = 0; fri && i < u->n_friends; i++) {
        if (json_array_append_new(fri, json_string(u->friends[i])) != 0) {
            json_decref(fri);
            fri = NULL;
        }
    }
    if (!fri || json_object_set_new(json_object_get(payload, "reply"), "fri", fri) != 0) {
        f->host->log(f->self, CHATD_LOG_ERROR, "the login of %s failed: out of memory", u->name);
        f->host->hook_refuse(call, "internal", "out of memory");
        return;
    }
    if (session == u->announce) {
        u->announce = 0;
        if (f->presence)
            tell_friends(f, u, "online");
    }
}

/* Let every deferred login go on: with "fri" when the list is there, refused when it
 * could not be read (the login then fails with busy or internal, as any failed read). */
static void resume_waiting(struct friends *f, struct online_user *u, int status)
{
    while (u->waiting) {
        struct login_wait *w = u->waiting;
        u->waiting = w->next;
        if (status == 0)
            serve_login(f, u, w->call, w->payload, w->session);
        else
            f->host->hook_refuse(w->call, chat_status_word(status),
                                 "the friend list could not be read");
        f->host->hook_resume(w->call);
        free(w);
    }
}

/* ---- reading the list ------------------------------------------------------------ */

struct load_job {
    struct friends *f;
    char user[CHAT_NAME_MAX + 1];
    uint64_t generation;
    struct chatd_rows *rows;
    const char *status;      /* tell_read: "online" or "offline" */
    struct online_user told; /* tell_read: the friends already told (a list moved here) */
};

static int load_work(struct chatd_db *db, void *arg)
{
    struct load_job *j = arg;
    return friends_query(j->f, db, j->user, &j->rows);
}

static void load_done(struct chatd_request *req, void *arg, int status)
{
    (void)req;
    struct load_job *j = arg;
    struct friends *f = j->f;
    struct online_user *u = find(f, j->user);
    if (u && u->generation == j->generation) {
        u->loading = 0;
        /* Merged: add_friend may have added to the list while it was being read. */
        for (size_t r = 0; status == 0 && j->rows && r < j->rows->n_rows; r++)
            if (add_friend(u, chat_cell(j->rows, r, 0)) != 0)
                status = CHATD_ENOMEM;
        u->loaded = status == 0;
        if (status != 0)
            f->host->log(f->self, CHATD_LOG_ERROR, "cannot read the friends of %s: %s", j->user,
                         chatd_strerror(status));
        resume_waiting(f, u, status);
    }
    f->host->rows_free(j->rows);
    free(j);
}

/* Start reading u's friends. job_submit, not job_run: a hook that waits for the list
 * must learn of a failed submit before it returns, not through a done that resumes it
 * first. */
static int load(struct friends *f, struct online_user *u)
{
    struct load_job *j = calloc(1, sizeof(*j));
    if (!j)
        return CHATD_ENOMEM;
    j->f = f;
    strcpy(j->user, u->name);
    j->generation = u->generation;
    static const struct chatd_job job = {
        .work = load_work, .done = load_done, .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
    int rc = f->host->job_submit(f->self, NULL, &job, j);
    if (rc != 0)
        free(j);
    u->loading = rc == 0;
    return rc;
}

/* A user's friends read: those not told yet are told the user's status, unless it
 * changed again meanwhile (their login or logout told it). */
static void read_done(struct chatd_request *req, void *arg, int status)
{
    (void)req;
    struct load_job *j = arg;
    struct friends *f = j->f;
    struct online_user user = {0};
    strcpy(user.name, j->user);
    for (size_t r = 0; status == 0 && j->rows && r < j->rows->n_rows; r++)
        if (!has_friend(&j->told, chat_cell(j->rows, r, 0)) &&
            add_friend(&user, chat_cell(j->rows, r, 0)) != 0)
            status = CHATD_ENOMEM;
    int online = strcmp(j->status, "online") == 0;
    if (status != 0)
        f->host->log(f->self, CHATD_LOG_ERROR, "cannot tell the friends of %s they are %s: %s",
                     j->user, j->status, chatd_strerror(status));
    else if ((f->host->user_session_count(f->self, j->user) > 0) == online)
        tell_friends(f, &user, j->status);
    free(user.friends);
    free(j->told.friends);
    f->host->rows_free(j->rows);
    free(j);
}

/* Read user's friends and tell those not in told (may be NULL; its list is moved into
 * the job) that the user is `status` ("online" or "offline"). */
static void tell_read(struct friends *f, const char *user, const char *status,
                      struct online_user *told)
{
    struct load_job *j = strlen(user) <= CHAT_NAME_MAX ? calloc(1, sizeof(*j)) : NULL;
    if (!j)
        return;
    j->f = f;
    j->status = status;
    strcpy(j->user, user);
    if (told) {
        j->told.friends = told->friends;
        j->told.n_friends = told->n_friends;
        told->friends = NULL;
        told->n_friends = told->cap_friends = 0;
    }
    static const struct chatd_job job = {
        .work = load_work, .done = read_done, .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
    if (f->host->job_submit(f->self, NULL, &job, j) != 0) {
        free(j->told.friends);
        free(j);
    }
}

/* ---- events and the user.login hook --------------------------------------------- */

static void online_free(struct friends *f, struct online_user *u)
{
    HASH_DEL(f->online, u);
    while (u->waiting) {
        struct login_wait *w = u->waiting;
        u->waiting = w->next;
        free(w);
    }
    free(u->friends);
    free(u);
}

void friends_on_event(enum chatd_event event, chatd_session_id session, const char *user,
                      int first_or_last, void *arg)
{
    struct friends *f = arg;
    struct online_user *u = find(f, user);
    if (session == 0 && first_or_last) { /* raised by the host for the cluster */
        if (f->presence && event == CHATD_EVENT_LOGIN && u && u->loaded)
            tell_friends(f, u, "online");
        else if (f->presence && (event == CHATD_EVENT_LOGIN || !u))
            tell_read(f, user, event == CHATD_EVENT_LOGIN ? "online" : "offline", NULL);
        return;
    }
    if (event == CHATD_EVENT_LOGIN && first_or_last && !u && strlen(user) <= CHAT_NAME_MAX) {
        u = calloc(1, sizeof(*u));
        if (!u) { /* the user.login hook then finds no entry: "fri" stays empty */
            f->host->log(f->self, CHATD_LOG_ERROR,
                         "no friend list or presence for %s: out of memory", user);
            return;
        }
        strcpy(u->name, user);
        u->generation = ++f->next_generation;
        /* First in the cluster: nobody else of theirs is online anywhere. */
        u->announce = f->host->user_session_count(f->self, user) == 1 ? session : 0;
        HASH_ADD_STR(f->online, name, u);
        int rc = load(f, u);
        if (rc != 0) /* the user.login hook tries again */
            f->host->log(f->self, CHATD_LOG_WARN, "cannot read the friends of %s: %s", user,
                         chatd_strerror(rc));
    }
    if (event == CHATD_EVENT_LOGOUT && first_or_last && u) {
        /* Last here; offline when none is left on another node either. A friendship
         * added on another node while the user was online here is missing from u's list
         * (that node cannot tell this one): the stored list is read, and the rest told. */
        if (f->presence && u->loaded && f->host->user_session_count(f->self, user) == 0) {
            tell_friends(f, u, "offline");
            tell_read(f, user, "offline", u);
        }
        /* A login still waiting for the list has lost its session: it fails. */
        resume_waiting(f, u, CHATD_ECLOSED);
        online_free(f, u);
    }
}

int friends_on_login(struct chatd_hook_call *call, json_t *payload, void *arg)
{
    struct friends *f = arg;
    struct online_user *u = find(f, json_string_value(json_object_get(payload, "user")));
    if (!u)
        return CHATD_ENOENT; /* no LOGIN event came for this user: "fri" stays empty */
    chatd_session_id session =
        (chatd_session_id)json_integer_value(json_object_get(payload, "session"));
    if (u->loaded) {
        serve_login(f, u, call, payload, session);
        return CHATD_HOOK_CONTINUE;
    }
    int rc = u->loading ? 0 : load(f, u); /* the read at the first LOGIN failed: again */
    struct login_wait *w = rc == 0 ? calloc(1, sizeof(*w)) : NULL;
    if (!w) {
        f->host->hook_refuse(call, chat_status_word(rc), "the friend list could not be read");
        return CHATD_HOOK_CONTINUE;
    }
    *w = (struct login_wait){
        .call = call, .payload = payload, .session = session, .next = u->waiting};
    u->waiting = w;
    return CHATD_HOOK_DEFER;
}

/* At destroy: the host is gone, so nothing is resumed (no login can be waiting then:
 * every request is over before shutdown). */
void friends_online_free(struct friends *f)
{
    struct online_user *u, *tmp;
    HASH_ITER (hh, f->online, u, tmp) {
        online_free(f, u);
    }
}
