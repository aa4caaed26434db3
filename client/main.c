/* main.c - chat's command line: options, the choice between the interactive and the
 * non-interactive mode, the password file, and --help. */
#include "config_file.h"
#include "device.h"
#include "exit_codes.h"
#include "session.h"
#include "token_store.h"

#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
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
    "  --device NAME         the device name to log in with (default: one chosen for\n"
    "                        this installation, kept in the state folder)\n"
    "  --config FILE         read host, port, user, device, tls, ca_file, insecure and\n"
    "                        timeout from FILE (default ~/.config/chatd/chat.conf, if\n"
    "                        it exists); the command line overrides it\n"
    "  --password-file FILE  read the password from the first line of FILE ('-': stdin)\n"
    "  --timeout SECONDS     wait at most this long to connect and for each reply\n"
    "                        (default 10)\n"
    "  --json                commands print the server's lines as they are (JSON)\n"
    "  -h, --help, --version\n"
    "An option's value may also follow an '=': --port=8001.\n"
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
    "In interactive mode, /help lists the commands; with commands piped in, chat exits 1\n"
    "if any of them failed. See docs/client.md.\n";

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

/* The command line's settings; NULL or -1 where it said nothing, so that the config
 * file's apply there. */
struct cli {
    const char *host, *port, *user, *device, *ca_file, *password_file, *config;
    int tls, insecure, json, timeout_s;
};

/* Parse the options before the command into cli; returns the index of the first
 * argument after them, or -1 after a usage error (its status in *status), or -2 when
 * --help or --version was answered. */
static int parse_options(int argc, char **argv, struct cli *cli, int *status)
{
    static const struct {
        const char *name;
        size_t offset; /* of the const char * in struct cli */
    } with_value[] = {
        {"--host", offsetof(struct cli, host)},
        {"--port", offsetof(struct cli, port)},
        {"--user", offsetof(struct cli, user)},
        {"--device", offsetof(struct cli, device)},
        {"--ca-file", offsetof(struct cli, ca_file)},
        {"--password-file", offsetof(struct cli, password_file)},
        {"--config", offsetof(struct cli, config)},
    };
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        char name[64];
        const char *arg = argv[i], *val = NULL;
        const char *eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        snprintf(name, sizeof(name), "%.*s", (int)(len < 63 ? len : 63), arg);
        if (eq)
            val = eq + 1;
        if (strcmp(name, "--") == 0 && !eq)
            return i + 1;
        if ((strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) && !eq) {
            fputs(usage_text, stdout);
            *status = CHAT_EXIT_OK;
            return -2;
        }
        if (strcmp(name, "--version") == 0 && !eq) {
            printf("chat %s\n", CHAT_VERSION);
            *status = CHAT_EXIT_OK;
            return -2;
        }
        int *flag = strcmp(name, "--json") == 0       ? &cli->json
                    : strcmp(name, "--tls") == 0      ? &cli->tls
                    : strcmp(name, "--insecure") == 0 ? &cli->insecure
                                                      : NULL;
        if (flag) {
            if (eq) {
                *status = usage_error("%s takes no value", name);
                return -1;
            }
            *flag = 1;
            continue;
        }
        int known = strcmp(name, "--timeout") == 0;
        for (size_t k = 0; k < sizeof(with_value) / sizeof(with_value[0]); k++)
            known |= strcmp(name, with_value[k].name) == 0;
        if (!known) {
            *status = usage_error("unknown option %s", name);
            return -1;
        }
        if (!eq) {
            if (i + 1 >= argc) {
                *status = usage_error("%s needs a value", name);
                return -1;
            }
            val = argv[++i];
        }
        if (strcmp(name, "--timeout") == 0) {
            if (parse_int(val, 1, 3600, &cli->timeout_s) != 0) {
                *status =
                    usage_error("--timeout wants whole seconds from 1 to 3600, not '%s'", val);
                return -1;
            }
            continue;
        }
        for (size_t k = 0; k < sizeof(with_value) / sizeof(with_value[0]); k++)
            if (strcmp(name, with_value[k].name) == 0)
                *(const char **)((char *)cli + with_value[k].offset) = val;
    }
    return i;
}
/* The config file: --config's (which must exist) or the default one (if it exists). */
static int load_config(const struct cli *cli, struct chat_config *cfg)
{
    char path[4096], err[4400];
    const char *file = cli->config;
    if (!file && chat_config_default_path(path, sizeof(path)) == 0)
        file = path;
    if (!file) {
        chat_config_load("/nonexistent/chat.conf", 0, cfg, err, sizeof(err)); /* defaults */
        return 0;
    }
    if (chat_config_load(file, cli->config != NULL, cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "chat: %s\n", err);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static char password[PASSWORD_FILE_MAX];
    static char device[CHAT_DEVICE_MAX + 8];
    static struct chat_config cfg;
    struct cli cli = {0};
    struct chat_options o = {0};
    int status = CHAT_EXIT_OK;

    setlocale(LC_CTYPE, "");
    signal(SIGPIPE, SIG_IGN);

    int i = parse_options(argc, argv, &cli, &status);
    if (i < 0)
        return status;
    if (load_config(&cli, &cfg) != 0)
        return CHAT_EXIT_USAGE;
    /* The command line first, then the config file, then the defaults. */
    o.host = cli.host ? cli.host : cfg.host[0] ? cfg.host : "127.0.0.1";
    o.port = cli.port ? cli.port : cfg.port[0] ? cfg.port : "8000";
    o.user = cli.user ? cli.user : cfg.user[0] ? cfg.user : NULL;
    o.tls.enabled = cli.tls || cfg.tls == 1;
    o.tls.insecure = cli.insecure || cfg.insecure == 1;
    o.tls.ca_file = cli.ca_file ? cli.ca_file : cfg.ca_file[0] ? cfg.ca_file : NULL;
    o.json = cli.json;
    o.timeout_ms = 1000 * (cli.timeout_s ? cli.timeout_s : cfg.timeout_s ? cfg.timeout_s : 10);
    if (cli.device && !chat_device_valid(cli.device))
        return usage_error("--device wants 1 to 64 of A-Z a-z 0-9 _ . -, not '%s'", cli.device);
    if (cli.device || cfg.device[0])
        snprintf(device, sizeof(device), "%s", cli.device ? cli.device : cfg.device);
    else
        chat_device_name(device, sizeof(device));
    o.device = device;

    if ((o.tls.ca_file || o.tls.insecure) && !o.tls.enabled)
        return usage_error("--ca-file and --insecure go with --tls");
    if (o.tls.ca_file && o.tls.insecure)
        return usage_error("--ca-file and --insecure exclude each other");
    if (cli.password_file) {
        if (read_password_file(cli.password_file, password, sizeof(password)) != 0)
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
