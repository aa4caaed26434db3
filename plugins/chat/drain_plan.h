/* drain_plan.h - the order in which a drain batch sends stored messages: the pure part
 * of offline delivery, kept apart so unit tests can check it without a server. */
#ifndef CHATD_PLUGIN_CHAT_DRAIN_PLAN_H
#define CHATD_PLUGIN_CHAT_DRAIN_PLAN_H

#include <stddef.h>
#include <stdint.h>

/* What the plan needs of one stored message. */
struct plan_item {
    int64_t ts;
    size_t bytes;
};

/* Merge two lists, each in id order (private messages, then group messages), oldest
 * first by ts. A list that came back full (`batch` items) may continue in the next
 * batch, so nothing newer than its last item is taken now. Stop once more than
 * `byte_budget` bytes are taken, but always take at least one item. Writes the chosen
 * items' indexes (into the concatenation priv..., grp...) to order, returns how many,
 * and sets *more when another batch is due. */
size_t drain_plan(const struct plan_item *priv, size_t n_priv, const struct plan_item *grp,
                  size_t n_grp, size_t batch, size_t byte_budget, size_t *order, int *more);

#endif
