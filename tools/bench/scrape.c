/* scrape.c - chatd's counters from its /metrics (see scrape.h). */
#include "scrape.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The whole answer, NUL-terminated, in a buffer the caller frees; NULL on failure. */
static char *http_get_metrics(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return NULL;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    static const char request[] = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    size_t len = 0, cap = 65536;
    char *body = malloc(cap);
    if (!body || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        write(fd, request, sizeof(request) - 1) != (ssize_t)(sizeof(request) - 1)) {
        free(body);
        close(fd);
        return NULL;
    }
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 2000) <= 0)
            break;
        if (len + 1 == cap) {
            char *grown = realloc(body, cap * 2);
            if (!grown)
                break;
            body = grown;
            cap *= 2;
        }
        ssize_t n = read(fd, body + len, cap - len - 1);
        if (n <= 0) {
            close(fd);
            body[len] = '\0';
            return body; /* the end of the answer (HTTP/1.0: the server closes) */
        }
        len += (size_t)n;
    }
    free(body);
    close(fd);
    return NULL;
}

/* The value of the sample `name` (a line "name value"), or -1 if there is none. */
static double sample(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *line = text; line && *line; line = strchr(line, '\n')) {
        if (*line == '\n')
            line++;
        if (strncmp(line, name, n) == 0 && line[n] == ' ')
            return strtod(line + n + 1, NULL);
    }
    return -1;
}

int chatd_counters_read(int port, struct chatd_counters *out)
{
    char *text = http_get_metrics(port);
    if (!text) {
        fprintf(stderr, "chatd-bench: cannot read /metrics on 127.0.0.1:%d\n", port);
        return -1;
    }
    out->batches = sample(text, "chatd_post_batches_total");
    out->committed = sample(text, "chatd_post_committed_total");
    out->request_seconds = sample(text, "chatd_request_duration_seconds_sum");
    out->requests = sample(text, "chatd_request_duration_seconds_count");
    free(text);
    if (out->batches < 0 || out->committed < 0 || out->request_seconds < 0 || out->requests < 0) {
        fprintf(stderr, "chatd-bench: /metrics on 127.0.0.1:%d lacks chatd's post counters\n",
                port);
        return -1;
    }
    return 0;
}
