/* haproxy_proc.h - HAProxy (Debian's haproxy) in front of chatd nodes for the cluster
 * tests: plain TCP on a free loopback port, least connections first, a node whose
 * port stops answering taken out by a health check every 200 ms, and a connection to a
 * dead node dispatched to another; it sends each node a PROXY v2 header (the nodes' ports
 * must take one: cluster_ports). Run in the foreground, tied to the test process
 * (PR_SET_PDEATHSIG). For the test process's main thread. */
#ifndef CHATD_TEST_HAPROXY_PROC_H
#define CHATD_TEST_HAPROXY_PROC_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

struct haproxy_proc {
    pid_t pid; /* 0 when not running */
    int port;  /* where clients connect, on 127.0.0.1 */
    char dir[PATH_MAX];
    char config[PATH_MAX + 16]; /* DIR/haproxy.cfg */
    char log[PATH_MAX + 16];    /* DIR/haproxy.log: its stderr */
};

/* Write the config for the chatd nodes listening on 127.0.0.1 at the n ports, start
 * haproxy, and wait until a ping through it is answered by a node. Returns 0, or -1
 * after printing why (and its log) to stderr. */
int haproxy_proc_start(struct haproxy_proc *h, const int *ports, size_t n);
/* Stop it if it runs and remove its directory. */
void haproxy_proc_cleanup(struct haproxy_proc *h);

#endif
