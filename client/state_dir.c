/* state_dir.c - the state folder of chat (see state_dir.h). */
#include "state_dir.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* Make every folder of `path` up to and including its last component, 0700. */
static int make_folders(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int rc = mkdir(path, 0700);
        *p = '/';
        if (rc != 0 && errno != EEXIST)
            return -1;
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return -1;
    return chmod(path, 0700);
}

int chat_state_path(const char *sub, char *out, size_t cap, int create)
{
    const char *state = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    int n;
    if (state && state[0] == '/')
        n = snprintf(out, cap, "%s/chatd", state);
    else if (home && home[0] == '/')
        n = snprintf(out, cap, "%s/.local/state/chatd", home);
    else
        return -1;
    if (n < 0 || (size_t)n >= cap)
        return -1;
    if (create && make_folders(out) != 0)
        return -1;
    size_t used = (size_t)n;
    n = snprintf(out + used, cap - used, "/%s", sub);
    return n < 0 || (size_t)n >= cap - used ? -1 : 0;
}
