/* transport_tls.c - TLS through libevent's OpenSSL bufferevent: it does the handshake,
 * reads and decrypts into its input buffer while the session reads, and encrypts and
 * writes its output. The session takes its bytes from that input buffer; s->read_ev has
 * no socket and is only made active, so that input, its end and the idle timeout reach
 * session.c the way the plain transport's read event does.
 *
 * The bufferevent's read timeout is the handshake deadline until the handshake is done,
 * then the idle limit; the session's own output rules (watermarks, write timeout, slow
 * readers) are the same as for plain TCP. */
#include "transport.h"

#include "log.h"
#include "server.h"
#include "session.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

void transport_tls_error(struct bufferevent *bev, char *reason, size_t cap)
{
    unsigned long e = bufferevent_get_openssl_error(bev);
    if (e)
        ERR_error_string_n(e, reason, cap);
    while (bufferevent_get_openssl_error(bev))
        ;
}

static int tls_open(struct session *s, evutil_socket_t fd, event_callback_fn on_input)
{
    struct server *srv = s->server;
    SSL *ssl = srv->tls_ctx ? SSL_new(srv->tls_ctx) : NULL;
    s->bev = ssl ? bufferevent_openssl_socket_new(srv->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                  BEV_OPT_CLOSE_ON_FREE)
                 : NULL;
    s->read_ev = s->bev ? event_new(srv->base, -1, 0, on_input, s) : NULL;
    if (s->read_ev) {
        /* A client that closes its socket without a TLS close_notify has ended its
         * stream like a plain one: its last requests are still answered. */
        bufferevent_openssl_set_allow_dirty_shutdown(s->bev, 1);
        return 0;
    }
    if (s->bev) {
        bufferevent_free(s->bev); /* frees ssl and closes fd */
        s->bev = NULL;
        return -1;
    }
    if (ssl)
        SSL_free(ssl);
    evutil_closesocket(fd);
    return -1;
}

static int handshake_done(const struct session *s)
{
    return SSL_is_init_finished(bufferevent_openssl_get_ssl(s->bev));
}

static void set_read_timeout(struct session *s, const struct timeval *idle)
{
    const struct config *cfg = s->server->cfg;
    struct timeval handshake = {(time_t)cfg->tls.handshake_timeout_s, 0};
    struct timeval idle_limit = {(time_t)cfg->idle_timeout_s, 0};
    const struct timeval *write_limit = cfg->idle_timeout_s > 0 ? &idle_limit : NULL;
    bufferevent_set_timeouts(s->bev, handshake_done(s) ? idle : &handshake, write_limit);
}

static int tls_read_on(struct session *s, const struct timeval *idle)
{
    set_read_timeout(s, idle);
    return bufferevent_enable(s->bev, EV_READ);
}

/* The bufferevent writes by itself once its write event is armed (session_wrote). */
static int tls_write(struct session *s, struct evbuffer *out)
{
    (void)s;
    (void)out;
    return 0;
}

/* Best effort, without waiting: tell the client the stream ends here (close_notify),
 * so that it can tell our close from a cut connection. */
static void tls_close(struct session *s)
{
    SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
    if (SSL_is_init_finished(ssl))
        SSL_shutdown(ssl);
    ERR_clear_error();
}

static void say_established(struct session *s)
{
    SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
    log_debug("session %llu (%s): %s established, %s", (unsigned long long)s->id, s->peer,
              SSL_get_version(ssl), SSL_get_cipher_name(ssl));
}

static int tls_on_bev_event(struct session *s, short what)
{
    if (what & BEV_EVENT_CONNECTED) {
        say_established(s);
        if (s->reading) {
            struct timeval idle = {(time_t)s->server->cfg->idle_timeout_s, 0};
            set_read_timeout(s, idle.tv_sec > 0 ? &idle : NULL);
        }
        return 1;
    }
    if (!handshake_done(s) && (what & (BEV_EVENT_TIMEOUT | BEV_EVENT_ERROR | BEV_EVENT_EOF))) {
        char reason[256] = "connection closed";
        if (what & BEV_EVENT_TIMEOUT)
            snprintf(reason, sizeof(reason), "not finished within %llds",
                     (long long)s->server->cfg->tls.handshake_timeout_s);
        transport_tls_error(s->bev, reason, sizeof(reason));
        log_info("TLS handshake with %s failed: %s", s->peer, reason);
        session_close(s, "TLS handshake failed");
        return 1;
    }
    if (transport_bev_read_end(s, what))
        return 1;
    if (what & BEV_EVENT_ERROR) {
        char reason[256] = "";
        transport_tls_error(s->bev, reason, sizeof(reason));
        if (reason[0]) {
            session_close(s, reason);
            return 1;
        }
    }
    return 0; /* output: session.c's */
}

const struct transport transport_tls = {
    .name = "tls",
    .open = tls_open,
    .on_bev_read = transport_bev_on_read,
    .on_bev_event = tls_on_bev_event,
    .read_on = tls_read_on,
    .read_off = transport_bev_read_off,
    .read = transport_bev_read,
    .write = tls_write,
    .close = tls_close,
};
