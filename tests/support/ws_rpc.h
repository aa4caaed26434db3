/* ws_rpc.h - one command over a browser's remote-control WebSocket: Chrome's DevTools
 * protocol and WebDriver BiDi both send {"id", "method", "params"} and answer with the
 * same id, a "result" on success; events (no matching id) come in between. */
#ifndef CHATD_TEST_WS_RPC_H
#define CHATD_TEST_WS_RPC_H

#include <jansson.h>

/* How long an answer may take: a fresh Firefox took over 15 s to answer session.new
 * on a loaded machine (load 13 on 2 cores). */
#define WS_RPC_TIMEOUT_MS 30000

struct ws_client;

/* Send the method with params (may be NULL; the reference is stolen) under the next id
 * (*next_id is advanced) and return the answer's "result" (a new reference); NULL when
 * the answer is an error (printed with `who` unless `quiet`) or nothing came in time. */
json_t *ws_rpc_call(struct ws_client *ws, int *next_id, const char *who, const char *method,
                    json_t *params, int quiet);

#endif
