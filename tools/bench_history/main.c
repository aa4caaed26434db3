/* main.c - chatd-bench-history's options and steps (see bench_history.h). */
#include "bench_history.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bh_peer_name(int i, char out[BH_NAME_MAX + 1])
{
    snprintf(out, BH_NAME_MAX + 1, "hb_p%d", i);
}

void bh_group_name(int i, char out[BH_NAME_MAX + 1])
{
    snprintf(out, BH_NAME_MAX + 1, "hb_g%d", i);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: chatd-bench-history setup|fill|measure [options]\n"
            "  setup    register the reader and the measured peers, create the measured groups\n"
            "  fill     write messages straight into chatd_messages (chatd stopped)\n"
            "  measure  time history pages through a running chatd\n"
            "options:\n"
            "  --host ADDR --port N          chatd (127.0.0.1:7000)\n"
            "  --db-socket PATH --db-user U --db-password-file F --db-name N   MariaDB (fill)\n"
            "  --messages N        messages to fill (10000000)\n"
            "  --conversations N   conversations they spread over (5000)\n"
            "  --groups N          of which groups (1000)\n"
            "  --measured N        conversations of each kind measured (20)\n"
            "  --pages N           pages timed per kind and depth (1000)\n"
            "  --limit N           messages per page (50)\n");
}

int main(int argc, char **argv)
{
    struct bh_options o = {.host = "127.0.0.1",
                           .port = 7000,
                           .db_user = "chatd",
                           .db_name = "chatd",
                           .messages = 10000000,
                           .conversations = 5000,
                           .groups = 1000,
                           .measured = 20,
                           .pages = 1000,
                           .limit = 50};
    static const struct option longs[] = {
        {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},
        {"db-socket", required_argument, NULL, 's'},
        {"db-user", required_argument, NULL, 'u'},
        {"db-password-file", required_argument, NULL, 'w'},
        {"db-name", required_argument, NULL, 'n'},
        {"messages", required_argument, NULL, 'm'},
        {"conversations", required_argument, NULL, 'c'},
        {"groups", required_argument, NULL, 'g'},
        {"measured", required_argument, NULL, 'M'},
        {"pages", required_argument, NULL, 'P'},
        {"limit", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
        switch (c) {
        case 'H':
            o.host = optarg;
            break;
        case 'p':
            o.port = atoi(optarg);
            break;
        case 's':
            o.db_socket = optarg;
            break;
        case 'u':
            o.db_user = optarg;
            break;
        case 'w':
            o.db_password_file = optarg;
            break;
        case 'n':
            o.db_name = optarg;
            break;
        case 'm':
            o.messages = atoll(optarg);
            break;
        case 'c':
            o.conversations = atoi(optarg);
            break;
        case 'g':
            o.groups = atoi(optarg);
            break;
        case 'M':
            o.measured = atoi(optarg);
            break;
        case 'P':
            o.pages = atoi(optarg);
            break;
        case 'l':
            o.limit = atoi(optarg);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind + 1 != argc || o.messages < 1 || o.conversations < 1 || o.groups < 0 ||
        o.groups > o.conversations || o.measured < 1 || o.measured > o.conversations - o.groups ||
        o.pages < 1 || o.limit < 1 || o.limit > 200) {
        usage(stderr);
        return 2;
    }
    const char *step = argv[optind];
    int rc;
    if (strcmp(step, "setup") == 0)
        rc = bh_setup(&o);
    else if (strcmp(step, "fill") == 0)
        rc = o.db_socket && o.db_password_file ? bh_fill(&o) : (usage(stderr), -1);
    else if (strcmp(step, "measure") == 0)
        rc = bh_measure(&o);
    else {
        usage(stderr);
        return 2;
    }
    return rc == 0 ? 0 : 1;
}
