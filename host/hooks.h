/* hooks.h - hook points (ABI 1.2): functions plugins add for a named point in init, and
 * runs of a point through them in order, each able to rewrite the payload, refuse, or
 * decide later (defer, then hook_resume), with failures and slow hooks skipped, logged
 * and counted. Loop thread only.
 *
 * Lifetimes. A run pins the plugin that started it (pending_calls) until its done has
 * run, and a deferring hook's plugin until it resumes or its deferral is cut (timed out,
 * or its plugin retired or closed). The handle a hook function gets (struct
 * chatd_hook_call) is its own for that one step: after a deferral was cut, a late
 * hook_resume finds it still valid (and ignores it) until its plugin is closed, and the
 * payload that plugin was given stays allocated as long (the run went on with a copy). */
#ifndef CHATD_HOST_HOOKS_H
#define CHATD_HOST_HOOKS_H

#include <chatd/plugin.h>

struct server;

/* The longest hook point name, in bytes. */
#define HOOK_NAME_MAX 64

/* hook_add: add fn for point `hook` of plugin p (in init; the caller checks the state).
 * `arg` is passed as is (the caller applied the instance rule). 0, CHATD_EINVAL for an
 * empty or over-long name or no fn, CHATD_ENOMEM. */
int hooks_add(struct server *srv, struct chatd_plugin *p, const char *hook, int priority,
              chatd_hook_fn fn, void *arg);

/* hook_has: non-zero when a serving plugin has a hook on `hook`. */
int hooks_has(const struct server *srv, const char *hook);

/* hook_run: run point `hook` with `payload` (taken) through its hooks, then call done
 * (may be NULL: an observe-only run) exactly once, possibly before this returns. Hook
 * functions that keep the loop over 50 ms are logged and counted (slow). `runner` is the plugin
 * that runs the point, or NULL for the host itself. 0, or CHATD_EINVAL (payload not an object, bad
 * name) / CHATD_ENOMEM, with done not called. */
int hooks_run(struct server *srv, struct chatd_plugin *runner, const char *hook, json_t *payload,
              chatd_hook_done_fn done, void *arg);

/* hook_refuse: decide the run of `call` as refused with result (a word) and reason. 0,
 * CHATD_EINVAL without a result, CHATD_ESTATE when the run is already decided, the step
 * is over or its deferral was cut (ignored). On an observe-only run (done NULL) it is 0
 * and has no effect: the next hooks run. */
int hooks_refuse(struct chatd_hook_call *call, const char *result, const char *reason);

/* hook_resume: the step of `call` is done; the run goes on. Always 0: a call whose
 * deferral was cut meanwhile is freed (with the payload it kept) and otherwise ignored. */
int hooks_resume(struct chatd_hook_call *call);

/* p is being retired: its hooks leave every point and every run not yet past them, and
 * its pending deferrals are cut (the runs go on from the loop, as after a timeout). */
void hooks_retire_plugin(struct server *srv, struct chatd_plugin *p);

/* p is about to be shut down (after hooks_retire_plugin's work, which this repeats):
 * runs it started that are still pending end at once, done called with the refusal
 * "shutdown", so that done never runs after shutdown. */
void hooks_stop_plugin(struct server *srv, struct chatd_plugin *p);

/* p's shutdown has run: free what is left of it (cut steps it never resumed; runs it
 * started during shutdown, whose done is then lost, logged). */
void hooks_forget_plugin(struct server *srv, struct chatd_plugin *p);

/* The host runs presence.changed: {"user":user,"status":"online"|"offline"}. */
void hooks_presence_changed(struct server *srv, const char *user, int online);

/* Free every hook and run left (server teardown, after every plugin was closed). */
void hooks_free_all(struct server *srv);

#endif
