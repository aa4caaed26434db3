/* main.c - chatd-bench: read the options, set up the loop, run the workload. The
 * files here, one concern each: options.c (command line), conn.c (connections, batched
 * writes, chunked reads), ws.c (WebSocket frames and upgrade, with --ws), proto.c (fields found in
 * lines without a JSON parser), hist.c (latency histogram), seen.c (lost and duplicated messages),
 * sysinfo.c (CPU, memory, open-file limit), report.c (the JSON figures), setup.c (register,
 * connect, log in), traffic.c (the message engine), target_*.c (the servers it loads:
 * chatd, and for comparison Redis pub/sub, with resp.c, and IRC), and wl_*.c (one file
 * per workload). */
#include "bench.h"
#include "conn.h"
#include "report.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

size_t user_name(const struct bench *b, int i, char *out)
{
    return (size_t)sprintf(out, "%s%d", b->prefix, i);
}

size_t group_name(const struct bench *b, char *out)
{
    return (size_t)sprintf(out, "%sg", b->prefix);
}

void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("chatd-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

int main(int argc, char **argv)
{
    static struct bench b;
    options_parse(&b, argc, argv);
    signal(SIGPIPE, SIG_IGN);
    b.base = event_base_new();
    if (!b.base)
        die("cannot create the event loop");
    conn_system_init(b.base);
    if (b.opt.tls)
        conn_tls_init(b.opt.host, b.opt.ca_file, b.opt.insecure);
    if (b.opt.ws)
        conn_ws_init();
    report_transport(b.opt.ws ? (b.opt.tls ? "wss" : "ws") : (b.opt.tls ? "tls" : "tcp"));
    fprintf(stderr, "chatd-bench: workload %s against %s at %s:%d%s, users %s<n>\n", b.opt.workload,
            b.opt.target, b.opt.host, b.opt.port, b.opt.ws ? " (WebSocket)" : "", b.prefix);

    int status;
    if (strcmp(b.opt.workload, "private") == 0)
        status = workload_private(&b);
    else if (strcmp(b.opt.workload, "group") == 0)
        status = workload_group(&b);
    else if (strcmp(b.opt.workload, "idle") == 0)
        status = workload_idle(&b);
    else if (strcmp(b.opt.workload, "login") == 0)
        status = workload_login(&b);
    else if (strcmp(b.opt.workload, "relogin") == 0)
        status = workload_relogin(&b);
    else if (strcmp(b.opt.workload, "flood") == 0)
        status = workload_flood(&b);
    else
        status = workload_offline(&b);
    conn_system_free();
    event_base_free(b.base);
    return status;
}
