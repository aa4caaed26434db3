/* names.c - the rule for user and group names, kept apart so unit tests can check it
 * without loading a plugin. */
#include "names.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int chat_valid_name(const char *name)
{
    if (!name)
        return 0;
    size_t n = strlen(name);
    if (n == 0 || n > CHAT_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return 0;
    }
    return 1;
}

size_t chat_copy_name(char *out, const char *name)
{
    size_t n = 0;
    for (; n < CHAT_NAME_MAX && name[n]; n++)
        out[n] = name[n];
    out[n] = '\0';
    return n;
}

void chat_private_conversation(const char *a, const char *b, char out[CHAT_CONVERSATION_MAX + 1])
{
    /* Written by hand: snprintf costs a thousand instructions, and this runs for every
     * private message. */
    int a_first = strcmp(a, b) <= 0;
    size_t n = chat_copy_name(out, a_first ? a : b);
    out[n++] = '|';
    chat_copy_name(out + n, a_first ? b : a);
}

long long chat_msg_id_value(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 19 || strspn(s, "0123456789") != n)
        return 0;
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    return errno == 0 && v > 0 ? v : 0;
}
