/* options.c - chatd-bench's command line and --help. */
#include "bench.h"
#include "target.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: chatd-bench --port P [--workload W] [options]\n"
    "\n"
    "A load generator for chatd. It registers its users, logs them in, runs the\n"
    "workload for the measured window, and prints one JSON object of figures on stdout\n"
    "(a progress line a second on stderr). Exit status 1 when messages were lost or\n"
    "duplicated, or the server refused something during the run.\n"
    "\n"
    "Workloads (--workload):\n"
    "  private  N users in a ring (--users, 100), each keeping W private_chat requests\n"
    "           in flight to the next one (--inflight, 8) for T seconds (--seconds, 10).\n"
    "           Figures: deliveries/s, delivery latency (from the send time carried in\n"
    "           the text), reply latency, lost and duplicated messages.\n"
    "  group    G members in one group (--members, 100), S of them sending group_chat\n"
    "           (--senders, 10) with W in flight each (--inflight, 4) for T seconds.\n"
    "           Each message is pushed to the G-1 other members: deliveries/s counts\n"
    "           those pushes.\n"
    "  idle     C sessions (--sessions, 1000) logged in as U users (--users, C) and\n"
    "           held H seconds (--hold, 10). With --server-pid, chatd's VmRSS before\n"
    "           and while they are held, and the bytes per session. The open-file limit\n"
    "           is raised to the hard limit; a C beyond it is refused up front.\n"
    "  login    login storm: N users registered (--users, 100), then K connections at\n"
    "           a time (--concurrency, 8) connect, log in and close, for T seconds or\n"
    "           --count logins. Figures: logins/s, connects/s, login latency.\n"
    "  relogin  users back with their login tokens, as after a restart. With --save:\n"
    "           N users (--users, 10000) registered and logged in by password (run\n"
    "           chatd at a cheap password cost), their tokens written to --tokens FILE.\n"
    "           Without: every user of FILE logs in by token, K at a time\n"
    "           (--concurrency, 64). Figure: all_in_s, until the last is in.\n"
    "           tools/bench-relogin does both, at the default cost for the second.\n"
    "  flood    U logged-in users (--users, 20) each send join_group, leave_group in turn\n"
    "           (database writes) for T seconds, then again while F connections\n"
    "           (--flooders, 150) loop wrong-password logins. Figures: the users'\n"
    "           reply latency without and with the flood. Run at the real cost.\n"
    "  offline  N senders (--users, 100), W in flight each (--inflight, 4), write for T\n"
    "           seconds to R users (--receivers, N) that never log in, so every message\n"
    "           is stored. Figures: stored messages/s, reply latency. --verify then logs\n"
    "           the receivers in and counts that every stored message arrives once.\n"
    "           Each sender stores more than [plugin.private_chat] max_offline_per_sender\n"
    "           (1000) allows for one user: run chatd with it 0 (no limit).\n"
    "\n"
    "Targets (--target, for private, group and idle):\n"
    "  chatd    the default.\n"
    "  redis    Redis pub/sub: a RESP3 connection (HELLO 3) per user, subscribed to the\n"
    "           user's channel; a message is PUBLISH to the recipient's channel (its\n"
    "           integer is the reply); a group is one channel all members subscribe to\n"
    "           (Redis delivers to the sender too: G deliveries per message).\n"
    "  irc      an IRC server: NICK and USER per user, PRIVMSG to a nick, a group is a\n"
    "           channel all members JOIN. IRC answers nothing: a message counts as\n"
    "           answered (in flight, reply_latency_ms) when it reaches user FROM+1 mod N\n"
    "           (the recipient; in a group, the member after the sender).\n"
    "  Idle sessions of redis and irc are one user each (--users is --sessions).\n"
    "\n";
static const char usage_options[] =
    "Options:\n"
    "  --host ADDR         chatd's IPv4 address (127.0.0.1)\n"
    "  --port P            the server's port (required)\n"
    "  --target T          chatd, redis or irc (chatd; see above)\n"
    "  --port2 P           another node of the same cluster: the sessions of odd-numbered\n"
    "                      users connect there (in the private ring, with an even\n"
    "                      --users, every message crosses nodes)\n"
    "  --tls               speak TLS (the certificate is checked for --host)\n"
    "  --ws                speak WebSocket: --port (and --port2) is then chatd's [web]\n"
    "                      listener; every session upgrades on /ws and sends each\n"
    "                      request as a text message (with --tls: wss://)\n"
    "  --ca-file FILE      with --tls: trust the CA certificate(s) in FILE\n"
    "  --insecure          with --tls: do not check the certificate\n"
    "  --server-pid PID    chatd's pid: its CPU time over the window (and, idle, its\n"
    "                      memory) is read from /proc and reported beside the bench's\n"
    "  --db-pid PID        chatd's MariaDB server's pid: its CPU time over the window too\n"
    "  --metrics-port P    chatd's admin listener on 127.0.0.1:P: its commit batches'\n"
    "                      size and its mean time from request to reply over the window\n"
    "  --concurrency K     connects and logins outstanding at once during setup (64),\n"
    "                      and the login storm's parallel logins (8)\n"
    "  --rate R            private, group: offer R messages/s in all, paced every\n"
    "                      millisecond over the senders in turn, instead of sending\n"
    "                      again as each reply comes; --inflight (then 64) caps each\n"
    "                      sender, and a message due to a sender at its cap is not sent\n"
    "                      and counted as held_back (the server did not keep up)\n"
    "  --text-bytes N      pad message texts to about N bytes (no padding)\n"
    "  --client-ids        private, offline: give every message a client_msg_id (the\n"
    "                      idempotent send, one more look-up in its commit batch)\n"
    "  --drain S           after the window, wait up to S seconds for replies and\n"
    "                      deliveries still in flight (5)\n"
    "  --password P        the users' password (bench-pw)\n"
    "  --prefix NAME       user names are NAME<n> and the group NAMEg; existing users\n"
    "                      with the same password are reused (default: new per run)\n"
    "  --tokens FILE       relogin: where the tokens are written (--save) and read\n"
    "  --save              relogin: the preparation step (see above)\n"
    "  --flooders F        flood: connections looping wrong-password logins (150)\n"
    "  -h, --help          this text\n"
    "\n"
    "Run chatd with a cheap password cost for every workload but login, flood and\n"
    "relogin without --save, e.g.\n"
    "  --set plugin.accounts.password_opslimit=1 --set plugin.accounts.password_memlimit_kib=8\n"
    "else setup spends its time in Argon2id. For idle beyond 10,000 sessions, raise\n"
    "chatd's server.max_connections too. Every bench client has one address, which\n"
    "chatd's [limits] would refuse: switch them off for a bench, with\n"
    "  --set limits.login_per_address=off --set limits.failed_login_per_name=off\n"
    "  --set limits.requests_per_session=off --set limits.connections_per_address=off\n"
    "  --set limits.max_connections_per_address=0\n";

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "chatd-bench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see --help)\n");
    va_end(ap);
    exit(2);
}

static long num(const char *opt, const char *v, long min, long max)
{
    char *end;
    long n = v ? strtol(v, &end, 10) : 0;
    if (!v || *end || end == v || n < min || n > max) {
        fprintf(stderr, "chatd-bench: %s needs a whole number from %ld to %ld (see --help)\n", opt,
                min, max);
        exit(2);
    }
    return n;
}

static double seconds(const char *opt, const char *v)
{
    char *end;
    double d = v ? strtod(v, &end) : 0;
    if (!v || *end || end == v || !(d > 0) || d > 86400)
        usage_error("%s needs a number of seconds above 0", opt);
    return d;
}

void options_parse(struct bench *b, int argc, char **argv)
{
    struct options *o = &b->opt;
    *o = (struct options){.workload = "private",
                          .target = "chatd",
                          .host = "127.0.0.1",
                          .drain = 5,
                          .password = "bench-pw",
                          .seconds = 10,
                          .hold = 10};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage_text, stdout);
            fputs(usage_options, stdout);
            exit(0);
        } else if (strcmp(a, "--verify") == 0) {
            o->verify = 1;
            continue;
        } else if (strcmp(a, "--client-ids") == 0) {
            o->client_ids = 1;
            continue;
        } else if (strcmp(a, "--tls") == 0) {
            o->tls = 1;
            continue;
        } else if (strcmp(a, "--ws") == 0) {
            o->ws = 1;
            continue;
        } else if (strcmp(a, "--insecure") == 0) {
            o->insecure = 1;
            continue;
        } else if (strcmp(a, "--save") == 0) {
            o->save = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0)
            usage_error("unexpected argument '%s'", a);
        if (!v)
            usage_error("%s needs a value", a);
        i++;
        if (strcmp(a, "--workload") == 0)
            o->workload = v;
        else if (strcmp(a, "--target") == 0)
            o->target = v;
        else if (strcmp(a, "--host") == 0)
            o->host = v;
        else if (strcmp(a, "--port") == 0)
            o->port = (int)num(a, v, 1, 65535);
        else if (strcmp(a, "--port2") == 0)
            o->port2 = (int)num(a, v, 1, 65535);
        else if (strcmp(a, "--users") == 0)
            o->users = (int)num(a, v, 1, 10000000);
        else if (strcmp(a, "--inflight") == 0)
            o->inflight = (int)num(a, v, 1, 100000);
        else if (strcmp(a, "--rate") == 0)
            o->rate = (double)num(a, v, 1, 100000000);
        else if (strcmp(a, "--seconds") == 0)
            o->seconds = seconds(a, v);
        else if (strcmp(a, "--members") == 0)
            o->members = (int)num(a, v, 2, 10000000);
        else if (strcmp(a, "--senders") == 0)
            o->senders = (int)num(a, v, 1, 10000000);
        else if (strcmp(a, "--sessions") == 0)
            o->sessions = (int)num(a, v, 1, 10000000);
        else if (strcmp(a, "--hold") == 0)
            o->hold = seconds(a, v);
        else if (strcmp(a, "--concurrency") == 0)
            o->concurrency = (int)num(a, v, 1, 100000);
        else if (strcmp(a, "--count") == 0)
            o->count = num(a, v, 1, 1000000000);
        else if (strcmp(a, "--receivers") == 0)
            o->receivers = (int)num(a, v, 1, 10000000);
        else if (strcmp(a, "--server-pid") == 0)
            o->server_pid = (int)num(a, v, 1, 0x7fffffff);
        else if (strcmp(a, "--db-pid") == 0)
            o->db_pid = (int)num(a, v, 1, 0x7fffffff);
        else if (strcmp(a, "--metrics-port") == 0)
            o->metrics_port = (int)num(a, v, 1, 65535);
        else if (strcmp(a, "--text-bytes") == 0)
            o->text_bytes = (int)num(a, v, 0, 60000);
        else if (strcmp(a, "--drain") == 0)
            o->drain = seconds(a, v);
        else if (strcmp(a, "--password") == 0)
            o->password = v;
        else if (strcmp(a, "--prefix") == 0)
            o->prefix = v;
        else if (strcmp(a, "--ca-file") == 0)
            o->ca_file = v;
        else if (strcmp(a, "--tokens") == 0)
            o->tokens = v;
        else if (strcmp(a, "--flooders") == 0)
            o->flooders = (int)num(a, v, 1, 100000);
        else
            usage_error("unknown option '%s'", a);
    }
    if (o->port == 0)
        usage_error("%s", "--port is required");
    if ((o->ca_file || o->insecure) && !o->tls)
        usage_error("%s", "--ca-file and --insecure go with --tls");
    b->addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
    if (inet_pton(AF_INET, o->host, &b->addr.sin_addr) != 1)
        usage_error("--host needs an IPv4 address, not '%s'", o->host);
    b->addr2 = b->addr;
    if (o->port2)
        b->addr2.sin_port = htons((uint16_t)o->port2);
    for (const char *p = o->password; *p; p++)
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
            usage_error("%s", "--password may not hold quotes, backslashes or control characters");

    const char *w = o->workload;
    int private = strcmp(w, "private") == 0, group = strcmp(w, "group") == 0;
    int idle = strcmp(w, "idle") == 0, login = strcmp(w, "login") == 0;
    int offline = strcmp(w, "offline") == 0;
    int relogin = strcmp(w, "relogin") == 0, flood = strcmp(w, "flood") == 0;
    if (!private && !group && !idle && !login && !offline && !relogin && !flood)
        usage_error("unknown workload '%s'", w);
    int chatd = strcmp(o->target, "chatd") == 0;
    if (!chatd && strcmp(o->target, "redis") != 0 && strcmp(o->target, "irc") != 0)
        usage_error("unknown target '%s'", o->target);
    if (!chatd && !private && !group && !idle)
        usage_error("--target %s runs private, group and idle only", o->target);
    if (!chatd && (o->tls || o->ws || o->port2 || o->client_ids))
        usage_error("%s", "--tls, --ws, --port2 and --client-ids are chatd's");
    if (relogin && !o->tokens)
        usage_error("%s", "relogin needs --tokens FILE");
    if (!o->flooders)
        o->flooders = 150;
    if (o->rate && !private && !group)
        usage_error("%s", "--rate goes with the private and group workloads");
    if (!o->inflight)
        o->inflight = o->rate ? 64 : private ? 8 : 4;
    /* At the real password cost a login takes a worker 0.1 s or more, and a login that
     * waits in chatd's queue past its job budget (5 s) is answered internal: a storm
     * wider than a few times the workers measures that budget, not the logins. */
    if (!o->concurrency)
        o->concurrency = login ? 8 : 64;
    if (!o->members)
        o->members = 100;
    if (!o->senders)
        o->senders = 10;
    if (!o->sessions)
        o->sessions = 1000;
    if (!o->users)
        o->users = idle ? o->sessions : relogin ? 10000 : flood ? 20 : 100;
    if (!o->receivers)
        o->receivers = o->users;
    if (!chatd && idle && o->users != o->sessions)
        usage_error("--target %s holds one user per idle session (no --users)", o->target);
    if (private && o->users < 2)
        usage_error("%s", "private needs at least 2 users");
    if (group && o->senders > o->members)
        usage_error("%s", "--senders cannot exceed --members");

    /* Names are PREFIX<n>: at most 32 letters, digits and underscores. */
    if (o->prefix) {
        size_t len = strlen(o->prefix);
        if (len < 1 || len > 20 ||
            strspn(o->prefix, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP"
                              "QRSTUVWXYZ0123456789_") != len)
            usage_error("--prefix needs 1 to 20 letters, digits or underscores, not '%s'",
                        o->prefix);
        memcpy(b->prefix, o->prefix, len + 1);
    } else {
        /* New users every run, so nothing stored by an earlier run reaches this one. */
        static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        unsigned long long v =
            (unsigned long long)ts.tv_sec * 1000 + (unsigned long long)ts.tv_nsec / 1000000;
        v = v * 64 + ((unsigned long long)getpid() & 63);
        char tmp[16];
        int n = 0;
        while (v && n < 9) {
            tmp[n++] = digits[v % 36];
            v /= 36;
        }
        b->prefix[0] = 'b';
        for (int i = 0; i < n; i++)
            b->prefix[1 + i] = tmp[i];
        b->prefix[1 + n] = '_';
        b->prefix[2 + n] = '\0';
    }
}

const struct target *target_of(const struct bench *b)
{
    if (strcmp(b->opt.target, "redis") == 0)
        return &target_redis;
    if (strcmp(b->opt.target, "irc") == 0)
        return &target_irc;
    return &target_chatd;
}
