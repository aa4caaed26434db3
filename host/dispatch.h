/* dispatch.h - from one frame to a command handler (dispatch.c). Loop thread only. */
#ifndef CHATD_HOST_DISPATCH_H
#define CHATD_HOST_DISPATCH_H

#include <stddef.h>

struct parsed_frame;
struct session;

/* Parse one frame a session read and route it to its command's handler, or answer it
 * with a generic error. */
void dispatch_frame(struct session *s, const char *data, size_t len);
/* The same for a frame parsed already (on an I/O thread): takes frame->body. */
void dispatch_parsed(struct session *s, struct parsed_frame *frame);

/* Start the request that waited (not pipelined) for the pipelined ones before it,
 * once they are all done (s->n_inflight is 1: itself). */
void dispatch_parked(struct session *s);

#endif
