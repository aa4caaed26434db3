/* log.h - leveled logging to stderr or syslog, shared by the host and (through the
 * host table) its plugins. Safe to call from any thread. */
#ifndef CHATD_HOST_LOG_H
#define CHATD_HOST_LOG_H

#include <chatd/plugin.h>
#include <stdarg.h>

/* Where log lines go and which get through. Call before threads start; a reload
 * calls it again at run time (the level is read atomically). */
void log_configure(enum chatd_log_level level, int use_syslog, const char *ident);
enum chatd_log_level log_level(void);
/* Parse "error", "warn", "info" or "debug"; -1 for anything else. */
int log_level_parse(const char *text);

void log_write(enum chatd_log_level level, const char *origin, const char *fmt, ...)
    CHATD_PRINTF(3, 4);
void log_writev(enum chatd_log_level level, const char *origin, const char *fmt, va_list ap)
    CHATD_PRINTF(3, 0);

#define log_error(...) log_write(CHATD_LOG_ERROR, NULL, __VA_ARGS__)
#define log_warn(...)  log_write(CHATD_LOG_WARN, NULL, __VA_ARGS__)
#define log_info(...)  log_write(CHATD_LOG_INFO, NULL, __VA_ARGS__)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_level() >= CHATD_LOG_DEBUG)                                                        \
            log_write(CHATD_LOG_DEBUG, NULL, __VA_ARGS__);                                         \
    } while (0)

#endif
