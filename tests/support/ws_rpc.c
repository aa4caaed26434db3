/* ws_rpc.c - id-matched commands over a browser's WebSocket (see ws_rpc.h). */
#include "ws_rpc.h"

#include "chatd_proc.h"
#include "ws_client.h"

#include <stdio.h>
#include <stdlib.h>

json_t *ws_rpc_call(struct ws_client *ws, int *next_id, const char *who, const char *method,
                    json_t *params, int quiet)
{
    int id = ++*next_id;
    json_t *msg = json_pack("{s:i, s:s, s:o}", "id", id, "method", method, "params",
                            params ? params : json_object());
    int sent = msg ? ws_client_send_json(ws, msg) : -1;
    json_decref(msg);
    long long deadline = chatd_now_ms() + WS_RPC_TIMEOUT_MS;
    while (sent == 0 && chatd_now_ms() < deadline) {
        json_t *in = ws_client_read_json(ws, (int)(deadline - chatd_now_ms()));
        if (!in)
            break;
        if (json_integer_value(json_object_get(in, "id")) != id) {
            json_decref(in); /* an event, or a late answer */
            continue;
        }
        json_t *result = json_incref(json_object_get(in, "result"));
        if (!result && !quiet) {
            char *dump = json_dumps(in, 0);
            fprintf(stderr, "%s: %s: %s\n", who, method, dump ? dump : "?");
            free(dump);
        }
        json_decref(in);
        return result;
    }
    fprintf(stderr, "%s: no answer to %s\n", who, method);
    return NULL;
}
