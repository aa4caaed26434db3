/* thread_name.h - names the calling thread, as top -H, ps -L and perf show it. */
#ifndef CHATD_THREAD_NAME_H
#define CHATD_THREAD_NAME_H

/* At most 15 bytes are kept (the kernel's limit). */
void thread_name_set(const char *name);

#endif
