/* fuzz_json_fast.c - the fast request parser against jansson, on any bytes: whatever
 * the fast path accepts, jansson (with the options dispatch uses) must accept as an
 * equal object, so a frame means the same whichever parser read it. */
#include "json_fast.h"

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    json_t *fast = json_fast_parse_flat_object(text, size);
    if (!fast)
        return 0;
    json_t *slow = json_loadb(text, size, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
    if (!slow)
        fprintf(stderr, "the fast path accepted what jansson refuses: %.*s\n", (int)size, text);
    FUZZ_CHECK(slow != NULL);
    FUZZ_CHECK(json_is_object(fast));
    if (!json_equal(fast, slow))
        fprintf(stderr, "the fast path differs from jansson on: %.*s\n", (int)size, text);
    FUZZ_CHECK(json_equal(fast, slow));
    json_decref(slow);
    json_decref(fast);
    return 0;
}
