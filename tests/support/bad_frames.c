/* bad_frames.c - see bad_frames.h. */
#include "bad_frames.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FRAME_BYTES 1024

/* What every stream begins with: answered, or refused, request by request. */
static const char mixed[] = "{\"cmd\":\"ping\",\"id\":1}[1,2] {\"cmd\":\"ping\",\"id\":[1]}"
                            "{\"cmd\":7,\"id\":\"x\"}{\"a\":1,\"a\":2}\"text\" 12 "
                            "{\"cmd\":\"nope\",\"id\":2}{\"cmd\":\"ping\",\"id\":3}";

/* Answers to `bytes` with io_threads = n. */
static char *answers_with_threads(bad_frames_answers_fn *answers_to, int n, const char *bytes)
{
    char conf[64];
    snprintf(conf, sizeof(conf), "io_threads = %d\nmax_frame_bytes = %d\n", n, MAX_FRAME_BYTES);
    return answers_to(conf, n, bytes);
}

void bad_frames_assert_threads_answer_as_the_loop(bad_frames_answers_fn *answers_to)
{
    /* A ping, then a frame that outgrows MAX_FRAME_BYTES and never ends. */
    char big[1200];
    memset(big, 'x', sizeof(big));
    static const char head[] = "{\"cmd\":\"ping\",\"id\":5}{\"cmd\":\"ping\",\"pad\":\"";
    memcpy(big, head, sizeof(head) - 1);
    big[sizeof(big) - 1] = '\0';
    const struct {
        const char *end;   /* what follows mixed */
        const char *error; /* the answer that ends the connection */
    } streams[] = {
        {"{\"cmd\":\"ping\",\"id\":1}{\"cmd\":\"ping\",,}{\"cmd\":\"ping\",\"id\":2}", "bad_json"},
        {"{\"cmd\":\"ping\",\"id\":1} } {\"cmd\":\"ping\",\"id\":2}", "bad_json"},
        {big, "frame_too_large"},
    };
    for (size_t i = 0; i < sizeof(streams) / sizeof(streams[0]); i++) {
        char bytes[4096];
        snprintf(bytes, sizeof(bytes), "%s%s", mixed, streams[i].end);
        char *loop = answers_with_threads(answers_to, 0, bytes);
        char *thread = answers_with_threads(answers_to, 1, bytes);
        ck_assert_msg(strstr(loop, "\"result\":\"bad_request\"") != NULL, "%s", loop);
        ck_assert_msg(strstr(loop, streams[i].error) != NULL, "%s", loop);
        ck_assert_str_eq(thread, loop);
        free(loop);
        free(thread);
    }
}
