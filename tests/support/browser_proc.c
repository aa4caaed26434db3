/* browser_proc.c - start, wait for and end a headless browser (see browser_proc.h). */
#include "browser_proc.h"

#include "chatd_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define LAUNCH_TIMEOUT_MS 30000
#define POLL_MS           50

const char *browser_proc_binary(const char *env_name, const char *name)
{
    const char *env = getenv(env_name);
    if (env && *env)
        return access(env, X_OK) == 0 ? env : NULL;
    static char found[PATH_MAX];
    const char *path = getenv("PATH");
    while (path && *path) {
        size_t n = strcspn(path, ":");
        snprintf(found, sizeof(found), "%.*s/%s", (int)n, path, name);
        if (n && access(found, X_OK) == 0)
            return found;
        path += n + (path[n] == ':');
    }
    return NULL;
}

int browser_proc_make_dir(struct browser_proc *bp)
{
    bp->pid = 0;
    bp->port = 0;
    return chatd_tmpdir_make(bp->dir, sizeof(bp->dir));
}

static void exec_logged(const char *const argv[], const char *dir)
{
    char log[PATH_MAX + 8];
    snprintf(log, sizeof(log), "%s/log", dir);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int devnull = open("/dev/null", O_RDONLY);
    if (fd >= 0 && devnull >= 0) {
        dup2(devnull, STDIN_FILENO);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
    }
    /* Its dotfiles (Firefox's ~/.mozilla, fontconfig's cache) stay out of the real HOME. */
    setenv("HOME", dir, 1);
    /* execv's prototype predates const; it does not modify the strings. */
    execv(argv[0], (char *const *)(uintptr_t)argv);
    _exit(127);
}

int browser_proc_start(struct browser_proc *bp, const char *const argv[],
                       int (*read_port)(const char *dir))
{
    pid_t parent = getpid();
    fflush(NULL);
    bp->pid = fork();
    if (bp->pid == 0) {
        /* A group of its own, so browser_proc_stop ends its helper processes too. */
        if (setpgid(0, 0) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
            _exit(127);
        exec_logged(argv, bp->dir);
    }
    long long deadline = chatd_now_ms() + LAUNCH_TIMEOUT_MS;
    while (bp->pid > 0 && chatd_now_ms() < deadline) {
        if ((bp->port = read_port(bp->dir)) > 0)
            return 0;
        if (waitpid(bp->pid, NULL, WNOHANG) == bp->pid)
            bp->pid = 0;
        chatd_sleep_ms(POLL_MS);
    }
    char log[PATH_MAX + 8];
    snprintf(log, sizeof(log), "%s/log", bp->dir);
    char *text = chatd_file_read(log);
    fprintf(stderr, "%s did not start:\n%s\n", argv[0], text ? text : "");
    free(text);
    browser_proc_stop(bp);
    return -1;
}

void browser_proc_stop(struct browser_proc *bp)
{
    if (bp->pid > 0) {
        kill(-bp->pid, SIGKILL);
        waitpid(bp->pid, NULL, 0);
        bp->pid = 0;
    }
    if (bp->dir[0])
        chatd_tmpdir_remove(bp->dir);
    bp->dir[0] = '\0';
}

int browser_save_png(const char *b64, const char *path)
{
    size_t len = b64 ? strlen(b64) : 0;
    unsigned char *png = len ? malloc(len) : NULL;
    int n = png ? EVP_DecodeBlock(png, (const unsigned char *)b64, (int)len) : -1;
    /* EVP_DecodeBlock counts the padding's zero bytes too. */
    if (n > 0)
        n -= (len > 0 && b64[len - 1] == '=') + (len > 1 && b64[len - 2] == '=');
    FILE *f = n > 0 ? fopen(path, "wb") : NULL;
    int ok = f && fwrite(png, 1, (size_t)n, f) == (size_t)n;
    if (f && fclose(f) != 0)
        ok = 0;
    free(png);
    if (!ok)
        fprintf(stderr, "cannot save a screenshot to %s: %s\n", path, strerror(errno));
    return ok ? 0 : -1;
}
