/* host_api.c - the function table every plugin receives: thin, checked entry points
 * into the host's subsystems. */
#include "clock.h"
#include "cluster.h"
#include "cluster_route.h"
#include "commands.h"
#include "db.h"
#include "db_rows.h"
#include "post.h"
#include "flush_watch.h"
#include "history.h"
#include "hooks.h"
#include "log.h"
#include "plugin_loader.h"
#include "plugin_options.h"
#include "ratelimit.h"
#include "request.h"
#include "server.h"
#include "services.h"
#include "stream_sessions.h"
#include "session.h"
#include "timers.h"
#include "users.h"
#include "workers.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static void api_log(struct chatd_plugin *self, enum chatd_log_level level, const char *fmt, ...)
    CHATD_PRINTF(3, 4);
static void api_log(struct chatd_plugin *self, enum chatd_log_level level, const char *fmt, ...)
{
    va_list ap;
    if (self->state == PLUGIN_INITING && level == CHATD_LOG_ERROR) {
        va_start(ap, fmt);
        vsnprintf(self->init_error, sizeof(self->init_error), fmt, ap);
        va_end(ap);
    }
    va_start(ap, fmt);
    log_writev(level, self->name, fmt, ap);
    va_end(ap);
}

static int api_option_int(struct chatd_plugin *self, const char *key, int64_t *out)
{
    const struct option_value *v = plugin_option(self, key);
    if (!v)
        return CHATD_ENOENT;
    if (v->option->type != CHATD_OPT_INT)
        return CHATD_EINVAL;
    *out = v->number;
    return 0;
}

static int api_option_bool(struct chatd_plugin *self, const char *key, int *out)
{
    const struct option_value *v = plugin_option(self, key);
    if (!v)
        return CHATD_ENOENT;
    if (v->option->type != CHATD_OPT_BOOL)
        return CHATD_EINVAL;
    *out = (int)v->number;
    return 0;
}

static const char *api_option_string(struct chatd_plugin *self, const char *key)
{
    const struct option_value *v = plugin_option(self, key);
    return v && v->option->type == CHATD_OPT_STRING ? v->text : NULL;
}

static int api_register_command(struct chatd_plugin *self, const struct chatd_command *cmd)
{
    if (self->state != PLUGIN_INITING)
        return CHATD_ESTATE;
    return commands_add(self->server, self, cmd);
}

static int api_reply(struct chatd_request *req, const char *result, json_t *fields)
{
    return request_reply(req, result, fields);
}

static chatd_session_id api_request_session(const struct chatd_request *req)
{
    return req->session;
}

static const char *api_request_user(const struct chatd_request *req)
{
    return req->user;
}

/* Pushes are plugin-built objects: the host only refuses to let them pass for a reply. */
static int push_one(struct session *s, json_t *msg)
{
    json_object_del(msg, "id");
    return session_send(s, msg);
}

static int api_push_session(struct chatd_plugin *self, chatd_session_id session, json_t *msg)
{
    if (!json_is_object(msg)) {
        json_decref(msg);
        return CHATD_EINVAL;
    }
    struct session *s = session_find(self->server, session);
    int rc = s ? push_one(s, msg) : CHATD_ENOENT;
    json_decref(msg);
    return rc;
}

static int api_push_user(struct chatd_plugin *self, const char *user, json_t *msg,
                         size_t *delivered)
{
    if (delivered)
        *delivered = 0;
    if (!json_is_object(msg) || !user) {
        json_decref(msg);
        return CHATD_EINVAL;
    }
    /* In the cluster: this node's sessions, and one publish per node where user is. */
    size_t sent = cluster_route_push_live(self->server, &user, 1, msg, 1, NULL);
    json_decref(msg);
    if (delivered)
        *delivered = sent;
    return 0;
}

static size_t api_user_session_count(struct chatd_plugin *self, const char *user)
{
    struct user *u = user ? users_find(self->server, user) : NULL;
    /* In the cluster: this node's sessions and the other nodes'. */
    return (u ? u->n_sessions : 0) + cluster_remote_sessions(self->server, user);
}

static const char *api_session_user(struct chatd_plugin *self, chatd_session_id session)
{
    struct session *s = session_find(self->server, session);
    return s && s->user ? s->user->name : NULL;
}

static int api_session_login(struct chatd_request *req, const char *user)
{
    if (!req->command->plugin->is_authenticator)
        return CHATD_EPERM;
    if (!user || !*user)
        return CHATD_EINVAL;
    struct session *s = session_find(req->server, req->session);
    if (!s)
        return CHATD_ECLOSED;
    if (s->user && strcmp(s->user->name, user) == 0) {
        ratelimit_auth_succeeded(req, user);
        return 0; /* already this user: nothing changes, nothing is sent again */
    }
    struct stream_login lg;
    char reason[96];
    if (stream_login_parse(req->body, &lg, reason, sizeof(reason)) != 0) {
        log_debug("session %llu: login as %s refused: %s", (unsigned long long)req->session, user,
                  reason);
        return CHATD_EINVAL; /* binding nothing: the plugin answers bad_request */
    }
    /* A second login in one request: the first one is over. */
    request_login_answered(req, 0);
    users_unbind(req->server, s);
    /* Pushes for the session wait from now until the reply, then its timeline goes
     * first; from before the bind, so that what the login's events push waits too. */
    uint64_t login = stream_login_bound(req->server, s, user, &lg);
    int rc = users_bind(req->server, s, user);
    if (rc != 0) {
        stream_session_end(req->server, s);
        return rc;
    }
    ratelimit_auth_succeeded(req, user);
    req->login_user = strdup(user);
    req->login_generation = login;
    if (!req->login_user)
        stream_login_replied(req->server, s->id, login, 0);
    return 0;
}

static int api_session_logout(struct chatd_request *req)
{
    if (!req->command->plugin->is_authenticator)
        return CHATD_EPERM;
    struct session *s = session_find(req->server, req->session);
    if (!s)
        return CHATD_ECLOSED;
    if (!s->user)
        return CHATD_ESTATE;
    users_unbind(req->server, s);
    return 0;
}

static int api_hook_has(struct chatd_plugin *self, const char *hook)
{
    return hooks_has(self->server, hook);
}

static int api_user_logout_all(struct chatd_request *req)
{
    if (!req->command->plugin->is_authenticator)
        return CHATD_EPERM;
    if (!req->user)
        return CHATD_ESTATE;
    size_t ended = users_unbind_others(req->server, req->user, req->session);
    return ended > INT_MAX ? INT_MAX : (int)ended;
}

/* A NULL arg means the plugin's instance (ABI 1.2; NULL for older plugins). */
static void *arg_or_instance(const struct chatd_plugin *self, void *arg)
{
    return arg ? arg : self->instance;
}

static int api_subscribe(struct chatd_plugin *self, enum chatd_event event, chatd_event_fn fn,
                         void *arg)
{
    if (self->state != PLUGIN_INITING)
        return CHATD_ESTATE;
    return users_subscribe(self->server, self, event, fn, arg_or_instance(self, arg));
}

static int api_job_submit(struct chatd_plugin *self, struct chatd_request *req,
                          const struct chatd_job *job, void *arg)
{
    /* chatd -t starts plugins but touches no database. */
    if (self->server->check_only && job && (job->flags & CHATD_JOB_DB))
        return CHATD_ENOSYS;
    return pool_submit(self->server->pool, self, req, job, arg_or_instance(self, arg));
}

static int api_job_run(struct chatd_plugin *self, struct chatd_request *req,
                       const struct chatd_job *job, void *arg)
{
    int rc = api_job_submit(self, req, job, arg);
    if (rc == 0 || !job || !job->done)
        return rc;
    if (req)
        request_refuse(req, rc == CHATD_EBUSY ? "busy" : "internal",
                       rc == CHATD_EBUSY ? "the server is busy, try again" : chatd_strerror(rc));
    job->done(NULL, arg_or_instance(self, arg), rc);
    return rc;
}

/* db_query_rows within the ABI's parameter limit (the host's own calls may bind more). */
static int api_db_query_rows(struct chatd_db *db, const char *sql, const struct chatd_value *params,
                             size_t nparams, size_t max_rows, struct chatd_rows **out)
{
    if (db_over_plugin_limit(sql, nparams)) {
        *out = NULL;
        return CHATD_EINVAL;
    }
    return db_query_rows(db, sql, params, nparams, max_rows, out);
}

static size_t api_job_room(struct chatd_plugin *self, uint32_t flags)
{
    return self->server->pool ? pool_room(self->server->pool, flags) : 0;
}

static int api_timer_add(struct chatd_plugin *self, uint32_t ms, int repeat, chatd_timer_fn fn,
                         void *arg, uint64_t *id)
{
    return timers_add(self->server, self, ms, repeat, fn, arg_or_instance(self, arg), id);
}

static int api_instance_set(struct chatd_plugin *self, void *instance)
{
    self->instance = instance;
    return 0;
}

static int api_command_rules(struct chatd_plugin *self, const char *cmd,
                             const struct chatd_field_rule *rules)
{
    if (self->state != PLUGIN_INITING)
        return CHATD_ESTATE;
    struct command *c = cmd ? commands_find(self->server, cmd) : NULL;
    if (!c || c->plugin != self)
        return CHATD_ENOENT;
    char why[200];
    int rc = fields_add_rules(&c->fields, self, rules, why, sizeof(why));
    if (rc != 0)
        log_error("plugin %s: command '%s': %s", self->name, cmd, why);
    return rc;
}

static int64_t api_monotonic_ms(void)
{
    return now_ns() / 1000000;
}

static int api_on_user_flushed(struct chatd_plugin *self, const char *user, uint32_t timeout_ms,
                               chatd_flushed_fn fn, void *arg)
{
    return flush_watch_add(self->server, self, user, timeout_ms, fn, arg_or_instance(self, arg));
}

static int api_deliver(struct chatd_plugin *self, const char *const *users, size_t n_users,
                       json_t *msg, uint32_t flags, int64_t max_stored, chatd_deliver_done_fn done,
                       void *arg)
{
    return post_deliver(self, NULL, users, n_users, msg, flags, max_stored, 0, done,
                        arg_or_instance(self, arg));
}

static int api_deliver_from(struct chatd_plugin *self, const char *sender, const char *const *users,
                            size_t n_users, json_t *msg, uint32_t flags, int64_t max_stored,
                            int64_t max_per_sender, chatd_deliver_done_fn done, void *arg)
{
    return post_deliver(self, sender, users, n_users, msg, flags, max_stored, max_per_sender, done,
                        arg_or_instance(self, arg));
}

static int api_post(struct chatd_plugin *self, const struct chatd_post *post,
                    chatd_post_done_fn done, void *arg)
{
    return post_message(self, post, done, arg_or_instance(self, arg));
}

static int api_post_find(struct chatd_plugin *self, struct chatd_request *req, const char *sender,
                         const char *client_msg_id, chatd_post_done_fn done, void *arg)
{
    return post_find(self, req, sender, client_msg_id, done, arg_or_instance(self, arg));
}

static int64_t api_message_last_id(struct chatd_plugin *self)
{
    return post_last_id(self->server);
}

static int api_timer_cancel(struct chatd_plugin *self, uint64_t id)
{
    return timers_cancel(self->server, self, id);
}

static size_t api_user_output_pending(struct chatd_plugin *self, const char *user)
{
    struct user *u = user ? users_find(self->server, user) : NULL;
    size_t least = 0;
    int any = 0;
    for (size_t i = 0; u && i < u->n_sessions; i++) {
        struct session *s = session_find(self->server, u->sessions[i]);
        if (!s)
            continue;
        size_t pending = session_output_pending(s);
        if (!any || pending < least)
            least = pending;
        any = 1;
    }
    return least;
}

static int api_is_authenticator(struct chatd_plugin *self)
{
    return self->is_authenticator;
}

static int64_t api_now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static int api_metric_set(struct chatd_plugin *self, const char *name, const char *help,
                          double value)
{
    return metrics_plugin_gauge(&self->server->metrics, self->name, name, help, value);
}

static int api_hook_add(struct chatd_plugin *self, const char *hook, int priority, chatd_hook_fn fn,
                        void *arg)
{
    if (self->state != PLUGIN_INITING)
        return CHATD_ESTATE;
    return hooks_add(self->server, self, hook, priority, fn, arg_or_instance(self, arg));
}

static int api_hook_run(struct chatd_plugin *self, const char *hook, json_t *payload,
                        chatd_hook_done_fn done, void *arg)
{
    return hooks_run(self->server, self, hook, payload, done, arg_or_instance(self, arg));
}

static int api_service_provide(struct chatd_plugin *self, const char *name, uint32_t version,
                               const void *fns, void *instance)
{
    if (self->state != PLUGIN_INITING)
        return CHATD_ESTATE;
    return services_provide(self->server, self, name, version, fns,
                            arg_or_instance(self, instance));
}

static int api_service_get(struct chatd_plugin *self, const char *name, uint32_t version,
                           struct chatd_service *out)
{
    return services_get(self->server, name, version, out);
}

static int api_service_hold(struct chatd_plugin *self, struct chatd_service *svc)
{
    return services_hold(self->server, self, svc);
}

static void api_service_release(struct chatd_plugin *self, struct chatd_service *svc)
{
    services_release(self->server, self, svc);
}

static int api_auth_attempt(struct chatd_plugin *self, struct chatd_request *req, const char *name)
{
    if (!self->is_authenticator)
        return CHATD_EPERM;
    if (!req)
        return CHATD_EINVAL;
    return ratelimit_auth_attempt(req, name);
}

static int api_auth_failed(struct chatd_plugin *self, struct chatd_request *req, const char *name,
                           const char *why)
{
    if (!self->is_authenticator)
        return CHATD_EPERM;
    if (!req || !name)
        return CHATD_EINVAL;
    ratelimit_auth_failed(req, name, why);
    return 0;
}

const struct chatd_host host_api = {
    .size = sizeof(struct chatd_host),
    .abi_major = CHATD_ABI_MAJOR,
    .abi_minor = CHATD_ABI_MINOR,
    .version = CHATD_VERSION,
    .log = api_log,
    .option_int = api_option_int,
    .option_bool = api_option_bool,
    .option_string = api_option_string,
    .register_command = api_register_command,
    .reply = api_reply,
    .request_session = api_request_session,
    .request_user = api_request_user,
    .push_session = api_push_session,
    .push_user = api_push_user,
    .user_session_count = api_user_session_count,
    .session_user = api_session_user,
    .session_login = api_session_login,
    .session_logout = api_session_logout,
    .subscribe = api_subscribe,
    .job_submit = api_job_submit,
    .db_exec = db_plugin_exec,
    .db_query = db_plugin_query,
    .timer_add = api_timer_add,
    .timer_cancel = api_timer_cancel,
    .now_ms = api_now_ms,
    .user_output_pending = api_user_output_pending,
    .is_authenticator = api_is_authenticator,
    .request_hold = request_hold,
    .request_release = request_release,
    .metric_set = api_metric_set,
    .instance_set = api_instance_set,
    .command_rules = api_command_rules,
    .job_run = api_job_run,
    .monotonic_ms = api_monotonic_ms,
    .on_user_flushed = api_on_user_flushed,
    .db_query_rows = api_db_query_rows,
    .rows_free = db_rows_free,
    .hook_add = api_hook_add,
    .hook_run = api_hook_run,
    .hook_refuse = hooks_refuse,
    .hook_resume = hooks_resume,
    .service_provide = api_service_provide,
    .service_get = api_service_get,
    .service_hold = api_service_hold,
    .service_release = api_service_release,
    .deliver = api_deliver,
    .user_logout_all = api_user_logout_all,
    .hook_has = api_hook_has,
    .auth_attempt = api_auth_attempt,
    .auth_failed = api_auth_failed,
    .deliver_from = api_deliver_from,
    .job_room = api_job_room,
    .post = api_post,
    .message_last_id = api_message_last_id,
    .history_read = history_read,
    .read_mark = stream_read_mark,
    .post_find = api_post_find,
};
