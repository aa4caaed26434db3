/* thread_name.c - names the calling thread (see thread_name.h). */
#include "thread_name.h"

#include <sys/prctl.h>

void thread_name_set(const char *name)
{
    prctl(PR_SET_NAME, name, 0, 0, 0);
}
