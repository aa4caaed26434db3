/* chatd/accounts.h - the "accounts" service of the accounts plugin, version 1: what
 * other plugins may ask about accounts without reading its tables.
 *
 * A plugin that uses it lists "accounts" in its descriptor's `requires`, finds it with
 * service_get(self, CHATD_ACCOUNTS_SERVICE, CHATD_ACCOUNTS_VERSION, &svc), and, to call it
 * from a job or across callbacks, holds it (service_hold) until the job's done has
 * called service_release. Every function takes the provider's instance (svc.instance)
 * first. Later versions only append members. */
#ifndef CHATD_ACCOUNTS_H
#define CHATD_ACCOUNTS_H

#include <chatd/plugin.h>

#define CHATD_ACCOUNTS_SERVICE "accounts"
#define CHATD_ACCOUNTS_VERSION 1

struct chatd_accounts_v1 {
    /** Worker thread, inside the caller's own CHATD_JOB_DB job, on its connection `db`:
     *  1 when `user` has an account, 0 when not (also for a name that breaks the name
     *  rule), <0 a CHATD_E* error (CHATD_EDB...). */
    int (*user_exists)(void *instance, struct chatd_db *db, const char *user);
    /** Loop thread: the same question in a job of the accounts plugin; cb(1 | 0 | <0,
     *  arg) runs exactly once on the loop thread, possibly before this returns (for a
     *  name that breaks the rule, or when the job could not be submitted: CHATD_EBUSY...).
     *  Returns 0, or CHATD_ENOMEM / CHATD_EINVAL when cb will not be called. Hold the
     *  service until cb has run. */
    int (*user_exists_async)(void *instance, const char *user,
                             void (*cb)(int exists_or_error, void *arg), void *arg);
};

#endif
