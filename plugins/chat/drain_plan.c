/* drain_plan.c - see drain_plan.h. */
#include "drain_plan.h"

size_t drain_plan(const struct plan_item *priv, size_t n_priv, const struct plan_item *grp,
                  size_t n_grp, size_t batch, size_t byte_budget, size_t *order, int *more)
{
    int64_t cutoff = INT64_MAX;
    if (n_priv == batch && n_priv > 0)
        cutoff = priv[n_priv - 1].ts;
    if (n_grp == batch && n_grp > 0 && grp[n_grp - 1].ts < cutoff)
        cutoff = grp[n_grp - 1].ts;
    *more = n_priv == batch || n_grp == batch;

    size_t p = 0, g = 0, n = 0, bytes = 0;
    while (p < n_priv || g < n_grp) {
        int take_private = g >= n_grp || (p < n_priv && priv[p].ts <= grp[g].ts);
        const struct plan_item *it = take_private ? &priv[p] : &grp[g];
        /* At least one per batch, whatever the clocks say: a batch that takes nothing
         * would never end the backlog. */
        if (n > 0 && (it->ts > cutoff || bytes > byte_budget)) {
            *more = 1;
            break;
        }
        order[n++] = take_private ? p++ : n_priv + g++;
        bytes += it->bytes;
    }
    return n;
}
