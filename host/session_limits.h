/* session_limits.h - what bounds one session's memory and time (session_limits.c): the
 * output level at which it takes no more requests, and the deadlines to complete a
 * begun frame and to log in (slowloris). Loop thread only. */
#ifndef CHATD_HOST_SESSION_LIMITS_H
#define CHATD_HOST_SESSION_LIMITS_H

#include <stddef.h>

struct config;
struct session;

/* Unsent output from which a session takes no more requests: output_pause_bytes, but
 * at most half of max_output_bytes, so that its own replies never get it disconnected. */
size_t session_output_pause(const struct config *cfg);
/* The output level at which a paused session takes requests again. */
size_t session_output_resume(const struct config *cfg);

/* A new session: start the login deadline, which its first login ends
 * (session_deadlines_logged_in). Returns 0, or -1 when out of memory. */
int session_deadlines_start(struct session *s);
/* The session logged in: no login deadline any more, and no timer while no frame waits
 * for its rest (an idle logged-in session holds none). */
void session_deadlines_logged_in(struct session *s);
void session_deadlines_free(struct session *s);

/* The session waits for the rest of a begun frame (its input ends inside a value):
 * start that frame's deadline unless it runs already (closing the session when out of
 * memory for its timer). The read loop forgets it (partial_since_ms = 0) whenever a
 * frame completes. */
void session_frame_waits(struct session *s);

#endif
