/* plugin_trial.h - the trial-load child: a plugin checked in a child process, so that its
 * code (its constructors) never runs in chatd itself (--check-plugin, reload). */
#ifndef CHATD_HOST_PLUGIN_TRIAL_H
#define CHATD_HOST_PLUGIN_TRIAL_H

#include <stddef.h>

/* How long a plugin's trial load in a child process may take. */
#define PLUGIN_TRIAL_TIMEOUT_MS 10000

/* Run try_it(arg, reason, cap) in a child process, so that a plugin's code (its
 * constructors) runs there and never in chatd: 0 when it returned 0, or -1 with its
 * reason (or why the child failed) in err. A child that takes longer than
 * PLUGIN_TRIAL_TIMEOUT_MS is killed and counts as a refusal. */
int plugin_trial(int (*try_it)(void *arg, char *reason, size_t cap), void *arg, char *err,
                 size_t errlen);

#endif
