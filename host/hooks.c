/* hooks.c - hook points and their runs (see hooks.h).
 *
 * The step protocol, in the corner cases:
 * - A hook function that calls hook_resume on its own call before it returns is done
 *   with its step whatever it returns: CHATD_HOOK_DEFER is then taken as
 *   CHATD_HOOK_CONTINUE (nothing is waited for, and the handle is invalid once the
 *   function returned, as after any resume).
 * - A hook function that calls hook_refuse and then returns CHATD_HOOK_DEFER is waited
 *   for like any deferral: the run is decided (refused), but done only runs once its
 *   plugin resumes the handle (or the deferral is cut), so the handle the plugin keeps
 *   stays valid until then. hook_refuse during that wait returns CHATD_ESTATE.
 * - On an observe-only run (one without a done: presence.changed, message.accepted,
 *   user.registered), hook_refuse returns 0 and has no effect: every hook runs.
 * - A deferral that is cut (hook_timeout_ms, or its plugin retired or stopped) keeps a
 *   reference to the payload its plugin was given, and the run goes on with a copy: what
 *   the plugin writes into it until it resumes goes nowhere, and hook_refuse on the cut
 *   handle returns CHATD_ESTATE and is ignored. The handle and that payload are released
 *   by hook_resume or when the plugin is closed. */
#include "clock.h"
#include "hooks.h"

#include "log.h"
#include "metrics.h"
#include "plugin_loader.h"
#include "server.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A hook function that keeps the loop thread longer than this is logged and counted. */
#define HOOK_SLOW_MS 50

/* One hook function added by a plugin. */
struct hook_entry {
    char *hook;
    int priority;
    uint64_t seq; /* order of adding: the last tie-breaker */
    struct chatd_plugin *plugin;
    chatd_hook_fn fn;
    void *arg;
};

/* One hook of a run, copied when the run starts: hooks added or removed later do not
 * change a run's order, but a plugin retired meanwhile is skipped (plugin NULL). */
struct hook_step {
    struct chatd_plugin *plugin;
    chatd_hook_fn fn;
    void *arg;
    int priority;
    size_t position; /* the plugin's place in [plugins] enable */
    uint64_t seq;
};

/* One run of a hook point. */
struct hook_run {
    struct server *srv;
    char *hook;
    json_t *payload;
    struct chatd_plugin *runner; /* pinned until done has run; NULL: the host */
    chatd_hook_done_fn done;
    void *done_arg;
    struct hook_step *steps;
    size_t n_steps, next;
    struct chatd_hook_call *waiting; /* the deferred step, or NULL */
    struct event *wait;              /* its deadline; with none waiting: go on */
    int advancing;                   /* inside advance(): a resume must not recurse */
    int observe;                     /* no done: refusals are ignored */
    int refused;
    char *result, *reason;
    int out_of_memory; /* refused for want of memory: the outcome's words are static */
    struct hook_run *prev, *next_run; /* srv->hook_runs */
};

/* The handle of one step: what a hook function gets. */
struct chatd_hook_call {
    struct hook_run *run; /* NULL once its deferral was cut */
    struct chatd_plugin *plugin;
    int in_fn;                        /* its hook function has not returned yet */
    int resumed;                      /* hook_resume came before the function returned */
    json_t *payload;                  /* once cut: the payload its plugin was given (a ref) */
    struct chatd_hook_call *next_cut; /* srv->hook_cut, while cut and not resumed */
};

/* Free a handle, and the payload it kept once cut. */
static void call_free(struct chatd_hook_call *call)
{
    if (call)
        json_decref(call->payload);
    free(call);
}

int hooks_add(struct server *srv, struct chatd_plugin *p, const char *hook, int priority,
              chatd_hook_fn fn, void *arg)
{
    if (!hook || !*hook || strlen(hook) > HOOK_NAME_MAX || !fn)
        return CHATD_EINVAL;
    struct hook_entry *grown = realloc(srv->hooks, (srv->n_hooks + 1) * sizeof(*grown));
    if (!grown)
        return CHATD_ENOMEM;
    srv->hooks = grown;
    char *name = strdup(hook);
    if (!name)
        return CHATD_ENOMEM;
    srv->hooks[srv->n_hooks++] = (struct hook_entry){.hook = name,
                                                     .priority = priority,
                                                     .seq = ++srv->hook_seq,
                                                     .plugin = p,
                                                     .fn = fn,
                                                     .arg = arg};
    return 0;
}

/* The plugin's place in [plugins] enable; a new instance started by a reload takes its
 * name's place. Plugins not listed (the test kit) come last. */
static size_t enable_position(const struct server *srv, const char *name)
{
    for (size_t i = 0; i < srv->cfg->n_enabled; i++)
        if (strcmp(srv->cfg->enabled[i], name) == 0)
            return i;
    return SIZE_MAX;
}

static int step_order(const void *a, const void *b)
{
    const struct hook_step *x = a, *y = b;
    if (x->priority != y->priority)
        return x->priority < y->priority ? -1 : 1;
    if (x->position != y->position)
        return x->position < y->position ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void run_free(struct hook_run *run)
{
    struct server *srv = run->srv;
    if (run->prev)
        run->prev->next_run = run->next_run;
    else
        srv->hook_runs = run->next_run;
    if (run->next_run)
        run->next_run->prev = run->prev;
    if (run->wait)
        event_free(run->wait);
    json_decref(run->payload);
    free(run->steps);
    free(run->hook);
    if (!run->out_of_memory) {
        free(run->result);
        free(run->reason);
    }
    free(run);
}

/* The run is decided: hand its outcome to the plugin that ran it, exactly once. */
static void finish(struct hook_run *run)
{
    struct chatd_hook_outcome outcome = {run->refused, run->result, run->reason};
    if (run->done)
        run->done(&outcome, run->payload, run->done_arg);
    if (run->runner)
        run->runner->pending_calls--;
    run_free(run);
}

/* Stop waiting for the deferred step: its handle stays valid (on srv->hook_cut) until
 * its plugin resumes it or is closed, and so does the payload the plugin was given (it
 * may write into it until then: a job's done). The run goes on with a copy, so those
 * late writes reach neither the later hooks nor done. */
static void cut(struct hook_run *run)
{
    struct chatd_hook_call *call = run->waiting;
    run->waiting = NULL;
    evtimer_del(run->wait);
    call->run = NULL;
    call->payload = json_incref(run->payload);
    json_t *copy = json_deep_copy(run->payload);
    if (copy) {
        json_decref(run->payload);
        run->payload = copy;
    } else {
        log_warn("hook %s: out of memory copying the payload; plugin %s may still change it",
                 run->hook, call->plugin->name);
    }
    call->plugin->pending_calls--;
    call->next_cut = run->srv->hook_cut;
    run->srv->hook_cut = call;
}

static void on_wait(evutil_socket_t fd, short what, void *arg);

/* Defer: wait for the step's hook_resume, at most [server] hook_timeout_ms. This cannot
 * fail: the plugin holds the handle from now on (the timer was made with the run; if it
 * cannot be armed, the wait has no deadline, logged). */
static void wait_for(struct hook_run *run, struct chatd_hook_call *call)
{
    struct server *srv = run->srv;
    int64_t ms = srv->cfg->hook_timeout_ms;
    struct timeval limit = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    if (evtimer_add(run->wait, &limit) != 0)
        log_error("hook %s: cannot arm the timer for plugin %s's deferral; waiting for its "
                  "hook_resume without hook_timeout_ms",
                  run->hook, call->plugin->name);
    run->waiting = call;
    call->plugin->pending_calls++;
}

/* Without memory a run cannot be decided by its hooks; it is refused `internal`
 * rather than let through unfiltered (docs/architecture.md, "Out of memory"). An
 * observe-only run just goes on. */
static void refuse_for_memory(struct hook_run *run)
{
    log_error("hook %s: out of memory; the run is refused", run->hook);
    if (run->observe || run->refused)
        return;
    run->refused = 1;
    run->out_of_memory = 1;
    run->result = (char *)(uintptr_t) "internal";
    run->reason = (char *)(uintptr_t) "out of memory";
}

/* Run the hooks from run->next on, until one defers or the run is decided. */
static void advance(struct hook_run *run)
{
    if (run->advancing)
        return;
    run->advancing = 1;
    while (!run->refused && run->next < run->n_steps) {
        struct hook_step *st = &run->steps[run->next++];
        if (!st->plugin)
            continue;
        struct chatd_plugin *p = st->plugin;
        struct chatd_hook_call *call = calloc(1, sizeof(*call));
        if (!call) {
            refuse_for_memory(run);
            continue;
        }
        call->run = run;
        call->plugin = p;
        call->in_fn = 1;
        int64_t start = now_ns();
        int rc = st->fn(call, run->payload, st->arg);
        int64_t ms = (now_ns() - start) / 1000000;
        call->in_fn = 0;
        if (ms > HOOK_SLOW_MS) {
            log_warn("hook %s: plugin %s blocked the event loop for %lld ms (over %d ms)",
                     run->hook, p->name, (long long)ms, HOOK_SLOW_MS);
            metrics_hook(&run->srv->metrics, run->hook, p->name, METRICS_HOOK_SLOW);
        }
        /* A resume before the function returned (a job_run whose done ran at once,
         * say) means the step is already over. A step that refused and deferred is
         * still waited for: its plugin will resume the handle. */
        if (rc == CHATD_HOOK_DEFER && !call->resumed) {
            wait_for(run, call);
            run->advancing = 0;
            return;
        }
        free(call);
        if (rc < 0) {
            log_warn("hook %s: plugin %s failed: %s; the next hook runs", run->hook, p->name,
                     chatd_strerror(rc));
            metrics_hook(&run->srv->metrics, run->hook, p->name, METRICS_HOOK_FAILURE);
        }
    }
    run->advancing = 0;
    finish(run);
}

static void on_wait(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hook_run *run = arg;
    if (run->waiting) {
        const char *name = run->waiting->plugin->name;
        log_warn("hook %s: plugin %s did not resume within %lld ms; skipped, the next hook runs",
                 run->hook, name, (long long)run->srv->cfg->hook_timeout_ms);
        metrics_hook(&run->srv->metrics, run->hook, name, METRICS_HOOK_TIMEOUT);
        cut(run);
    }
    advance(run);
}

static int hook_serves(const struct hook_entry *e, const char *hook)
{
    return e->plugin->state == PLUGIN_RUNNING && strcmp(e->hook, hook) == 0;
}

int hooks_has(const struct server *srv, const char *hook)
{
    for (size_t i = 0; hook && i < srv->n_hooks; i++)
        if (hook_serves(&srv->hooks[i], hook))
            return 1;
    return 0;
}

int hooks_run(struct server *srv, struct chatd_plugin *runner, const char *hook, json_t *payload,
              chatd_hook_done_fn done, void *arg)
{
    if (!json_is_object(payload) || !hook || !*hook || strlen(hook) > HOOK_NAME_MAX) {
        json_decref(payload);
        return CHATD_EINVAL;
    }
    /* The hooks that will run: those of serving instances (one still in init is not
     * serving yet; its predecessor is). */
    size_t n = 0;
    for (size_t i = 0; i < srv->n_hooks; i++)
        n += hook_serves(&srv->hooks[i], hook);
    if (n == 0) {
        /* Nobody hooked this point (the usual case for each message): decided at once,
         * with nothing allocated. */
        if (done) {
            const struct chatd_hook_outcome none = {0, NULL, NULL};
            done(&none, payload, arg);
        }
        json_decref(payload);
        return 0;
    }
    struct hook_run *run = calloc(1, sizeof(*run));
    /* The deadline timer is made now, not when a hook defers: a deferral cannot fail
     * then, when the plugin already holds its handle. */
    if (!run || !(run->hook = strdup(hook)) || !(run->steps = calloc(n, sizeof(*run->steps))) ||
        !(run->wait = evtimer_new(srv->base, on_wait, run))) {
        if (run) {
            free(run->hook);
            free(run->steps);
        }
        free(run);
        json_decref(payload);
        return CHATD_ENOMEM;
    }
    for (size_t i = 0; i < srv->n_hooks; i++) {
        const struct hook_entry *e = &srv->hooks[i];
        if (!hook_serves(e, hook))
            continue;
        run->steps[run->n_steps++] =
            (struct hook_step){.plugin = e->plugin,
                               .fn = e->fn,
                               .arg = e->arg,
                               .priority = e->priority,
                               .position = enable_position(srv, e->plugin->name),
                               .seq = e->seq};
    }
    if (run->n_steps > 1)
        qsort(run->steps, run->n_steps, sizeof(*run->steps), step_order);
    run->srv = srv;
    run->payload = payload;
    run->runner = runner;
    run->done = done;
    run->done_arg = arg;
    run->observe = done == NULL;
    run->next_run = srv->hook_runs;
    if (srv->hook_runs)
        srv->hook_runs->prev = run;
    srv->hook_runs = run;
    if (runner)
        runner->pending_calls++;
    advance(run);
    return 0;
}

int hooks_refuse(struct chatd_hook_call *call, const char *result, const char *reason)
{
    if (!call || !result || !*result)
        return CHATD_EINVAL;
    struct hook_run *run = call->run;
    /* Only while the step is the run's current one: inside its function, or deferred. A
     * cut step (run NULL) is not: its refusal is ignored. */
    if (!run || run->refused || (!call->in_fn && run->waiting != call))
        return CHATD_ESTATE;
    /* Observe only: no effect, and the next hooks run. */
    if (run->observe)
        return 0;
    char *r = strdup(result);
    char *why = reason ? strdup(reason) : NULL;
    if (!r || (reason && !why)) {
        free(r);
        free(why);
        refuse_for_memory(run); /* still refused: a filter never fails open */
        return 0;
    }
    run->refused = 1;
    run->result = r;
    run->reason = why;
    return 0;
}

int hooks_resume(struct chatd_hook_call *call)
{
    if (!call)
        return 0;
    if (call->in_fn) {
        call->resumed = 1;
        return 0;
    }
    struct hook_run *run = call->run;
    if (!run) {
        /* Cut before: forget the handle. */
        struct server *srv = call->plugin->server;
        for (struct chatd_hook_call **at = &srv->hook_cut; *at; at = &(*at)->next_cut) {
            if (*at == call) {
                *at = call->next_cut;
                call_free(call);
                break;
            }
        }
        return 0;
    }
    if (run->waiting != call)
        return 0;
    run->waiting = NULL;
    evtimer_del(run->wait);
    call->plugin->pending_calls--;
    free(call);
    advance(run);
    return 0;
}

void hooks_retire_plugin(struct server *srv, struct chatd_plugin *p)
{
    size_t kept = 0;
    for (size_t i = 0; i < srv->n_hooks; i++) {
        if (srv->hooks[i].plugin == p)
            free(srv->hooks[i].hook);
        else
            srv->hooks[kept++] = srv->hooks[i];
    }
    srv->n_hooks = kept;
    for (struct hook_run *run = srv->hook_runs; run; run = run->next_run) {
        for (size_t i = run->next; i < run->n_steps; i++)
            if (run->steps[i].plugin == p)
                run->steps[i].plugin = NULL;
        if (run->waiting && run->waiting->plugin == p) {
            log_info("hook %s: plugin %s is unloading; the run goes on without it", run->hook,
                     p->name);
            cut(run);
            /* Go on from the loop, not inside whatever is retiring the plugin. The timer
             * was just taken off the heap, so adding it back needs no memory; should it
             * fail all the same, the run waits for its runner's stop. */
            static const struct timeval now = {0, 0};
            if (evtimer_add(run->wait, &now) != 0)
                log_error("hook %s: cannot schedule the run after plugin %s left it; it ends "
                          "when plugin %s is stopped",
                          run->hook, p->name, run->runner ? run->runner->name : "(host)");
        }
    }
}

void hooks_stop_plugin(struct server *srv, struct chatd_plugin *p)
{
    hooks_retire_plugin(srv, p);
    struct hook_run *run = srv->hook_runs;
    while (run) {
        struct hook_run *next = run->next_run;
        if (run->runner == p && !run->advancing) {
            if (run->waiting)
                cut(run);
            if (!run->refused) {
                run->refused = 1;
                run->result = strdup("shutdown");
                run->reason = strdup("chatd is unloading the plugin that ran the hook point");
            }
            finish(run);
            /* done may have started or ended other runs: start over. */
            next = srv->hook_runs;
        }
        run = next;
    }
}

void hooks_forget_plugin(struct server *srv, struct chatd_plugin *p)
{
    for (struct chatd_hook_call **at = &srv->hook_cut; *at;) {
        struct chatd_hook_call *call = *at;
        if (call->plugin == p) {
            *at = call->next_cut;
            call_free(call);
        } else {
            at = &call->next_cut;
        }
    }
    struct hook_run *run = srv->hook_runs;
    while (run) {
        struct hook_run *next = run->next_run;
        if (run->runner == p) {
            log_error("hook %s: run by plugin %s in its shutdown and still pending: its done "
                      "is not called",
                      run->hook, p->name);
            p->pending_calls--;
            run->runner = NULL;
            run->done = NULL;
            if (!run->advancing) {
                if (run->waiting)
                    cut(run);
                run_free(run);
            }
        }
        run = next;
    }
}

void hooks_presence_changed(struct server *srv, const char *user, int online)
{
    if (!srv->n_hooks)
        return;
    json_t *payload = json_pack("{ssss}", "user", user, "status", online ? "online" : "offline");
    if (payload)
        hooks_run(srv, NULL, CHATD_HOOK_PRESENCE_CHANGED, payload, NULL, NULL);
}

void hooks_free_all(struct server *srv)
{
    /* Every plugin is closed: no plugin counter may be touched any more. */
    while (srv->hook_runs) {
        call_free(srv->hook_runs->waiting);
        run_free(srv->hook_runs);
    }
    while (srv->hook_cut) {
        struct chatd_hook_call *call = srv->hook_cut;
        srv->hook_cut = call->next_cut;
        call_free(call);
    }
    for (size_t i = 0; i < srv->n_hooks; i++)
        free(srv->hooks[i].hook);
    free(srv->hooks);
    srv->hooks = NULL;
    srv->n_hooks = 0;
}
