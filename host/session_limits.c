/* session_limits.c - a session's output pause level and its deadlines (see
 * session_limits.h).
 *
 * One timer per session serves both deadlines, armed for the nearer one. The hot path
 * only notes when a frame starts to wait for its rest (session_frame_waits, after a read
 * that ended inside a value) and forgets it when the frame completes; the timer is
 * re-armed only when it fires. So a client that pipelines steadily costs at most one
 * timer insertion per frame_timeout, not one per read. The timer exists only while a
 * deadline may be running: made when one starts, freed when it fires with none left or
 * at the login when no frame waits, so an idle logged-in session holds none. */
#include "session_limits.h"

#include "clock.h"
#include "config.h"
#include "log.h"
#include "server.h"
#include "session.h"

#include <event2/event.h>
#include <stdio.h>

size_t session_output_pause(const struct config *cfg)
{
    size_t pause = (size_t)cfg->output_pause_bytes, half = (size_t)cfg->max_output_bytes / 2;
    return pause < half ? pause : half;
}

size_t session_output_resume(const struct config *cfg)
{
    return session_output_pause(cfg) / 2;
}

static int64_t now_ms(void)
{
    return now_ns() / 1000000;
}

static void on_deadline(evutil_socket_t fd, short what, void *arg);

/* Make the timer fire at `at` unless it fires sooner already. -1 when out of memory. */
static int deadline_arm(struct session *s, int64_t at)
{
    if (s->deadline_at_ms && s->deadline_at_ms <= at)
        return 0;
    if (!s->deadline_ev && !(s->deadline_ev = evtimer_new(s->server->base, on_deadline, s)))
        return -1;
    int64_t wait = at - now_ms();
    if (wait < 0)
        wait = 0;
    struct timeval tv = {(time_t)(wait / 1000), (suseconds_t)(wait % 1000) * 1000};
    if (event_add(s->deadline_ev, &tv) < 0)
        return -1;
    s->deadline_at_ms = at;
    return 0;
}

/* Tell the client why, then close once that line is flushed. */
static void expire(struct session *s, const char *reason, const char *why, uint64_t *counter)
{
    log_info("session %llu (%s) disconnected: %s", (unsigned long long)s->id, s->peer, reason);
    (*counter)++;
    session_send_error(s, "timeout", NULL, NULL, reason);
    session_close_after_flush(s, why);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct session *s = arg;
    s->deadline_at_ms = 0;
    if (s->dead || s->closing)
        return;
    const struct config *cfg = s->server->cfg;
    struct metrics *m = &s->server->metrics;
    int64_t now = now_ms(), next = 0;
    char reason[96];
    if (s->partial_since_ms && cfg->frame_timeout_s > 0) {
        /* The frame's clock runs only while chatd waits for the client: a session held
         * back (a request in flight, replies unread) starts it again. */
        if (!s->reading)
            s->partial_since_ms = now;
        next = s->partial_since_ms + cfg->frame_timeout_s * 1000;
        if (now >= next) {
            snprintf(reason, sizeof(reason), "a request was begun but not completed within %llds",
                     (long long)cfg->frame_timeout_s);
            expire(s, reason, "frame timeout", &m->disconnects_frame_timeout);
            return;
        }
    }
    if (s->login_by_ms && now >= s->login_by_ms) {
        if (!s->n_inflight) {
            snprintf(reason, sizeof(reason), "not logged in within %llds",
                     (long long)cfg->login_timeout_s);
            expire(s, reason, "login timeout", &m->disconnects_login_timeout);
            return;
        }
        s->login_by_ms = now + 1000; /* the request in flight (a login?) is answered first */
    }
    if (s->login_by_ms && (!next || s->login_by_ms < next))
        next = s->login_by_ms;
    if (next)
        deadline_arm(s, next); /* the timer exists: cannot fail */
    else
        session_deadlines_free(s); /* none left (libevent allows it in the callback) */
}

int session_deadlines_start(struct session *s)
{
    int64_t login = s->server->cfg->login_timeout_s;
    if (login <= 0)
        return 0;
    s->login_by_ms = now_ms() + login * 1000;
    return deadline_arm(s, s->login_by_ms);
}

void session_deadlines_logged_in(struct session *s)
{
    s->login_by_ms = 0;
    if (!s->partial_since_ms)
        session_deadlines_free(s);
}

void session_deadlines_free(struct session *s)
{
    if (s->deadline_ev)
        event_free(s->deadline_ev);
    s->deadline_ev = NULL;
    s->deadline_at_ms = 0;
}

void session_frame_waits(struct session *s)
{
    int64_t timeout = s->server->cfg->frame_timeout_s;
    if (timeout <= 0 || s->partial_since_ms)
        return;
    s->partial_since_ms = now_ms();
    if (deadline_arm(s, s->partial_since_ms + timeout * 1000) < 0) {
        log_error("session %llu (%s): out of memory for its frame deadline",
                  (unsigned long long)s->id, s->peer);
        session_close(s, "out of memory");
    }
}
