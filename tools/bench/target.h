/* target.h - the servers chatd-bench can load (--target): chatd itself, and two peers
 * it is compared with, Redis pub/sub and an IRC server (InspIRCd). The private, group
 * and idle workloads run the same engine (traffic.c, setup.c) against each; a target
 * says how a session is set up, how a message is sent, and what a line it receives
 * means. Texts are the same for all ("b FROM SEQ SENT_NS", proto.h), so lost,
 * duplicated and latency are exact everywhere.
 *
 * Every target reads every line it receives, as a client of that protocol would: chatd's
 * JSON lines by the fields the bench needs (proto.c), RESP3 through a reader of its
 * types (resp.c), IRC lines by prefix, command and parameters (target_irc.c). */
#ifndef CHATD_BENCH_TARGET_H
#define CHATD_BENCH_TARGET_H

#include "bench.h"
#include "peer.h"
#include "setup.h"

#include <stddef.h>

struct traffic;

/* What a received line is to the message engine. */
enum wire_event {
    WIRE_OTHER,    /* not part of the measurement (presence, numerics, ...) */
    WIRE_REPLY,    /* the answer to the sender's oldest request in flight */
    WIRE_DELIVERY, /* a message; its text is at *text */
};

struct target {
    const char *name;
    /* 1: every request is answered in order (chatd's reply, Redis's integer). 0: nothing
     * answers (IRC): a message counts as answered when it reaches its designated
     * receiver, user (sender + 1) mod N, which in the private ring is its recipient and
     * in a group the member after the sender. */
    int replies;
    /* 1: a group message reaches its sender too (a Redis publisher subscribed to the
     * channel gets its own message; that is work the server does, and it counts). */
    int echoes_group;
    /* Before any session: users 0..n-1 exist (chatd registers them). May be NULL. */
    void (*prepare)(struct bench *b, int n, struct setup_figures *f);
    /* Each session's step once connected, after which it can send, and receives what is
     * sent to its user (setup_sessions). */
    const struct setup_step *session;
    /* The group's: its first member's step (NULL: it joins like the others), then every
     * other member's (setup_each). The group is group_name(). */
    const struct setup_step *create, *join;
    /* The fixed start of a message request to user `to` (or to the group), at most 127
     * bytes: what goes before the text (traffic_set_sender keeps it per sender). */
    void (*private_head)(struct bench *b, int to, char *out);
    void (*group_head)(struct bench *b, char *out);
    /* What goes between the head and a text of text_len bytes (at most 96 bytes, at out;
     * NULL: nothing), and after the text. */
    size_t (*before_text)(struct traffic *t, struct peer *p, size_t text_len, char *out);
    const char *after_text;
    /* Read one received line; *ok (WIRE_REPLY) says whether the request was accepted,
     * *text and *text_len (WIRE_DELIVERY) where the bench text starts and its length
     * at most. Exits on an error from the server. */
    enum wire_event (*line)(struct traffic *t, struct peer *p, char *line, size_t len, int *ok,
                            const char **text, size_t *text_len);
};

extern const struct target target_chatd, target_redis, target_irc;

/* The target named by --target (options.c has checked the name). */
const struct target *target_of(const struct bench *b);

#endif
