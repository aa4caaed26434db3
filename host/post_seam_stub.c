/* post_seam_stub.c - TEMPORARY: the write side's post_store_rows (post.h) until helper
 * post's branch is merged, which implements it and deletes this file. */
#include "post.h"

#include "log.h"

void post_store_rows(struct server *srv, const char *user, const int64_t *ids, size_t n)
{
    (void)srv;
    (void)ids;
    log_warn("%zu timeline rows for %s not written: the write side is not merged yet", n, user);
}
