/* browser_proc.h - what the browser drivers (cdp.c for Chromium, bidi.c for Firefox)
 * share: find the binary, start it headless in a process group of its own on a fresh
 * temporary directory, wait until it tells its port, end it; and save the base64 PNG a
 * browser sends as a screenshot. For the test process's main thread. */
#ifndef CHATD_TEST_BROWSER_PROC_H
#define CHATD_TEST_BROWSER_PROC_H

#include <limits.h>
#include <sys/types.h>

struct browser_proc {
    pid_t pid;          /* the browser's process, leader of its process group */
    int port;           /* its remote-control port */
    char dir[PATH_MAX]; /* its profile, HOME and log live here */
};

/* $env_name when set (NULL unless executable), else `name` on the PATH, else NULL. The
 * string is static until the next call. */
const char *browser_proc_binary(const char *env_name, const char *name);

/* Make bp->dir. 0, or -1. */
int browser_proc_make_dir(struct browser_proc *bp);
/* Run argv (HOME set to bp->dir, stdout and stderr to bp->dir/log) and wait until
 * read_port(bp->dir) gives a port: 0, or -1 after printing the log and stopping it. */
int browser_proc_start(struct browser_proc *bp, const char *const argv[],
                       int (*read_port)(const char *dir));
/* Kill it (its whole process group) and remove its directory. */
void browser_proc_stop(struct browser_proc *bp);

/* Decode a base64 PNG and write it to path. 0, or -1 after printing why. */
int browser_save_png(const char *b64, const char *path);

#endif
