/* common.h - small helpers the chat plugins share (accounts, friends, private_chat,
 * groups). plugins/common is a static library linked into each of them with hidden
 * visibility: every plugin gets its own copy, and none of it is exported. It holds no
 * state; every function takes what it needs. */
#ifndef CHATD_PLUGINS_COMMON_H
#define CHATD_PLUGINS_COMMON_H

#include "names.h"

#include <chatd/plugin.h>
#include <stddef.h>

/* reply.c */

/* Answer req with `result` and, when reason is not NULL, a "reason". */
void chat_refuse(const struct chatd_host *host, struct chatd_request *req, const char *result,
                 const char *reason);
/* The word a failed job status is answered with: busy for CHATD_EBUSY, else internal. */
const char *chat_status_word(int status);
/* For a job's done: non-zero when the job failed (status != 0), after answering req
 * with the status word and `reason`. A done whose req is NULL after job_run failed to
 * submit: job_run has answered already, so nothing is sent. */
int chat_job_failed(const struct chatd_host *host, struct chatd_request *req, int status,
                    const char *reason);
/* A copy of s (NULL when out of memory). */
char *chat_strdup(const char *s);

/* message.c: the hook points around a message (private_chat, groups) */

/* 0 when "message.deliver" let the message through with a text of at most max_text
 * bytes; -1 with the result word and reason (may be NULL) the sender gets otherwise. */
int chat_deliver_verdict(const struct chatd_hook_outcome *outcome, const json_t *payload,
                         int64_t max_text, const char **result, const char **reason);
/* An accepted message, as "message.accepted" describes it. */
struct chat_accepted {
    const char *kind;   /* "private" or "group" */
    const char *from;   /* the sender */
    const char *to_key; /* "user_to" or "group" */
    const char *to;
    json_t *text; /* borrowed */
    const char *msg_id;
    int64_t ts;
    const char *result; /* the word the sender got */
};

/* Run "message.accepted" for a, when some plugin hooks it. */
void chat_message_accepted(const struct chatd_host *host, struct chatd_plugin *self,
                           const struct chat_accepted *a);

/* Set obj's `key` to the string `value`, both known to be valid UTF-8 (a constant, or
 * a name the name rule or the host checked): jansson's checked setters would scan
 * them again, for every message. 0, or -1 out of memory. */
int chat_set_name(json_t *obj, const char *key, const char *value);
/* A message's push: {"cmd":cmd,"group":group,"user_from":from,"text":text}, without
 * "group" when group is NULL (a private message); names as for chat_set_name, text
 * referenced. NULL out of memory. */
json_t *chat_push_new(const char *cmd, const char *group, const char *from, json_t *text);
/* The fields a posted message is answered with: msg_id, seq and ts. NULL out of memory. */
json_t *chat_posted_fields(const struct chatd_posted *posted);
/* The word a posted message is answered with, by the post's kind (a repeat's: the first
 * post's, whichever command made it): a private message `success` when its recipient
 * had a session online, else `offline`; any other `success`. */
const char *chat_posted_result(const struct chatd_posted *posted);

/* refused_send.c */

/* Answer req, a send of `sender` refused before it was posted (no such recipient or
 * group, not a member, a hook said no...) with `result` and `reason` (may be NULL),
 * unless its client_msg_id (NULL or "": none) was used before: then with the first
 * message's answer, whatever this one names (host post_find, ABI 1.5). Takes its own
 * hold on req: the caller may release and free its state at once. */
void chat_refuse_send(const struct chatd_host *host, struct chatd_plugin *self,
                      struct chatd_request *req, const char *sender, const char *client_msg_id,
                      const char *result, const char *reason);

/* rows.c */

/* A JSON array of the text column `col` of every row, in row order; NULL when out of
 * memory. rows may be NULL (an empty array). */
json_t *chat_column_array(const struct chatd_rows *rows, size_t col);
/* The text of row r, column c. */
const char *chat_cell(const struct chatd_rows *rows, size_t r, size_t c);
/* Worker: the integer in the first column of the first row of a query into *out; 0
 * when there is no row. */
int chat_query_int64(const struct chatd_host *host, struct chatd_db *db, const char *sql,
                     const struct chatd_value *params, size_t nparams, int64_t *out);

/* accounts_client.c: using the "accounts" service (plugins/accounts/chatd_accounts.h) */

/* Find the accounts service and hold it, for use by a job until chat_accounts_release.
 * 0, or the error of service_get/service_hold (the plugin's request then gets
 * `internal`). */
int chat_accounts_acquire(const struct chatd_host *host, struct chatd_plugin *self,
                          struct chatd_service *svc);
/* Worker thread, inside the caller's own CHATD_JOB_DB job: 1 when `user` has an account,
 * 0 when not, <0 a CHATD_E* error. */
int chat_accounts_user_exists(const struct chatd_service *svc, struct chatd_db *db,
                              const char *user);
/* Give back what chat_accounts_acquire held (loop thread). */
void chat_accounts_release(const struct chatd_host *host, struct chatd_plugin *self,
                           struct chatd_service *svc);

#endif
