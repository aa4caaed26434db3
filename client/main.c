/* main.c - chat's command line: options, the choice between the interactive and the
 * non-interactive mode, the password file, and --help. */
#include "exit_codes.h"
#include "session.h"
#include "token_store.h"

#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef CHAT_VERSION
#define CHAT_VERSION "0"
#endif

#define PASSWORD_FILE_MAX 4096

static const char usage_text[] =
    "usage: chat [OPTIONS]                      chat interactively\n"
    "       chat [OPTIONS] COMMAND [ARGS...]    run one command and exit\n"
    "\n"
    "options:\n"
    "  --host HOST           the server's name or address (default 127.0.0.1)\n"
    "  --port PORT           the server's port (default 8000)\n"
    "  --tls                 speak TLS (scripts/run listens with TLS on its port + 1),\n"
    "                        checking the server's certificate and name\n"
    "  --ca-file FILE        with --tls: trust the CA certificate(s) in FILE (such as\n"
    "                        scripts/run's var/tls/cert.pem) instead of the system's\n"
    "  --insecure            with --tls: do not check the certificate at all\n"
    "  --user USER           log in as USER (at the start, in interactive mode)\n"
    "  --password-file FILE  read the password from the first line of FILE ('-': stdin)\n"
    "  --timeout SECONDS     wait at most this long to connect and for each reply\n"
    "                        (default 10)\n"
    "  --json                commands print the server's lines as they are (JSON)\n"
    "  --help, --version\n"
    "\n"
    "commands (each needs --user, and --password-file unless a login token is saved;\n"
    "all but register log in first):\n"
    "  register              create the account --user\n"
    "  login                 check that --user can log in\n"
    "  send USER TEXT        send a private message\n"
    "  gsend GROUP TEXT      send a message to a group\n"
    "  friend USER           make USER a friend\n"
    "  create GROUP          create a group (and join it)\n"
    "  join GROUP            join a group\n"
    "  leave GROUP           leave a group\n"
    "  logout-all            log out everywhere, revoking every login token\n"
    "  listen [--seconds N]  print incoming messages, one a line, for N seconds\n"
    "                        (default: until interrupted or the connection ends)\n"
    "A password login saves the server's login token under\n"
    "$XDG_STATE_HOME/chatd/tokens/ (~/.local/state/...; readable by you only); later\n"
    "logins use it and need no password until it expires or logout-all revokes it.\n"
    "Messages that arrive while a command runs (such as those stored while you were\n"
    "offline) are printed too, one a line, before or after the reply.\n"
    "\n"
    "exit status:\n"
    "  0  done (a private message to an offline user is stored: that is done too)\n"
    "  1  the server refused the command or the login (the reason is printed)\n"
    "  2  usage error, or a local problem such as an unreadable password file\n"
    "  3  cannot connect, the server closed the connection, or no reply in time\n"
    "  4  the server sent something that is not a valid reply\n"
    "\n"
    "In interactive mode, /help lists the commands. See docs/client.md.\n";

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "chat: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'chat --help'.\n");
    va_end(ap);
    return CHAT_EXIT_USAGE;
}

/* The first line of `path` ("-" is stdin), without its line ending, into `out`. */
static int read_password_file(const char *path, char *out, size_t cap)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!f) {
        fprintf(stderr, "chat: cannot read the password file %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t n = fread(out, 1, cap - 1, f);
    int bad = ferror(f);
    if (f != stdin)
        fclose(f);
    if (bad) {
        fprintf(stderr, "chat: cannot read the password file %s\n", path);
        return -1;
    }
    out[n] = '\0';
    out[strcspn(out, "\r\n")] = '\0';
    return 0;
}

static int parse_int(const char *text, int min, int max, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

/* How many arguments each command takes after its name. */
static int command_args(const char *cmd)
{
    static const struct {
        const char *name;
        int args;
    } table[] = {{"register", 0}, {"login", 0}, {"send", 2},  {"gsend", 2},  {"friend", 1},
                 {"create", 1},   {"join", 1},  {"leave", 1}, {"listen", 0}, {"logout-all", 0}};
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (strcmp(table[i].name, cmd) == 0)
            return table[i].args;
    return -1;
}

int main(int argc, char **argv)
{
    static char password[PASSWORD_FILE_MAX];
    struct chat_options o = {.host = "127.0.0.1", .port = "8000", .timeout_ms = 10000};
    const char *password_file = NULL;
    int i = 1;

    setlocale(LC_CTYPE, "");
    signal(SIGPIPE, SIG_IGN);

    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        const char *opt = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        int seconds;
        if (strcmp(opt, "--") == 0) {
            i++;
            break;
        } else if (strcmp(opt, "--help") == 0) {
            fputs(usage_text, stdout);
            return CHAT_EXIT_OK;
        } else if (strcmp(opt, "--version") == 0) {
            printf("chat %s\n", CHAT_VERSION);
            return CHAT_EXIT_OK;
        } else if (strcmp(opt, "--json") == 0) {
            o.json = 1;
            continue;
        } else if (strcmp(opt, "--tls") == 0) {
            o.tls.enabled = 1;
            continue;
        } else if (strcmp(opt, "--insecure") == 0) {
            o.tls.insecure = 1;
            continue;
        }
        static const char *const with_value[] = {"--host",          "--port",    "--user",
                                                 "--password-file", "--timeout", "--ca-file"};
        int known = 0;
        for (size_t k = 0; k < sizeof(with_value) / sizeof(with_value[0]); k++)
            known |= strcmp(opt, with_value[k]) == 0;
        if (!known)
            return usage_error("unknown option %s", opt);
        if (!val)
            return usage_error("%s needs a value", opt);
        i++;
        if (strcmp(opt, "--host") == 0)
            o.host = val;
        else if (strcmp(opt, "--port") == 0)
            o.port = val;
        else if (strcmp(opt, "--user") == 0)
            o.user = val;
        else if (strcmp(opt, "--password-file") == 0)
            password_file = val;
        else if (strcmp(opt, "--ca-file") == 0)
            o.tls.ca_file = val;
        else if (strcmp(opt, "--timeout") == 0) {
            if (parse_int(val, 1, 3600, &seconds) != 0)
                return usage_error("--timeout wants whole seconds from 1 to 3600, not '%s'", val);
            o.timeout_ms = seconds * 1000;
        }
    }
    if ((o.tls.ca_file || o.tls.insecure) && !o.tls.enabled)
        return usage_error("--ca-file and --insecure go with --tls");
    if (o.tls.ca_file && o.tls.insecure)
        return usage_error("--ca-file and --insecure exclude each other");
    if (password_file) {
        if (read_password_file(password_file, password, sizeof(password)) != 0)
            return CHAT_EXIT_USAGE;
        o.password = password;
    }

    if (i == argc)
        return chat_interactive(&o, argv[0]);

    char **cmd = argv + i;
    int n = argc - i;
    /* listen takes its own option. */
    if (strcmp(cmd[0], "listen") == 0 && n == 3 && strcmp(cmd[1], "--seconds") == 0) {
        if (parse_int(cmd[2], 1, INT_MAX, &o.listen_seconds) != 0)
            return usage_error("listen --seconds wants a whole number above 0, not '%s'", cmd[2]);
        n = 1;
    }
    int want = command_args(cmd[0]);
    if (want < 0)
        return usage_error("unknown command '%s'", cmd[0]);
    if (n - 1 != want)
        return usage_error("wrong number of arguments for %s", cmd[0]);
    if (!o.user)
        return usage_error("%s needs --user", cmd[0]);
    char token[CHAT_TOKEN_MAX];
    if (!o.password &&
        (strcmp(cmd[0], "register") == 0 || chat_token_load(o.host, o.port, o.user, token) != 0))
        return usage_error("%s needs --password-file", cmd[0]);
    return chat_batch(&o, n, cmd);
}
