/* main.c - chatd's command line: run the server, validate a config (-t), or describe a
 * plugin (--check-plugin). */
#include "allocator.h"
#include "config.h"
#include "log.h"
#include "plugin_loader.h"
#include "server.h"
#include "tls_context.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: chatd [options]\n"
            "\n"
            "A chat server whose commands are plugins, speaking JSON over TCP.\n"
            "\n"
            "  -c, --config FILE        config file (default %s)\n"
            "  -t, --test-config        check the config and its plugins, then exit\n"
            "  -l, --listen ADDR:PORT   listen here instead of [server] listen\n"
            "                           (use [ADDR]:PORT for IPv6; several separated by\n"
            "                           commas; ADDR:PORT tls for a TLS listener)\n"
            "  -p, --plugin-dir DIR     load plugins from DIR instead of [plugins] dir\n"
            "  -s, --set S.K=VALUE      set key K of section S, over the file (repeatable;\n"
            "                           e.g. --set database.socket=/run/mysqld.sock)\n"
            "      --log-level LEVEL    error, warn, info or debug (overrides [log] level)\n"
            "      --check-plugin FILE  print a plugin's descriptor and whether this chatd\n"
            "                           would load it, then exit (0: it would)\n"
            "  -V, --version            print version and ABI, then exit\n"
            "  -h, --help               print this help, then exit\n"
            "\n"
            "Exit status: 0 after a clean stop (SIGTERM/SIGINT) or a good check, 1 on any\n"
            "error, 2 on a bad command line.\n",
            CHATD_DEFAULT_CONFIG);
}

struct options {
    const char *config;
    const char *listen;
    const char *plugin_dir;
    const char *log_level;
    const char *sets[32];
    size_t n_sets;
    int test_only;
};

static int parse_args(int argc, char **argv, struct options *o)
{
    enum { OPT_LOG_LEVEL = 256, OPT_CHECK_PLUGIN };
    static const struct option longs[] = {
        {"config", required_argument, NULL, 'c'},
        {"test-config", no_argument, NULL, 't'},
        {"listen", required_argument, NULL, 'l'},
        {"plugin-dir", required_argument, NULL, 'p'},
        {"set", required_argument, NULL, 's'},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"check-plugin", required_argument, NULL, OPT_CHECK_PLUGIN},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "c:tl:p:s:Vh", longs, NULL)) != -1) {
        switch (c) {
        case 'c':
            o->config = optarg;
            break;
        case 't':
            o->test_only = 1;
            break;
        case 'l':
            o->listen = optarg;
            break;
        case 'p':
            o->plugin_dir = optarg;
            break;
        case 's':
            if (o->n_sets == sizeof(o->sets) / sizeof(o->sets[0])) {
                fprintf(stderr, "chatd: too many --set options\n");
                return -1;
            }
            o->sets[o->n_sets++] = optarg;
            break;
        case OPT_LOG_LEVEL:
            if (log_level_parse(optarg) < 0) {
                fprintf(stderr, "chatd: --log-level must be error, warn, info or debug\n");
                exit(2);
            }
            o->log_level = optarg;
            break;
        case OPT_CHECK_PLUGIN: {
            /* dlopen searches the library path for a bare name; a user means this folder. */
            char path[4096];
            snprintf(path, sizeof(path), "%s%s", strchr(optarg, '/') ? "" : "./", optarg);
            exit(plugin_describe(path, stdout) == 0 ? 0 : 1);
        }
        case 'V':
            printf("chatd %s (plugin ABI %d.%d, jansson %s, ", CHATD_VERSION, CHATD_ABI_MAJOR,
                   CHATD_ABI_MINOR, JANSSON_VERSION);
            allocator_describe(stdout);
            puts(")");
            exit(0);
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "chatd: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    allocator_tune();
    struct options o = {.config = CHATD_DEFAULT_CONFIG};
    if (parse_args(argc, argv, &o) < 0)
        return 2;
    /* Installed under a prefix chosen at install time: the sample config is beside us. */
    static char installed_config[PATH_MAX];
    char *beside = NULL;
    if (strcmp(o.config, CHATD_DEFAULT_CONFIG) == 0 && access(o.config, R_OK) != 0 &&
        (beside = config_installed_path(CHATD_CONFIG_FROM_BIN))) {
        snprintf(installed_config, sizeof(installed_config), "%s", beside);
        o.config = installed_config;
    }
    free(beside);

    char err[2048];
    struct config cfg;
    const struct config_source source = {.path = o.config,
                                         .sets = o.sets,
                                         .n_sets = o.n_sets,
                                         .listen = o.listen,
                                         .plugin_dir = o.plugin_dir,
                                         .log_level = o.log_level};
    int built = config_build(&cfg, &source, err, sizeof(err));
    if (built < 0) {
        fprintf(stderr, "chatd: %s\n", err);
        return built == -1 ? 1 : 2;
    }
    log_configure((enum chatd_log_level)cfg.log_level, (int)cfg.log_syslog, cfg.log_ident);

    int rc = 1;
    struct server *srv = server_new(&cfg);
    if (srv) {
        srv->check_only = o.test_only;
        srv->source = &source;
    }
    if (!srv) {
        fprintf(stderr, "chatd: cannot create the event loop\n");
    } else if (config_has_tls_listener(&cfg) &&
               !(srv->tls_ctx = tls_context_new(&cfg.tls, err, sizeof(err)))) {
        fprintf(stderr, "chatd: %s\n", err);
    } else if (server_load_plugins(srv, err, sizeof(err)) < 0) {
        fprintf(stderr, "chatd: %s\n", err);
    } else if (o.test_only) {
        printf("%s: configuration ok, %zu plugin%s%s", o.config, srv->n_plugins,
               srv->n_plugins == 1 ? "" : "s", srv->n_plugins ? ":" : "");
        for (size_t i = 0; i < srv->n_plugins; i++)
            printf(" %s", srv->plugins[i]->name);
        printf("\n");
        rc = 0;
    } else {
        rc = server_run(srv);
    }
    server_free(srv);
    config_free(&cfg);
    return rc;
}
