/* test_framer.c - Check suite for the JSON stream framer (host/framer.c). */
#include "framer.h"

#include "run_suite.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FRAMES 64

/* A caller that follows the framer's protocol exactly: it keeps a buffer of pending
 * input, calls framer_next on it, drops frame.consumed bytes from the front after every
 * call (READY or NEED_MORE), and appends new bytes before calling again. It records
 * every READY frame and the status that stopped the stream, so two ways of feeding the
 * same bytes can be compared. */
struct feeder {
    struct framer framer;
    char *pending;
    size_t pending_len;
    size_t pending_cap;
    char *frame_bytes; /* every READY frame, back to back */
    size_t frame_bytes_len;
    size_t frame_bytes_cap;
    size_t frame_off[MAX_FRAMES];
    size_t frame_len[MAX_FRAMES];
    size_t frames;
    enum framer_status stopped; /* NEED_MORE while the stream is alive */
    size_t examined;            /* sum over calls of the bytes past framer.pos */
    size_t fed;
};

static void *xrealloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (!p)
        ck_abort_msg("out of memory");
    return p;
}

static void reserve(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return;
    size_t cap2 = *cap ? *cap : 64;
    while (cap2 < need)
        cap2 *= 2;
    *buf = xrealloc(*buf, cap2);
    *cap = cap2;
}

static void feeder_init(struct feeder *f, size_t max_frame)
{
    memset(f, 0, sizeof(*f));
    framer_init(&f->framer, max_frame);
    f->stopped = FRAMER_NEED_MORE;
    reserve(&f->pending, &f->pending_cap, 64);
}

static void feeder_free(struct feeder *f)
{
    free(f->pending);
    free(f->frame_bytes);
}

static void record_frame(struct feeder *f, const struct frame *frame)
{
    /* Assertions in per-byte paths use ck_abort_msg only on failure: a passing
     * ck_assert writes a checkpoint to the parent in fork mode, which is slow. */
    if (f->frames == MAX_FRAMES)
        ck_abort_msg("more than %d frames", MAX_FRAMES);
    if (frame->len == 0)
        ck_abort_msg("READY with an empty frame");
    if (frame->data < f->pending || frame->data + frame->len > f->pending + frame->consumed)
        ck_abort_msg("frame is not inside the consumed part of the buffer");
    reserve(&f->frame_bytes, &f->frame_bytes_cap, f->frame_bytes_len + frame->len);
    memcpy(f->frame_bytes + f->frame_bytes_len, frame->data, frame->len);
    f->frame_off[f->frames] = f->frame_bytes_len;
    f->frame_len[f->frames] = frame->len;
    f->frame_bytes_len += frame->len;
    f->frames++;
}

/* Appends `len` bytes and runs the framer until it needs more or the stream dies.
 * Returns the last status; after TOO_LARGE or BAD further bytes are ignored. */
static enum framer_status feeder_feed(struct feeder *f, const char *bytes, size_t len)
{
    if (f->stopped != FRAMER_NEED_MORE)
        return f->stopped;
    reserve(&f->pending, &f->pending_cap, f->pending_len + len);
    if (len)
        memcpy(f->pending + f->pending_len, bytes, len);
    f->pending_len += len;
    f->fed += len;
    for (;;) {
        struct frame frame;
        if (f->framer.pos > f->pending_len)
            ck_abort_msg("framer.pos %zu past the pending input (%zu bytes)", f->framer.pos,
                         f->pending_len);
        f->examined += f->pending_len - f->framer.pos;
        enum framer_status status = framer_next(&f->framer, f->pending, f->pending_len, &frame);
        if (status == FRAMER_TOO_LARGE || status == FRAMER_BAD) {
            f->stopped = status;
            return status;
        }
        if (frame.consumed > f->pending_len)
            ck_abort_msg("consumed %zu of %zu bytes", frame.consumed, f->pending_len);
        if (status == FRAMER_READY)
            record_frame(f, &frame);
        else if (status != FRAMER_NEED_MORE)
            ck_abort_msg("unknown status %d", (int)status);
        memmove(f->pending, f->pending + frame.consumed, f->pending_len - frame.consumed);
        f->pending_len -= frame.consumed;
        if (status == FRAMER_NEED_MORE)
            return status;
    }
}

static enum framer_status feed_str(struct feeder *f, const char *s)
{
    return feeder_feed(f, s, strlen(s));
}

static void feed_in_chunks(struct feeder *f, const char *input, size_t len, size_t chunk)
{
    for (size_t off = 0; off < len; off += chunk)
        feeder_feed(f, input + off, len - off < chunk ? len - off : chunk);
}

static void assert_frame(const struct feeder *f, size_t i, const char *expected, size_t len)
{
    ck_assert_uint_gt(f->frames, i);
    ck_assert_uint_eq(f->frame_len[i], len);
    ck_assert_mem_eq(f->frame_bytes + f->frame_off[i], expected, len);
}

static void assert_frames(const struct feeder *f, const char *const *expected, size_t n)
{
    ck_assert_uint_eq(f->frames, n);
    for (size_t i = 0; i < n; i++)
        assert_frame(f, i, expected[i], strlen(expected[i]));
}

/* Two feeders saw the same frames, byte for byte, and stopped the same way. */
static int same_result(const struct feeder *a, const struct feeder *b)
{
    if (a->frames != b->frames || a->stopped != b->stopped ||
        a->frame_bytes_len != b->frame_bytes_len)
        return 0;
    for (size_t i = 0; i < a->frames; i++)
        if (a->frame_len[i] != b->frame_len[i] || a->frame_off[i] != b->frame_off[i])
            return 0;
    return a->frame_bytes_len == 0 ||
           memcmp(a->frame_bytes, b->frame_bytes, a->frame_bytes_len) == 0;
}

/* An object of exactly `size` bytes: {"s":"xxx...x"}. The caller frees it. */
static char *make_object(size_t size)
{
    const char *head = "{\"s\":\"";
    size_t head_len = strlen(head);
    ck_assert_uint_ge(size, head_len + 2);
    char *out = xrealloc(NULL, size + 1);
    memcpy(out, head, head_len);
    memset(out + head_len, 'x', size - head_len - 2);
    memcpy(out + size - 2, "\"}", 3);
    return out;
}

/* A string value of exactly `size` bytes: "xxx...x". */
static char *make_string(size_t size)
{
    ck_assert_uint_ge(size, 2);
    char *out = xrealloc(NULL, size + 1);
    out[0] = '"';
    memset(out + 1, 'x', size - 2);
    memcpy(out + size - 1, "\"", 2);
    return out;
}

/* An array of exactly `size` bytes: [1,1,...,1] padded with a space if need be. */
static char *make_array(size_t size)
{
    ck_assert_uint_ge(size, 3);
    char *out = xrealloc(NULL, size + 1);
    memset(out, ' ', size);
    out[0] = '[';
    out[1] = '1';
    for (size_t i = 2; i + 2 < size; i += 2)
        memcpy(out + i, ",1", 2);
    memcpy(out + size - 1, "]", 2);
    return out;
}

/* A bare number of exactly `size` digits. */
static char *make_number(size_t size)
{
    char *out = xrealloc(NULL, size + 1);
    memset(out, '7', size);
    out[size] = '\0';
    return out;
}

/* One value of each kind the framer must handle, with the separators a client may put
 * after it (none at all where the next byte cannot continue the value). */
static const char *const mixed_frames[] = {
    "{\"cmd\":\"login\",\"user\":\"Li{Hua}\",\"passwd\":\"[1]}\"}",
    "{\"a\":[1,{\"b\":\"x\\\"}]\"},[[]],{}],\"c\":\"\\\\\"}",
    "[1,2,{\"k\":\"\\u007b\\u005D\\u0022\"},\"]\"]",
    "\"top \\\"string\\\" {[\"",
    "42",
    "{\"cmd\":\"ping\",\"id\":7}",
    "-1.5e+3",
    "true",
    "false",
    "null",
    "{\"e\":\"\\\\\\\"}\\\\\",\"f\":\"\\u00e9 caf\xc3\xa9 \\ud83d\\ude00\"}",
    "\"\\\\\"",
    "{\n    \"cmd\": \"group_chat\",\n    \"group\": \"g1\",\n    \"text\": \"{}[]\"\n}",
    "[]",
    "{}",
};
static const char *const mixed_separators[] = {
    "", "  ", "\n", "", "", "\r\n\t", " ", "\n", " ", "", "", "\n\n", "", "", "\n",
};

static char *mixed_input(size_t *len)
{
    size_t n = sizeof(mixed_frames) / sizeof(mixed_frames[0]);
    ck_assert_uint_eq(n, sizeof(mixed_separators) / sizeof(mixed_separators[0]));
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += strlen(mixed_frames[i]) + strlen(mixed_separators[i]);
    char *out = xrealloc(NULL, total + 1);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(mixed_frames[i]);
        memcpy(out + off, mixed_frames[i], l);
        off += l;
        l = strlen(mixed_separators[i]);
        memcpy(out + off, mixed_separators[i], l);
        off += l;
    }
    out[off] = '\0';
    *len = off;
    return out;
}

#define MIXED_COUNT (sizeof(mixed_frames) / sizeof(mixed_frames[0]))

START_TEST(framer_splits_objects_back_to_back)
{
    static const char *const expected[] = {"{\"a\":1}", "{\"b\":{\"c\":2}}", "{\"d\":[3]}"};
    struct feeder f;
    feeder_init(&f, 65536);
    ck_assert_int_eq(feed_str(&f, "{\"a\":1}{\"b\":{\"c\":2}}{\"d\":[3]}"), FRAMER_NEED_MORE);
    assert_frames(&f, expected, 3);
    ck_assert_uint_eq(f.pending_len, 0);
    feeder_free(&f);
}
END_TEST

START_TEST(framer_skips_whitespace_between_objects)
{
    static const char *const expected[] = {"{\"a\":1}", "{\"b\":2}", "{\"c\":3}"};
    struct feeder f;
    feeder_init(&f, 65536);
    feed_str(&f, " \n\t\r{\"a\":1}\n\n  {\"b\":2}\r\n{\"c\":3} \n");
    assert_frames(&f, expected, 3);
    ck_assert_int_eq(f.stopped, FRAMER_NEED_MORE);
    ck_assert_uint_eq(f.pending_len, 0);
    feeder_free(&f);
}
END_TEST

START_TEST(framer_accepts_multiline_indented_objects)
{
    /* What the original desktop client sent: pretty-printed objects, no separator. */
    static const char *const expected[] = {
        "{\n    \"cmd\": \"login\",\n    \"user\": \"LiHua\",\n    \"passwd\": \"11111\"\n}",
        "{\n    \"cmd\": \"private_chat\",\n    \"user_from\": \"LiHua\",\n"
        "    \"user_to\": \"Bob\",\n    \"text\": \"hi {there}\"\n}",
        "{\n\t\"cmd\": \"login_reply\",\n\t\"fri\": [\n\t\t\"Bob\"\n\t],\n"
        "\t\"group\": []\n}",
    };
    char input[512];
    snprintf(input, sizeof(input), "%s%s\r\n%s", expected[0], expected[1], expected[2]);
    struct feeder f;
    feeder_init(&f, 65536);
    feed_str(&f, input);
    assert_frames(&f, expected, 3);
    feeder_free(&f);
}
END_TEST

START_TEST(framer_gives_same_frames_at_every_split_point)
{
    size_t len;
    char *input = mixed_input(&len);
    struct feeder whole;
    feeder_init(&whole, 65536);
    feeder_feed(&whole, input, len);
    assert_frames(&whole, mixed_frames, MIXED_COUNT);
    ck_assert_int_eq(whole.stopped, FRAMER_NEED_MORE);

    for (size_t split = 0; split <= len; split++) {
        struct feeder f;
        feeder_init(&f, 65536);
        feeder_feed(&f, input, split);
        feeder_feed(&f, input + split, len - split);
        ck_assert_msg(same_result(&whole, &f), "different frames when split at byte %zu", split);
        ck_assert_uint_eq(f.pending_len, 0);
        feeder_free(&f);
    }
    feeder_free(&whole);
    free(input);
}
END_TEST

START_TEST(framer_gives_same_frames_fed_byte_by_byte)
{
    size_t len;
    char *input = mixed_input(&len);
    struct feeder whole;
    feeder_init(&whole, 65536);
    feeder_feed(&whole, input, len);

    struct feeder f;
    feeder_init(&f, 65536);
    feed_in_chunks(&f, input, len, 1);
    assert_frames(&f, mixed_frames, MIXED_COUNT);
    ck_assert(same_result(&whole, &f));
    feeder_free(&f);

    /* Every other fixed chunk size as well, so splits fall at several places at once. */
    for (size_t chunk = 2; chunk <= len; chunk++) {
        feeder_init(&f, 65536);
        feed_in_chunks(&f, input, len, chunk);
        ck_assert_msg(same_result(&whole, &f), "different frames with %zu-byte chunks", chunk);
        feeder_free(&f);
    }
    feeder_free(&whole);
    free(input);
}
END_TEST

START_TEST(framer_ignores_braces_and_brackets_in_strings)
{
    static const char *const expected[] = {
        "{\"t\":\"}}}]]]\",\"u\":\"{{{[[[\"}",
        "[\"]\",\"}\",{\"k}\":\"{\"}]",
        "{\"nested\":{\"a\":\"}\"},\"b\":[\"]\",[\"[\"]]}",
        "{\"v\":\"\\n}\\t]\\u005d\"}",
    };
    struct feeder f;
    feeder_init(&f, 65536);
    for (size_t i = 0; i < 4; i++)
        feed_str(&f, expected[i]);
    assert_frames(&f, expected, 4);
    ck_assert_int_eq(f.stopped, FRAMER_NEED_MORE);
    feeder_free(&f);
}
END_TEST

START_TEST(framer_escaped_quote_does_not_end_string)
{
    struct feeder f;
    feeder_init(&f, 65536);
    /* Without the escape rule the object would end at the first '}'. */
    ck_assert_int_eq(feed_str(&f, "{\"a\":\"x\\\"}"), FRAMER_NEED_MORE);
    ck_assert_uint_eq(f.frames, 0);
    feed_str(&f, "\"}");
    assert_frame(&f, 0, "{\"a\":\"x\\\"}\"}", 12);
    /* The same at top level. */
    ck_assert_int_eq(feed_str(&f, "\"a\\\"b"), FRAMER_NEED_MORE);
    ck_assert_uint_eq(f.frames, 1);
    feed_str(&f, "\"");
    assert_frame(&f, 1, "\"a\\\"b\"", 6);
    ck_assert_uint_eq(f.frames, 2);
    feeder_free(&f);
}
END_TEST

START_TEST(framer_escaped_backslash_then_quote_ends_string)
{
    static const char *const expected[] = {
        "{\"a\":\"x\\\\\"}",
        "{\"b\":\"\\\\\\\\\"}",
        "\"y\\\\\"",
        "[\"\\\\\",\"}\"]",
    };
    struct feeder f;
    feeder_init(&f, 65536);
    feed_str(&f, "{\"a\":\"x\\\\\"}{\"b\":\"\\\\\\\\\"}\"y\\\\\"[\"\\\\\",\"}\"]");
    assert_frames(&f, expected, 4);
    ck_assert_int_eq(f.stopped, FRAMER_NEED_MORE);
    feeder_free(&f);
}
END_TEST

START_TEST(framer_frames_top_level_non_objects)
{
    static const char *const expected[] = {
        "[1,[2],{\"a\":3}]", "\"str\"", "12", "-0.5e10", "true", "false", "null", "[]",
    };
    struct feeder f;
    feeder_init(&f, 65536);
    feed_str(&f, "[1,[2],{\"a\":3}]\"str\"12 -0.5e10\ntrue false\tnull\r[]");
    assert_frames(&f, expected, 8);
    ck_assert_int_eq(f.stopped, FRAMER_NEED_MORE);
    feeder_free(&f);
}
END_TEST

START_TEST(framer_ends_bare_number_at_whitespace_or_next_object)
{
    struct feeder f;
    feeder_init(&f, 65536);
    /* A number may go on, so it is not a frame until a byte that cannot continue it. */
    ck_assert_int_eq(feed_str(&f, "123"), FRAMER_NEED_MORE);
    ck_assert_uint_eq(f.frames, 0);
    feed_str(&f, "45");
    ck_assert_uint_eq(f.frames, 0);
    feed_str(&f, " ");
    assert_frame(&f, 0, "12345", 5);
    /* Ended by the next object, which is then framed on its own. */
    feed_str(&f, "-7{\"cmd\":\"ping\"}");
    ck_assert_uint_eq(f.frames, 3);
    assert_frame(&f, 1, "-7", 2);
    assert_frame(&f, 2, "{\"cmd\":\"ping\"}", 14);
    /* Split exactly between the number and the brace. */
    feed_str(&f, "8");
    ck_assert_uint_eq(f.frames, 3);
    feed_str(&f, "{}");
    ck_assert_uint_eq(f.frames, 5);
    assert_frame(&f, 3, "8", 1);
    assert_frame(&f, 4, "{}", 2);
    ck_assert_uint_eq(f.pending_len, 0);
    feeder_free(&f);
}
END_TEST

START_TEST(framer_accepts_value_of_exactly_max_frame)
{
    const size_t max = 100;
    char *values[] = {make_object(max), make_string(max), make_array(max)};
    for (size_t v = 0; v < 3; v++) {
        struct feeder f;
        feeder_init(&f, max);
        /* Leading whitespace does not count towards the limit. */
        feed_str(&f, "   \n");
        ck_assert_int_eq(feed_str(&f, values[v]), FRAMER_NEED_MORE);
        assert_frame(&f, 0, values[v], max);
        /* The limit is per value: a second one of the same size is fine too. */
        feed_in_chunks(&f, values[v], max, 1);
        ck_assert_int_eq(f.stopped, FRAMER_NEED_MORE);
        assert_frame(&f, 1, values[v], max);
        feeder_free(&f);
        free(values[v]);
    }

    /* A bare number of max_frame bytes, ended by a byte that is not part of it. */
    char *number = make_number(max);
    struct feeder f;
    feeder_init(&f, max);
    ck_assert_int_eq(feed_str(&f, number), FRAMER_NEED_MORE);
    ck_assert_int_eq(feed_str(&f, " "), FRAMER_NEED_MORE);
    assert_frame(&f, 0, number, max);
    feed_str(&f, number);
    ck_assert_int_eq(feed_str(&f, "{}"), FRAMER_NEED_MORE);
    assert_frame(&f, 1, number, max);
    assert_frame(&f, 2, "{}", 2);
    feeder_free(&f);
    free(number);
}
END_TEST

START_TEST(framer_rejects_value_of_max_frame_plus_one)
{
    const size_t max = 100;
    char *values[] = {make_object(max + 1), make_string(max + 1), make_array(max + 1)};
    for (size_t v = 0; v < 3; v++) {
        struct feeder f;
        feeder_init(&f, max);
        ck_assert_int_eq(feed_str(&f, values[v]), FRAMER_TOO_LARGE);
        ck_assert_uint_eq(f.frames, 0);
        feeder_free(&f);
        /* After a first value of max_frame bytes, the limit starts again. */
        feeder_init(&f, max);
        char *ok = make_object(max);
        feed_str(&f, ok);
        ck_assert_int_eq(feed_str(&f, values[v]), FRAMER_TOO_LARGE);
        ck_assert_uint_eq(f.frames, 1);
        feeder_free(&f);
        free(ok);
        free(values[v]);
    }
    char *number = make_number(max + 1);
    struct feeder f;
    feeder_init(&f, max);
    ck_assert_int_eq(feed_str(&f, number), FRAMER_TOO_LARGE);
    feeder_free(&f);
    free(number);
}
END_TEST

/* Feeds `value` one byte at a time and checks the framer waits quietly up to max_frame
 * bytes and reports TOO_LARGE on exactly the next one, whether or not the value would
 * have ended there. */
static void assert_too_large_at_excess_byte(const char *value, size_t max)
{
    ck_assert_uint_gt(strlen(value), max);
    struct feeder f;
    feeder_init(&f, max);
    feed_str(&f, "\n ");
    for (size_t i = 0; i < max; i++)
        if (feeder_feed(&f, value + i, 1) != FRAMER_NEED_MORE)
            ck_abort_msg("status %d after %zu bytes of a value limited to %zu", (int)f.stopped,
                         i + 1, max);
    ck_assert_int_eq(feeder_feed(&f, value + max, 1), FRAMER_TOO_LARGE);
    feeder_free(&f);

    /* In one piece, cut right after the excess byte. */
    feeder_init(&f, max);
    ck_assert_int_eq(feeder_feed(&f, value, max), FRAMER_NEED_MORE);
    feeder_free(&f);
    feeder_init(&f, max);
    ck_assert_int_eq(feeder_feed(&f, value, max + 1), FRAMER_TOO_LARGE);
    feeder_free(&f);

    /* The first max_frame - 10 bytes, then a piece that runs past the limit. */
    feeder_init(&f, max);
    ck_assert_int_eq(feeder_feed(&f, value, max - 10), FRAMER_NEED_MORE);
    ck_assert_int_eq(feeder_feed(&f, value + max - 10, 11), FRAMER_TOO_LARGE);
    feeder_free(&f);
}

START_TEST(framer_reports_too_large_before_value_completes)
{
    const size_t max = 64;
    char buf[256];
    /* An object that goes on past the limit without closing. */
    memset(buf, 0, sizeof(buf));
    strcpy(buf, "{\"a\":1");
    for (size_t i = strlen(buf); i < 200; i += 4)
        memcpy(buf + i, ",[1]", 4);
    assert_too_large_at_excess_byte(buf, max);
    /* The excess byte is the closing brace of an otherwise complete object. */
    char *obj = make_object(max + 1);
    assert_too_large_at_excess_byte(obj, max);
    free(obj);
    /* Nested arrays still open. */
    memset(buf, '[', 200);
    buf[200] = '\0';
    assert_too_large_at_excess_byte(buf, max);
    /* A long bare number with no end in sight. */
    char *number = make_number(200);
    assert_too_large_at_excess_byte(number, max);
    free(number);
}
END_TEST

START_TEST(framer_reports_too_large_inside_long_string)
{
    const size_t max = 1000;
    char *buf = xrealloc(NULL, 4000);
    /* A string inside an object, still open at the limit (plain bytes only, then some
     * escapes as well). */
    strcpy(buf, "{\"cmd\":\"private_chat\",\"text\":\"");
    size_t off = strlen(buf);
    memset(buf + off, 'y', 3000);
    buf[off + 3000] = '\0';
    assert_too_large_at_excess_byte(buf, max);
    for (size_t i = off; i + 1 < off + 3000; i += 50)
        memcpy(buf + i, "\\\"", 2);
    assert_too_large_at_excess_byte(buf, max);
    /* A string that is the whole value. */
    buf[0] = '"';
    memset(buf + 1, 'z', 3000);
    buf[3001] = '\0';
    assert_too_large_at_excess_byte(buf, max);

    /* A string that ends far past the limit, fed whole: still TOO_LARGE, not READY. */
    struct feeder f;
    feeder_init(&f, max);
    strcpy(buf, "{\"text\":\"");
    off = strlen(buf);
    memset(buf + off, 'w', 2000);
    strcpy(buf + off + 2000, "\"}");
    ck_assert_int_eq(feed_str(&f, buf), FRAMER_TOO_LARGE);
    ck_assert_uint_eq(f.frames, 0);
    feeder_free(&f);
    free(buf);
}
END_TEST

START_TEST(framer_rejects_bytes_that_cannot_start_a_value)
{
    static const char bad[] = {'}',    ']',    ',',    ':',    '\0',  '\x01',
                               '\x1b', '\x1f', '\x7f', '\x80', '\xff'};
    for (size_t i = 0; i < sizeof(bad); i++) {
        struct feeder f;
        feeder_init(&f, 65536);
        ck_assert_msg(feeder_feed(&f, &bad[i], 1) == FRAMER_BAD, "byte 0x%02x not BAD",
                      (unsigned)(unsigned char)bad[i]);
        feeder_free(&f);

        /* The same byte after whitespace, and between two values. */
        char input[32];
        int n = snprintf(input, sizeof(input), " \n{\"a\":1}\t");
        input[n] = bad[i];
        memcpy(input + n + 1, "{\"b\":2}", 7);
        feeder_init(&f, 65536);
        ck_assert_int_eq(feeder_feed(&f, input, (size_t)n + 8), FRAMER_BAD);
        ck_assert_uint_eq(f.frames, 1);
        assert_frame(&f, 0, "{\"a\":1}", 7);
        feeder_free(&f);
    }
}
END_TEST

START_TEST(framer_passes_invalid_utf8_through_strings)
{
    /* Stray continuation bytes, a truncated sequence, an overlong encoding, a UTF-16
     * surrogate encoded in UTF-8 and 0xff: the parser rejects them, the framer must
     * only find where each value ends. */
    static const char *const expected[] = {
        "{\"a\":\"\x80\xbf\",\"b\":\"\xc3\"}",
        "{\"c\":[\"\xc0\xaf\",\"\xed\xa0\x80\"]}",
        "\"\xff\xfe\\\"\xe2\x82\"",
        "{\"d\":\"\xf0\x9f\x98\"}",
    };
    char input[256];
    snprintf(input, sizeof(input), "%s%s\n%s %s", expected[0], expected[1], expected[2],
             expected[3]);
    size_t len = strlen(input);
    struct feeder whole;
    feeder_init(&whole, 65536);
    feeder_feed(&whole, input, len);
    assert_frames(&whole, expected, 4);
    ck_assert_int_eq(whole.stopped, FRAMER_NEED_MORE);
    for (size_t split = 0; split <= len; split++) {
        struct feeder f;
        feeder_init(&f, 65536);
        feeder_feed(&f, input, split);
        feeder_feed(&f, input + split, len - split);
        ck_assert_msg(same_result(&whole, &f), "different frames when split at byte %zu", split);
        feeder_free(&f);
    }
    feeder_free(&whole);
}
END_TEST

START_TEST(framer_consumes_whitespace_only_input)
{
    static const char ws[] = " \t\r\n\n\n    \r\n\t ";
    struct framer framer;
    struct frame frame;
    framer_init(&framer, 65536);
    ck_assert_int_eq(framer_next(&framer, ws, sizeof(ws) - 1, &frame), FRAMER_NEED_MORE);
    ck_assert_uint_eq(frame.consumed, sizeof(ws) - 1);

    /* A caller fed nothing but whitespace, piece by piece, never holds any of it. */
    struct feeder f;
    feeder_init(&f, 64);
    for (int i = 0; i < 1000; i++) {
        feed_str(&f, ws);
        if (f.pending_len != 0)
            ck_abort_msg("%zu bytes of whitespace kept after %d pieces", f.pending_len, i + 1);
    }
    /* Whitespace after a value is not kept either, nor counted against the next value. */
    feed_str(&f, "{}");
    feed_str(&f, ws);
    ck_assert_uint_eq(f.pending_len, 0);
    ck_assert_int_eq(f.stopped, FRAMER_NEED_MORE);
    ck_assert_uint_eq(f.frames, 1);
    feeder_free(&f);
}
END_TEST

START_TEST(framer_drops_whitespace_before_a_partial_value)
{
    struct framer framer;
    struct frame frame;
    framer_init(&framer, 65536);
    const char *input = "\n\n   {\"cmd\":";
    ck_assert_int_eq(framer_next(&framer, input, strlen(input), &frame), FRAMER_NEED_MORE);
    ck_assert_uint_eq(frame.consumed, 5);
}
END_TEST

START_TEST(framer_scans_large_object_fed_byte_by_byte_in_linear_time)
{
    /* A 512 KiB request with nested containers and escapes, arriving one byte per read
     * under a 1 MiB limit. If the framer rescanned its pending input on every call this
     * would take about 2^37 steps; scanning each byte once it is about 2^19. */
    const size_t size = 512 * 1024;
    char *obj = xrealloc(NULL, size + 1);
    const char *head =
        "{\"cmd\":\"private_chat\",\"user_to\":\"Bob\",\"list\":[[1,{\"k\":\"}\"}],[]],"
        "\"text\":\"";
    size_t off = strlen(head);
    memcpy(obj, head, off);
    static const char pattern[] = "abc{}[]\xc3\xa9 \\\"de\\\\fg";
    for (size_t i = off; i < size - 2; i++)
        obj[i] = pattern[i % (sizeof(pattern) - 1)];
    memcpy(obj + size - 2, "\"}", 3);
    /* Keep the escapes paired: every backslash must escape the byte after it. */
    for (size_t i = off; i < size - 2; i++)
        if (obj[i] == '\\') {
            if (i + 1 >= size - 2)
                obj[i] = 'x';
            else
                i++;
        }

    struct feeder f;
    feeder_init(&f, 1024 * 1024);
    feed_in_chunks(&f, obj, size, 1);
    ck_assert_int_eq(f.stopped, FRAMER_NEED_MORE);
    ck_assert_uint_eq(f.frames, 1);
    assert_frame(&f, 0, obj, size);
    ck_assert_uint_eq(f.pending_len, 0);
    /* framer.pos is the documented resume point: summed over all calls, the bytes past
     * it are the most the framer could have looked at. */
    ck_assert_uint_le(f.examined, f.fed + f.frames);
    feeder_free(&f);
    free(obj);
}
END_TEST

START_TEST(framer_frames_are_accepted_by_json_loadb)
{
    size_t len;
    char *input = mixed_input(&len);
    struct framer framer;
    framer_init(&framer, 65536);
    size_t off = 0;
    size_t frames = 0;
    while (off < len) {
        struct frame frame;
        enum framer_status status = framer_next(&framer, input + off, len - off, &frame);
        ck_assert_int_ne(status, FRAMER_BAD);
        ck_assert_int_ne(status, FRAMER_TOO_LARGE);
        off += frame.consumed;
        if (status == FRAMER_NEED_MORE)
            break;
        /* Without JSON_DISABLE_EOF_CHECK jansson insists the buffer is exactly one
         * value, so this also proves the frame is neither cut short nor overlong. */
        json_error_t error;
        json_t *value = json_loadb(frame.data, frame.len, JSON_DECODE_ANY, &error);
        ck_assert_msg(value != NULL, "frame %zu rejected: %s: %.*s", frames, error.text,
                      (int)frame.len, frame.data);
        ck_assert_int_eq(json_is_object(value), frame.data[0] == '{');
        json_decref(value);
        frames++;
    }
    ck_assert_uint_eq(frames, MIXED_COUNT);
    ck_assert_uint_eq(off, len);
    free(input);
}
END_TEST

static Suite *framer_suite(void)
{
    Suite *suite = suite_create("framer");

    TCase *split = tcase_create("splitting");
    tcase_add_test(split, framer_splits_objects_back_to_back);
    tcase_add_test(split, framer_skips_whitespace_between_objects);
    tcase_add_test(split, framer_accepts_multiline_indented_objects);
    tcase_add_test(split, framer_gives_same_frames_at_every_split_point);
    tcase_add_test(split, framer_gives_same_frames_fed_byte_by_byte);
    tcase_add_test(split, framer_frames_top_level_non_objects);
    tcase_add_test(split, framer_ends_bare_number_at_whitespace_or_next_object);
    tcase_add_test(split, framer_consumes_whitespace_only_input);
    tcase_add_test(split, framer_drops_whitespace_before_a_partial_value);
    tcase_add_test(split, framer_frames_are_accepted_by_json_loadb);
    suite_add_tcase(suite, split);

    TCase *strings = tcase_create("strings");
    tcase_add_test(strings, framer_ignores_braces_and_brackets_in_strings);
    tcase_add_test(strings, framer_escaped_quote_does_not_end_string);
    tcase_add_test(strings, framer_escaped_backslash_then_quote_ends_string);
    tcase_add_test(strings, framer_passes_invalid_utf8_through_strings);
    suite_add_tcase(suite, strings);

    TCase *limits = tcase_create("limits");
    /* Half a million one-byte feeds take a while under ThreadSanitizer. */
    tcase_set_timeout(limits, 120);
    tcase_add_test(limits, framer_accepts_value_of_exactly_max_frame);
    tcase_add_test(limits, framer_rejects_value_of_max_frame_plus_one);
    tcase_add_test(limits, framer_reports_too_large_before_value_completes);
    tcase_add_test(limits, framer_reports_too_large_inside_long_string);
    tcase_add_test(limits, framer_rejects_bytes_that_cannot_start_a_value);
    tcase_add_test(limits, framer_scans_large_object_fed_byte_by_byte_in_linear_time);
    suite_add_tcase(suite, limits);

    return suite;
}

int main(void)
{
    return chatd_run_suite(framer_suite());
}
