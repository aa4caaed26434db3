/* dispatch.h - from one frame to a command handler (dispatch.c). Loop thread only. */
#ifndef CHATD_HOST_DISPATCH_H
#define CHATD_HOST_DISPATCH_H

#include <stddef.h>

struct session;

/* Parse one frame a session read and route it to its command's handler, or answer it
 * with a generic error. */
void dispatch_frame(struct session *s, const char *data, size_t len);

/* Start the request that waited (not pipelined) for the pipelined ones before it,
 * once they are all done (s->n_inflight is 1: itself). */
void dispatch_parked(struct session *s);

#endif
