/* descriptors.c - fitting the connection limits under RLIMIT_NOFILE. Without it, connections
 * of one kind (admin clients, say) could take the descriptors the other kind was promised,
 * and accept() would fail for chat clients long before [server] max_connections. */
#include "descriptors.h"

#include "config.h"

#include <stdio.h>
#include <sys/resource.h>

int64_t descriptors_needed(const struct config *cfg)
{
    int64_t need = cfg->max_connections + DESCRIPTORS_SPARE + (int64_t)cfg->n_listeners;
    if (cfg->admin_enable)
        need += cfg->admin_max_connections + 1; /* and its listening socket */
    if (cfg->db.enable)
        need += cfg->db.workers + 1; /* one connection each, and the health watchdog's */
    return need;
}

int descriptors_reserve(const struct config *cfg, char *err, size_t errlen)
{
    int64_t need = descriptors_needed(cfg);
    struct rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) < 0)
        return 0; /* nothing to go by */
    if (lim.rlim_cur == RLIM_INFINITY || (int64_t)lim.rlim_cur >= need)
        return 0;
    if (lim.rlim_max == RLIM_INFINITY || (int64_t)lim.rlim_max >= need) {
        struct rlimit raised = {(rlim_t)need, lim.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
            return 0;
    }
    char admin[64] = "";
    if (cfg->admin_enable)
        snprintf(admin, sizeof(admin), " + [admin] max_connections (%lld)",
                 (long long)cfg->admin_max_connections);
    snprintf(err, errlen,
             "[server] max_connections (%lld)%s + about %lld for the listeners, the database "
             "and files need %lld file descriptors, but RLIMIT_NOFILE allows %llu (hard limit "
             "%llu): lower max_connections or raise the limit (ulimit -n, systemd "
             "LimitNOFILE=)",
             (long long)cfg->max_connections, admin,
             (long long)(need - cfg->max_connections -
                         (cfg->admin_enable ? cfg->admin_max_connections : 0)),
             (long long)need, (unsigned long long)lim.rlim_cur, (unsigned long long)lim.rlim_max);
    return -1;
}
