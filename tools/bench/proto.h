/* proto.h - the little of the wire protocol the bench reads and writes without a JSON
 * parser. The server writes one compact JSON object per line; the bench looks for the
 * fields it needs by their exact text ("cmd":"...), which is safe because the values it
 * looks into are names and texts it chose itself (no quotes inside).
 *
 * Message texts (for every --target) are "b FROM SEQ SENT_NS" (plus padding): the sender's user
 * number, its message number, and the send time on this process's monotonic clock. */
#ifndef CHATD_BENCH_PROTO_H
#define CHATD_BENCH_PROTO_H

#include <stddef.h>
#include <stdint.h>

/* The value of the line's "cmd" (not NUL-terminated; its length in *n), or NULL. */
const char *proto_cmd(const char *line, size_t len, size_t *n);

/* Whether the cmd value (from proto_cmd) is `want`. */
int proto_cmd_is(const char *cmd, size_t n, const char *want);

/* Whether the line's "result" is `word`. */
int proto_result_is(const char *line, size_t len, const char *word);

/* Whether the line has the string `needle`. */
int proto_has(const char *line, size_t len, const char *needle);

struct proto_msg {
    int from;
    uint64_t seq;
    int64_t sent_ns;
};

/* Where the value of a chatd line's "text" starts (its length at most in *n), or NULL. */
const char *proto_text(const char *line, size_t len, size_t *n);

/* Read a bench text ("b FROM SEQ SENT_NS", then anything) from the first len bytes at
 * text. Returns 0, or -1 if it is none. */
int proto_parse_msg(const char *text, size_t len, struct proto_msg *m);

/* Write a bench text for message seq of user `from`, sent at sent_ns, padded with 'x'
 * to about pad bytes, at out (room for 64 + pad bytes). Returns its length. */
size_t proto_put_msg(char *out, int from, uint64_t seq, int64_t sent_ns, int pad);

/* Write n in decimal at out; returns the number of digits (at most 20). */
size_t proto_put_u64(char *out, uint64_t n);

#endif
