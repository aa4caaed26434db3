/* output.h - getting sessions' queued lines onto the network.
 *
 * Lines are appended to a session's bufferevent output during a loop turn; at the end
 * of the turn one callback writes each such session's output through its transport
 * (plain TCP: straight to its socket; TLS leaves it to the bufferevent, transport.h).
 * Only what the socket does not take arms the bufferevent's write event, and with it
 * the write timeout. A session that keeps up with its output thus costs one writev per
 * loop turn and no epoll_ctl at all, where libevent's own path arms and disarms the
 * write event around every flush. */
#ifndef CHATD_OUTPUT_H
#define CHATD_OUTPUT_H

struct server;
struct session;

/* Create the end-of-turn flush callback and the sweep of idle sessions' output
 * buffers. Returns 0, or -1 when out of memory. */
int output_init(struct server *srv);
void output_free(struct server *srv);

/* s has new output and no armed write event: write it at the end of this turn. */
void output_queue(struct session *s);

/* s's output is all written: for a transport whose bufferevent only holds output
 * (transport.h, output_new), free it if it stays empty until the next sweep but one. */
void output_emptied(struct session *s);

/* Forget s (it is being freed). */
void output_unqueue(struct session *s);

#endif
