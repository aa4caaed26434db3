/* wordfilter.c - masks or refuses listed words in private and group messages. An
 * example of a third-party chatd plugin that extends a command it does not serve: it
 * adds a hook to "message.deliver", which private_chat and groups run for every
 * message before accepting it (see README.md).
 *
 * With words = darn, heck and action = mask:
 *   > {"cmd":"private_chat","user_to":"bob","text":"Darn, what the HECK_x heck!"}
 *   bob gets "text":"****, what the HECK_x ****!"
 * With action = refuse, the sender gets instead, and nothing is stored or sent:
 *   < {"cmd":"private_chat_reply","result":"forbidden",
 *      "reason":"message contains a blocked word"}
 *
 * Matching: a listed word matches where it appears as a whole word, ignoring the case
 * of ASCII letters only; a word is bounded by the start or end of the text or by any
 * byte that is not [A-Za-z0-9_] (so any byte of a non-ASCII character bounds it too).
 * Masking replaces each character of the match (one '*' per character, whatever its
 * UTF-8 length) except ASCII spaces and punctuation, so the text stays valid UTF-8.
 *
 * Config, in [plugin.wordfilter] (no database needed):
 *   words = darn, heck   comma-separated; surrounding blanks are ignored; required
 *   action = mask        mask | refuse
 *
 * ABI 1.2: an instance instead of globals, and a hook. */
#include <chatd/plugin.h>
#include <stdlib.h>
#include <string.h>

/* Before the hooks of priority 0, so that it sees the text as the sender wrote it. */
#define HOOK_PRIORITY (-100)

struct word {
    char *text; /* ASCII letters lowered */
    size_t len;
};

struct wordfilter {
    const struct chatd_host *host;
    struct chatd_plugin *self;
    struct word *words;
    size_t n_words;
    int refuse; /* action = refuse; else mask */
};

static const struct chatd_option options[] = {
    {"words", CHATD_OPT_STRING, NULL, 0, 65536, "comma-separated words to filter"},
    {"action", CHATD_OPT_STRING, "mask", 0, 16, "mask (replace with '*') or refuse"},
    {NULL, 0, NULL, 0, 0, NULL},
};

/* -- matching -------------------------------------------------------------------- */

static int is_word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

/* The length of the longest listed word that matches `text` at `at`, or 0. `at` is
 * the start of the text or follows a byte that is not a word byte. */
static size_t match_at(const struct wordfilter *wf, const char *text, size_t len, size_t at)
{
    size_t best = 0;
    for (size_t w = 0; w < wf->n_words; w++) {
        const struct word *word = &wf->words[w];
        if (word->len <= best || word->len > len - at)
            continue;
        size_t i = 0;
        while (i < word->len && lower((unsigned char)text[at + i]) == (unsigned char)word->text[i])
            i++;
        if (i == word->len && (at + i == len || !is_word_byte((unsigned char)text[at + i])))
            best = word->len;
    }
    return best;
}

/* Find the listed words in text[0..len). With `out` NULL, return 1 at the first match
 * (0: none). With `out` (at least len + 1 bytes), copy the text there with every match
 * masked, store its length in *out_len and return how many matches were masked. */
static size_t scan(const struct wordfilter *wf, const char *text, size_t len, char *out,
                   size_t *out_len)
{
    size_t matches = 0, o = 0;
    for (size_t i = 0; i < len;) {
        size_t n =
            (i == 0 || !is_word_byte((unsigned char)text[i - 1])) ? match_at(wf, text, len, i) : 0;
        if (n > 0) {
            matches++;
            if (!out)
                return 1;
            for (size_t k = i; k < i + n; k++) {
                unsigned char c = (unsigned char)text[k];
                if ((c & 0xC0) == 0x80)
                    continue; /* a UTF-8 continuation byte: its character has its '*' */
                out[o++] = c < 0x80 && !is_word_byte(c) ? (char)c : '*';
            }
            i += n;
        } else {
            if (out)
                out[o++] = text[i];
            i++;
        }
    }
    if (out) {
        out[o] = '\0';
        *out_len = o;
    }
    return matches;
}

/* -- the hook -------------------------------------------------------------------- */

/* Refuse the message `internal`. If even that finds no memory, CHATD_ENOMEM is all that
 * is left to say (the host logs it). */
static int out_of_memory(struct wordfilter *wf, struct chatd_hook_call *call)
{
    return wf->host->hook_refuse(call, "internal", "out of memory") == 0 ? CHATD_HOOK_CONTINUE
                                                                         : CHATD_ENOMEM;
}

static int on_deliver(struct chatd_hook_call *call, json_t *payload, void *arg)
{
    struct wordfilter *wf = arg;
    json_t *text = json_object_get(payload, "text");
    const char *s = json_string_value(text);
    size_t len = json_string_length(text);
    if (!s)
        return CHATD_HOOK_CONTINUE;
    if (wf->refuse) {
        if (scan(wf, s, len, NULL, NULL))
            wf->host->hook_refuse(call, "forbidden", "message contains a blocked word");
        return CHATD_HOOK_CONTINUE;
    }
    /* Every message passes here: allocate only for one that has something to mask. */
    if (!scan(wf, s, len, NULL, NULL))
        return CHATD_HOOK_CONTINUE;
    char *masked = malloc(len + 1);
    int ok = masked != NULL;
    size_t masked_len = 0;
    if (ok && scan(wf, s, len, masked, &masked_len) > 0) {
        /* A masked character is never longer than the one it replaces: still UTF-8. */
        json_t *replaced = json_stringn(masked, masked_len);
        ok = replaced && json_object_set_new(payload, "text", replaced) == 0;
    }
    free(masked);
    if (ok)
        return CHATD_HOOK_CONTINUE;
    /* A filter fails closed: a message it could not check is refused, never let through. */
    wf->host->log(wf->self, CHATD_LOG_ERROR, "a message was refused: out of memory");
    return out_of_memory(wf, call);
}

/* -- init and destroy -------------------------------------------------------------- */

static void wordfilter_destroy(void *instance)
{
    struct wordfilter *wf = instance;
    for (size_t i = 0; i < wf->n_words; i++)
        free(wf->words[i].text);
    free(wf->words);
    free(wf);
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Split the `words` option into wf->words: trimmed, ASCII letters lowered, empty
 * entries skipped. CHATD_EINVAL (logged) for an entry that is not UTF-8. */
static int parse_words(struct wordfilter *wf, const char *list)
{
    size_t most = 1;
    for (const char *p = list; *p; p++)
        most += *p == ',';
    wf->words = calloc(most, sizeof(*wf->words));
    if (!wf->words)
        return CHATD_ENOMEM;
    for (const char *p = list;;) {
        const char *end = strchr(p, ',');
        const char *stop = end ? end : p + strlen(p);
        while (p < stop && is_blank(*p))
            p++;
        while (stop > p && is_blank(stop[-1]))
            stop--;
        size_t len = (size_t)(stop - p);
        if (len > 0) {
            json_t *probe = json_stringn(p, len); /* jansson refuses text that is not UTF-8 */
            if (!probe) {
                wf->host->log(wf->self, CHATD_LOG_ERROR, "words: entry %zu is not UTF-8",
                              wf->n_words + 1);
                return CHATD_EINVAL;
            }
            json_decref(probe);
            struct word *w = &wf->words[wf->n_words];
            if (!(w->text = malloc(len + 1)))
                return CHATD_ENOMEM;
            for (size_t i = 0; i < len; i++)
                w->text[i] = (char)lower((unsigned char)p[i]);
            w->text[len] = '\0';
            w->len = len;
            wf->n_words++;
        }
        if (!end)
            return 0;
        p = end + 1;
    }
}

static int wordfilter_init(struct chatd_plugin *self, const struct chatd_host *host)
{
    struct wordfilter *wf = calloc(1, sizeof(*wf));
    if (!wf)
        return CHATD_ENOMEM;
    wf->host = host;
    wf->self = self;
    host->instance_set(self, wf); /* destroy frees it, also when init fails below */
    const char *action = host->option_string(self, "action");
    if (strcmp(action, "mask") != 0 && strcmp(action, "refuse") != 0) {
        host->log(self, CHATD_LOG_ERROR, "action: '%s' is neither mask nor refuse", action);
        return CHATD_EINVAL;
    }
    wf->refuse = strcmp(action, "refuse") == 0;
    int rc = parse_words(wf, host->option_string(self, "words"));
    if (rc == 0 && wf->n_words == 0)
        host->log(self, CHATD_LOG_WARN, "words lists no word: messages pass unchanged");
    if (rc == 0)
        rc = host->hook_add(self, CHATD_HOOK_MESSAGE_DELIVER, HOOK_PRIORITY, on_deliver, NULL);
    if (rc != 0)
        host->log(self, CHATD_LOG_ERROR, "cannot start: %s", chatd_strerror(rc));
    return rc;
}

CHATD_PLUGIN_DEFINE(.name = "wordfilter", .version = "1.0.0",
                    .description = "masks or refuses listed words in chat messages",
                    .options = options, .init = wordfilter_init, .destroy = wordfilter_destroy);
