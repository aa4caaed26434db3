/* peer.c - a bench session's setup and teardown (see peer.h). */
#include "peer.h"
#include "traffic.h"

#include <stdlib.h>

void peers_init(struct peer *peers, int n, int first_user)
{
    for (int i = 0; i < n; i++) {
        struct peer *p = &peers[i];
        conn_init(&p->c);
        p->user = first_user + i;
        p->slot = -1;
        p->t = NULL;
        p->req = NULL;
        p->req_len = 0;
        p->next_seq = 0;
        p->inflight = 0;
        p->sent_ns = NULL;
        p->sent_head = 0;
        p->seen = NULL;
        p->resp = (struct resp_reader){0};
    }
}

void peers_free(struct peer *peers, int n)
{
    for (int i = 0; i < n; i++) {
        struct peer *p = &peers[i];
        conn_free(&p->c);
        if (p->seen && p->t)
            for (int k = 0; k < p->t->nslots; k++)
                seen_free(&p->seen[k]);
        free(p->seen);
        free(p->req);
        free(p->sent_ns);
    }
}
