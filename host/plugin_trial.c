/* plugin_trial.c - running a check of a plugin in a child process (see plugin_trial.h),
 * so that a plugin's code never runs in chatd just to be checked. */
#include "plugin_trial.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int plugin_trial_result(pid_t pid, int fd, char *err, size_t errlen);

int plugin_trial(int (*try_it)(void *arg, char *reason, size_t cap), void *arg, char *err,
                 size_t errlen)
{
    int pipefd[2];
    if (pipe(pipefd) < 0) {
        snprintf(err, errlen, "cannot create a pipe: %s", strerror(errno));
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(pipefd[0]);
        close(pipefd[1]);
        snprintf(err, errlen, "cannot fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        close(pipefd[0]);
        char reason[1024] = "";
        int rc = try_it(arg, reason, sizeof(reason));
        ssize_t ignored = write(pipefd[1], reason, strlen(reason));
        (void)ignored;
        _exit(rc == 0 ? 0 : 1);
    }
    close(pipefd[1]);
    return plugin_trial_result(pid, pipefd[0], err, errlen);
}

static int plugin_trial_result(pid_t pid, int fd, char *err, size_t errlen)
{
    /* A constructor that hangs must not hang chatd: the child gets a deadline. */
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    size_t used = 0;
    int timed_out = 0;
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        long elapsed = (long)(now.tv_sec - start.tv_sec) * 1000 +
                       (long)(now.tv_nsec - start.tv_nsec) / 1000000;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int ready = elapsed < PLUGIN_TRIAL_TIMEOUT_MS
                        ? poll(&pfd, 1, (int)(PLUGIN_TRIAL_TIMEOUT_MS - elapsed))
                        : 0;
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready <= 0) {
            timed_out = ready == 0;
            break;
        }
        ssize_t n = read(fd, err + used, errlen - used - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || (used += (size_t)n) + 1 >= errlen)
            break;
    }
    err[used] = '\0';
    close(fd);
    if (timed_out)
        kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (timed_out) {
        snprintf(err, errlen, "loading it did not finish within %d ms", PLUGIN_TRIAL_TIMEOUT_MS);
        return -1;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (used == 0)
        snprintf(err, errlen, "loading it crashed the test process");
    return -1;
}
