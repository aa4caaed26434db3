/* accounts_client.c - the accounts service as its users (friends, private_chat) call it:
 * found and held on the loop thread for one job, asked on the worker inside that job
 * with the job's own connection, and released in the job's done. */
#include "common.h"

#include "chatd_accounts.h"

int chat_accounts_acquire(const struct chatd_host *host, struct chatd_plugin *self,
                          struct chatd_service *svc)
{
    int rc = host->service_get(self, CHATD_ACCOUNTS_SERVICE, CHATD_ACCOUNTS_VERSION, svc);
    if (rc == 0)
        rc = host->service_hold(self, svc);
    if (rc != 0)
        host->log(self, CHATD_LOG_ERROR, "the accounts service is not available: %s",
                  chatd_strerror(rc));
    return rc;
}

int chat_accounts_user_exists(const struct chatd_service *svc, struct chatd_db *db,
                              const char *user)
{
    const struct chatd_accounts_v1 *accounts = svc->fns;
    return accounts->user_exists(svc->instance, db, user);
}

void chat_accounts_release(const struct chatd_host *host, struct chatd_plugin *self,
                           struct chatd_service *svc)
{
    host->service_release(self, svc);
}
