/* bench_framer.c - measures the framer's throughput on chat-like input (a tool, not a test).
 *
 * Each case builds a few MiB of client input, feeds it in 16 KiB reads the way the host
 * does (keep the pending bytes, call framer_next, drop frame.consumed from the front,
 * append the next read) and repeats for about a second. Throughput counts input bytes
 * (MB = 10^6 bytes). The framing-plus-parsing case also runs json_loadb on every frame,
 * which shows what parsing costs next to framing. */
#include "framer.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define READ_SIZE   (16 * 1024)
#define MAX_FRAME   (64 * 1024)
#define INPUT_SIZE  (8 * 1024 * 1024)
#define RUN_SECONDS 1.0

struct input {
    char *data;
    size_t len;
    size_t frames;
};

struct result {
    double seconds;
    size_t bytes;
    size_t frames;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *xmalloc(size_t size)
{
    void *p = malloc(size);
    if (!p) {
        fprintf(stderr, "bench_framer: out of memory\n");
        exit(EXIT_FAILURE);
    }
    return p;
}

static void input_append(struct input *in, const char *bytes, size_t len)
{
    memcpy(in->data + in->len, bytes, len);
    in->len += len;
}

/* ~100-byte requests of the original protocol, back to back with varied separators. */
static void build_small(struct input *in)
{
    static const char *const separators[] = {"", "\n", " ", "\r\n"};
    char req[256];
    in->data = xmalloc(INPUT_SIZE + sizeof(req));
    in->len = 0;
    in->frames = 0;
    for (unsigned i = 0; in->len < INPUT_SIZE; i++) {
        int n;
        if (i % 4 == 3)
            n = snprintf(req, sizeof(req),
                         "{\"cmd\":\"group_chat\",\"group\":\"g%u\",\"text\":\"hello all, "
                         "round %u\",\"id\":%u}%s",
                         i % 50, i, i, separators[i % 4]);
        else
            n = snprintf(req, sizeof(req),
                         "{\"cmd\":\"private_chat\",\"user_from\":\"LiHua\",\"user_to\":"
                         "\"Bob%u\",\"text\":\"hi \\\"there\\\" #%u\"}%s",
                         i % 100, i, separators[i % 4]);
        input_append(in, req, (size_t)n);
        in->frames++;
    }
}

/* ~60 KiB requests whose text is a long string with an escape now and then. */
static void build_large(struct input *in)
{
    static const char text[] = "The quick brown fox jumps over the lazy dog; ";
    char head[128];
    in->data = xmalloc(INPUT_SIZE + MAX_FRAME);
    in->len = 0;
    in->frames = 0;
    for (unsigned i = 0; in->len < INPUT_SIZE; i++) {
        int n = snprintf(head, sizeof(head),
                         "{\"cmd\":\"private_chat\",\"user_to\":\"Bob\",\"id\":%u,\"text\":\"", i);
        input_append(in, head, (size_t)n);
        for (size_t body = 0; body < 60 * 1024; body += sizeof(text) - 1) {
            input_append(in, text, sizeof(text) - 1);
            if (body % 1024 < sizeof(text) - 1)
                input_append(in, "\\\"q\\\"\\n", 7);
        }
        input_append(in, "\"}\n", 3);
        in->frames++;
    }
}

/* ~60 KiB requests whose text is almost all escapes ("\n" repeated): the worst case for
 * a framer that searches ahead for the closing quote at every backslash. */
static void build_escapes(struct input *in)
{
    static const char head[] = "{\"cmd\":\"private_chat\",\"user_to\":\"Bob\",\"text\":\"";
    in->data = xmalloc(INPUT_SIZE + MAX_FRAME);
    in->len = 0;
    in->frames = 0;
    while (in->len < INPUT_SIZE) {
        input_append(in, head, sizeof(head) - 1);
        for (size_t body = 0; body < 60 * 1024; body += 2)
            input_append(in, "\\n", 2);
        input_append(in, "\"}\n", 3);
        in->frames++;
    }
}

/* One pass over the input in READ_SIZE reads. Returns the frames seen, or exits if the
 * framer refuses valid input or json_loadb rejects a frame. */
static size_t run_pass(const struct input *in, char *pending, int parse)
{
    struct framer framer;
    framer_init(&framer, MAX_FRAME);
    size_t pending_len = 0;
    size_t frames = 0;
    for (size_t off = 0; off < in->len; off += READ_SIZE) {
        size_t n = in->len - off < READ_SIZE ? in->len - off : READ_SIZE;
        memcpy(pending + pending_len, in->data + off, n);
        pending_len += n;
        /* Dropping from the front is a moving head; the rest moves down once per read. */
        size_t head = 0;
        for (;;) {
            struct frame frame;
            enum framer_status status =
                framer_next(&framer, pending + head, pending_len - head, &frame);
            if (status == FRAMER_TOO_LARGE || status == FRAMER_BAD) {
                fprintf(stderr, "bench_framer: framer status %d at input offset %zu\n", (int)status,
                        off);
                exit(EXIT_FAILURE);
            }
            if (status == FRAMER_READY) {
                if (parse) {
                    json_error_t error;
                    json_t *value = json_loadb(frame.data, frame.len, 0, &error);
                    if (!value) {
                        fprintf(stderr, "bench_framer: json_loadb: %s\n", error.text);
                        exit(EXIT_FAILURE);
                    }
                    json_decref(value);
                }
                frames++;
            }
            head += frame.consumed;
            if (status == FRAMER_NEED_MORE)
                break;
        }
        memmove(pending, pending + head, pending_len - head);
        pending_len -= head;
    }
    return frames;
}

static struct result run_case(const struct input *in, int parse)
{
    char *pending = xmalloc(MAX_FRAME + READ_SIZE);
    struct result res = {0, 0, 0};
    /* One untimed pass to warm caches and check the frame count. */
    size_t frames = run_pass(in, pending, parse);
    if (frames != in->frames) {
        fprintf(stderr, "bench_framer: %zu frames, expected %zu\n", frames, in->frames);
        exit(EXIT_FAILURE);
    }
    double start = now();
    do {
        res.frames += run_pass(in, pending, parse);
        res.bytes += in->len;
        res.seconds = now() - start;
    } while (res.seconds < RUN_SECONDS);
    free(pending);
    return res;
}

static void print_result(const char *name, const struct input *in, struct result res)
{
    printf("%-38s %7.1f KiB/frame %10.1f MB/s %12.0f frames/s\n", name,
           (double)in->len / (double)in->frames / 1024.0, (double)res.bytes / res.seconds / 1e6,
           (double)res.frames / res.seconds);
}

static void print_machine(void)
{
    struct utsname uts;
    char model[256] = "unknown";
    FILE *cpuinfo = fopen("/proc/cpuinfo", "r");
    if (cpuinfo) {
        char line[512];
        while (fgets(line, sizeof(line), cpuinfo)) {
            if (strncmp(line, "model name", 10) == 0) {
                const char *colon = strchr(line, ':');
                if (colon) {
                    snprintf(model, sizeof(model), "%s", colon + 2);
                    model[strcspn(model, "\n")] = '\0';
                }
                break;
            }
        }
        fclose(cpuinfo);
    }
    printf("machine: %s, cpu: %s, %ld cpus online; %d KiB reads, %d KiB frame limit\n",
           uname(&uts) == 0 ? uts.machine : "unknown", model, sysconf(_SC_NPROCESSORS_ONLN),
           READ_SIZE / 1024, MAX_FRAME / 1024);
}

int main(void)
{
    struct input small, large, escapes;
    build_small(&small);
    build_large(&large);
    build_escapes(&escapes);

    print_machine();
    print_result("small frames, framing only", &small, run_case(&small, 0));
    print_result("large frames, framing only", &large, run_case(&large, 0));
    print_result("small frames, framing + json_loadb", &small, run_case(&small, 1));
    print_result("escape-heavy large frames, framing only", &escapes, run_case(&escapes, 0));

    free(small.data);
    free(large.data);
    free(escapes.data);
    return EXIT_SUCCESS;
}
