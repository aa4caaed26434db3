/* log.c - leveled logging: one line per call, to stderr with a UTC timestamp, or to
 * syslog. */
#include "log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>

/* Read by every thread that logs, and changed by a reload on the loop thread. */
static _Atomic int current_level = CHATD_LOG_INFO;
static int to_syslog;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_configure(enum chatd_log_level level, int use_syslog, const char *ident)
{
    current_level = (int)level;
    if (use_syslog && !to_syslog)
        openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
    else if (!use_syslog && to_syslog)
        closelog();
    to_syslog = use_syslog;
}

enum chatd_log_level log_level(void)
{
    return (enum chatd_log_level)current_level;
}

int log_level_parse(const char *text)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
        if (strcmp(text, level_names[i]) == 0)
            return (int)i;
    return -1;
}

void log_writev(enum chatd_log_level level, const char *origin, const char *fmt, va_list ap)
{
    if ((int)level > current_level || (int)level < 0)
        return;
    char message[2048];
    vsnprintf(message, sizeof(message), fmt, ap);

    if (to_syslog) {
        static const int priorities[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
        if (origin)
            syslog(priorities[level], "%s: %s", origin, message);
        else
            syslog(priorities[level], "%s", message);
        return;
    }

    struct timeval now;
    gettimeofday(&now, NULL);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    char stamp[32];
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    /* One fprintf per line: stdio locks the stream, so lines from threads never mix. */
    fprintf(stderr, "%s.%03ldZ %-5s %s%s%s\n", stamp, (long)(now.tv_usec / 1000),
            level_names[level], origin ? origin : "", origin ? ": " : "", message);
}

void log_write(enum chatd_log_level level, const char *origin, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_writev(level, origin, fmt, ap);
    va_end(ap);
}
