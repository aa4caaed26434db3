/* fuzz_framer.c - the framer as a session drives it: the stream arrives in pieces of
 * random sizes, the consumed bytes are dropped from the front of the pending input, and
 * every frame must lie inside that input and within the size limit. The same stream fed
 * in one piece must give the same frames at the same stream offsets: where a read
 * happens to split the bytes may never change what the server sees. */
#include "framer.h"

#include "fuzz_check.h"

#include <string.h>

/* What one framer_next call produced, in offsets of the whole stream. */
struct event {
    enum framer_status status;
    size_t offset, len;
};

struct run {
    struct event *events;
    size_t n;
};

static void record(struct run *run, enum framer_status status, size_t offset, size_t len)
{
    struct event *grown = realloc(run->events, (run->n + 1) * sizeof(*grown));
    FUZZ_CHECK(grown != NULL);
    run->events = grown;
    run->events[run->n++] = (struct event){status, offset, len};
}

/* Feed stream[0..len) to a framer in pieces whose sizes come from `sizes` (cycled; an
 * empty `sizes` means one piece), recording every frame and the final status. */
static void feed(const char *stream, size_t len, size_t max_frame, const uint8_t *sizes,
                 size_t n_sizes, struct run *run)
{
    struct framer framer;
    framer_init(&framer, max_frame);
    size_t dropped = 0;  /* stream offset of pending[0] */
    size_t received = 0; /* bytes of the stream appended so far */
    enum framer_status status = FRAMER_NEED_MORE;
    for (size_t piece = 0; received < len; piece++) {
        size_t take = n_sizes ? (size_t)sizes[piece % n_sizes] + 1 : len;
        if (take > len - received)
            take = len - received;
        received += take;
        /* A copy of exactly the pending bytes, so ASan sees any read past them. */
        size_t pending_len = received - dropped;
        char *pending = malloc(pending_len ? pending_len : 1);
        FUZZ_CHECK(pending != NULL);
        memcpy(pending, stream + dropped, pending_len);
        size_t used = 0;
        for (;;) {
            struct frame frame;
            status = framer_next(&framer, pending + used, pending_len - used, &frame);
            FUZZ_CHECK(frame.consumed <= pending_len - used);
            if (status == FRAMER_READY) {
                const char *from = pending + used;
                FUZZ_CHECK(frame.len > 0 && frame.len <= max_frame);
                FUZZ_CHECK(frame.data >= from && frame.data + frame.len <= from + frame.consumed);
                record(run, status, dropped + used + (size_t)(frame.data - from), frame.len);
            }
            used += frame.consumed;
            if (status != FRAMER_READY)
                break;
        }
        free(pending);
        dropped += used;
        if (status == FRAMER_TOO_LARGE || status == FRAMER_BAD)
            break;
    }
    record(run, status, 0, 0);
}

/* Input: one byte choosing the frame limit, a length byte n, n piece sizes, then the
 * stream. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t max_frame = data[0] < 128 ? (size_t)data[0] + 1 : 65536;
    size_t n_sizes = data[1] % 16;
    if (size < 2 + n_sizes)
        return 0;
    const uint8_t *sizes = data + 2;
    const char *stream = (const char *)data + 2 + n_sizes;
    size_t len = size - 2 - n_sizes;

    struct run pieces = {0}, whole = {0};
    feed(stream, len, max_frame, sizes, n_sizes, &pieces);
    feed(stream, len, max_frame, NULL, 0, &whole);
    FUZZ_CHECK(pieces.n == whole.n);
    for (size_t i = 0; i < whole.n; i++) {
        FUZZ_CHECK(pieces.events[i].status == whole.events[i].status);
        FUZZ_CHECK(pieces.events[i].offset == whole.events[i].offset);
        FUZZ_CHECK(pieces.events[i].len == whole.events[i].len);
    }
    free(pieces.events);
    free(whole.events);
    return 0;
}
