/* conformance.c - the checks every plugin gets from chatd_testkit_conformance_suite():
 * what it exports, a clean start and stop, and how each registered command answers
 * requests it cannot take. */
#include "testkit_internal.h"

#include "plugin_elf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The plugins the suites of this process check; a test's loop index picks one. Check
 * keeps pointing at the suite's name, so it lives here too. */
#define MAX_TARGETS 64
struct target {
    const char *path;
    const char *const *settings;
    char suite_name[256];
};
static struct target targets[MAX_TARGETS];
static size_t n_targets;

/* The user every logged-in conformance session has. */
#define USER "conformance"

static struct chatd_testkit *start_kit(int i)
{
    ck_assert_int_lt(i, (int)n_targets);
    struct chatd_testkit *kit = chatd_testkit_new(targets[i].path);
    for (const char *const *s = targets[i].settings; s && *s; s++)
        chatd_testkit_set(kit, *s);
    ck_assert_msg(chatd_testkit_start(kit) == 0, "%s does not start: %s%s", targets[i].path,
                  chatd_testkit_error(kit),
                  chatd_testkit_has_database(kit)
                      ? ""
                      : " (no database: set CHATD_TESTKIT_DB_SOCKET for one)");
    return kit;
}

/* The commands the plugin registered, in name order so failures are reproducible. */
static int by_name(const void *a, const void *b)
{
    const struct command *x = *(const struct command *const *)a;
    const struct command *y = *(const struct command *const *)b;
    return strcmp(x->name, y->name);
}

static const struct command **commands_of(struct chatd_testkit *kit, size_t *n)
{
    *n = HASH_COUNT(kit->srv->commands);
    const struct command **list = calloc(*n ? *n : 1, sizeof(*list));
    ck_assert_ptr_nonnull(list);
    size_t k = 0;
    for (const struct command *c = kit->srv->commands; c; c = c->hh.next)
        list[k++] = c;
    qsort(list, *n, sizeof(*list), by_name);
    return list;
}

/* A value of the field's type that its table accepts. */
static json_t *valid_value(const struct chatd_field *f)
{
    switch (f->type) {
    case CHATD_FIELD_STRING: {
        size_t len = f->min_len ? f->min_len : 1;
        if (f->max_len && len > f->max_len)
            len = f->max_len;
        char *text = calloc(1, len + 1);
        ck_assert_ptr_nonnull(text);
        memset(text, 'a', len);
        json_t *v = json_string(text);
        free(text);
        return v;
    }
    case CHATD_FIELD_INT:
        return json_integer(1);
    case CHATD_FIELD_BOOL:
        return json_true();
    case CHATD_FIELD_OBJECT:
        return json_object();
    case CHATD_FIELD_ARRAY:
        return json_array();
    }
    return json_null();
}

/* A value of another type than the field's. */
static json_t *wrong_value(const struct chatd_field *f)
{
    switch (f->type) {
    case CHATD_FIELD_STRING:
        return json_integer(42);
    case CHATD_FIELD_INT:
        return json_string("1");
    case CHATD_FIELD_BOOL:
        return json_string("yes");
    case CHATD_FIELD_OBJECT:
        return json_array();
    case CHATD_FIELD_ARRAY:
        return json_object();
    }
    return json_null();
}

/* {"cmd":name} with every required field valid, except `skip` (left out) and `bad`
 * (set to bad_value, taken). */
static json_t *request_for(const struct command *c, const struct chatd_field *skip,
                           const struct chatd_field *bad, json_t *bad_value)
{
    json_t *req = json_pack("{ss}", "cmd", c->name);
    for (const struct chatd_field *f = c->spec.fields; f && f->name; f++) {
        if (f == bad)
            json_object_set_new(req, f->name, bad_value);
        else if (f != skip && f->required)
            json_object_set_new(req, f->name, valid_value(f));
    }
    return req;
}

static json_t *send_json(struct chatd_testkit_session *s, json_t *req)
{
    char *text = json_dumps(req, JSON_COMPACT);
    ck_assert_ptr_nonnull(text);
    json_t *reply = chatd_testkit_request_raw(s, text, strlen(text));
    ck_assert_msg(reply != NULL, "%s: %s", text, chatd_testkit_error(s->kit));
    free(text);
    json_decref(req);
    return reply;
}

/* Send req on a fresh session of its own and expect `<cmd>_reply` with `result`
 * (any result when NULL); `what` says what the request tries. */
static void expect(struct chatd_testkit *kit, const struct command *c, json_t *req,
                   const char *result, const char *what)
{
    char *text = json_dumps(req, JSON_COMPACT);
    ck_assert_ptr_nonnull(text);
    struct chatd_testkit_session *s = chatd_testkit_login(kit, USER);
    json_t *reply = send_json(s, req);
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "%s_reply", c->name);
    const char *got_cmd = chatd_testkit_string(reply, "cmd");
    const char *got = chatd_testkit_result(reply);
    char *reply_text = json_dumps(reply, JSON_COMPACT);
    ck_assert_msg(got_cmd && strcmp(got_cmd, cmd) == 0 && got &&
                      (!result || strcmp(got, result) == 0),
                  "command '%s', %s: sent %s, expected %s/%s, got %s", c->name, what, text, cmd,
                  result ? result : "a result word", reply_text ? reply_text : "?");
    free(reply_text);
    free(text);
}

struct name_list {
    char text[1024];
};

static void add_name(const char *name, void *arg)
{
    struct name_list *list = arg;
    size_t used = strlen(list->text);
    snprintf(list->text + used, sizeof(list->text) - used, "%s%s", used ? ", " : "", name);
}

START_TEST(exports_only_the_descriptor)
{
    ck_assert_int_lt(_i, (int)n_targets);
    const char *path = targets[_i].path;
    struct elf_plugin *ep;
    char err[1024];
    ck_assert_msg(elf_plugin_open(path, &ep, err, sizeof(err)) == 0, "%s", err);
    struct name_list names = {""};
    size_t n = elf_plugin_exports(ep, add_name, &names);
    elf_plugin_close(ep);
    ck_assert_msg(n == 1,
                  "%s exports %zu dynamic symbols (%s); a plugin exports only '%s': build it "
                  "with -fvisibility=hidden (chatd_add_plugin and chatd-plugin.pc do) and make "
                  "its other functions static",
                  path, n, names.text, CHATD_PLUGIN_SYMBOL);
}
END_TEST

START_TEST(starts_and_stops_cleanly)
{
    struct chatd_testkit *kit = start_kit(_i);
    /* Give timers the plugin started in init a chance to run. */
    chatd_testkit_run(kit, 50);
    chatd_testkit_free(kit);
}
END_TEST

START_TEST(missing_and_mistyped_fields_are_bad_request)
{
    struct chatd_testkit *kit = start_kit(_i);
    size_t n;
    const struct command **list = commands_of(kit, &n);
    for (size_t k = 0; k < n; k++) {
        const struct command *c = list[k];
        int any_required = 0;
        for (const struct chatd_field *f = c->spec.fields; f && f->name; f++)
            any_required |= f->required;
        if (any_required)
            expect(kit, c, json_pack("{ss}", "cmd", c->name), "bad_request", "no fields at all");
        for (const struct chatd_field *f = c->spec.fields; f && f->name; f++) {
            char what[160];
            snprintf(what, sizeof(what), "'%s' of the wrong type", f->name);
            expect(kit, c, request_for(c, NULL, f, wrong_value(f)), "bad_request", what);
            if (f->required) {
                snprintf(what, sizeof(what), "'%s' missing", f->name);
                expect(kit, c, request_for(c, f, NULL, NULL), "bad_request", what);
            }
            if (f->type == CHATD_FIELD_STRING && f->max_len && f->max_len < 1000000) {
                char *text = calloc(1, f->max_len + 2);
                ck_assert_ptr_nonnull(text);
                memset(text, 'a', f->max_len + 1);
                snprintf(what, sizeof(what), "'%s' longer than %zu bytes", f->name, f->max_len);
                expect(kit, c, request_for(c, NULL, f, json_string(text)), "bad_request", what);
                free(text);
            }
        }
    }
    free(list);
    chatd_testkit_free(kit);
}
END_TEST

START_TEST(plausible_requests_get_one_reply)
{
    struct chatd_testkit *kit = start_kit(_i);
    size_t n;
    const struct command **list = commands_of(kit, &n);
    for (size_t k = 0; k < n; k++)
        expect(kit, list[k], request_for(list[k], NULL, NULL, NULL), NULL,
               "every required field present");
    /* A second reply from a late job or timer would be caught here. */
    chatd_testkit_run(kit, 100);
    free(list);
    chatd_testkit_free(kit);
}
END_TEST

START_TEST(commands_that_need_login_refuse_anonymous_sessions)
{
    struct chatd_testkit *kit = start_kit(_i);
    size_t n;
    const struct command **list = commands_of(kit, &n);
    for (size_t k = 0; k < n; k++) {
        const struct command *c = list[k];
        if (c->spec.flags & CHATD_CMD_ANONYMOUS)
            continue;
        struct chatd_testkit_session *s = chatd_testkit_connect(kit);
        json_t *reply = send_json(s, request_for(c, NULL, NULL, NULL));
        char cmd[96];
        snprintf(cmd, sizeof(cmd), "%s_reply", c->name);
        chatd_testkit_assert_reply(reply, cmd, "not_logged_in");
    }
    free(list);
    chatd_testkit_free(kit);
}
END_TEST

Suite *chatd_testkit_conformance_suite(const char *path, const char *const *settings)
{
    /* This runs before any test, where Check's assertions cannot report. */
    if (n_targets == MAX_TARGETS) {
        fprintf(stderr, "chatd_testkit_conformance_suite: more than %d suites\n", MAX_TARGETS);
        abort();
    }
    int i = (int)n_targets++;
    struct target *t = &targets[i];
    t->path = path;
    t->settings = settings;
    const char *slash = strrchr(path, '/');
    snprintf(t->suite_name, sizeof(t->suite_name), "conformance of %s", slash ? slash + 1 : path);
    Suite *suite = suite_create(t->suite_name);
    TCase *tc = tcase_create("conformance");
    /* A plugin with migrations and password hashing takes a while to start. */
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, exports_only_the_descriptor, i, i + 1);
    tcase_add_loop_test(tc, starts_and_stops_cleanly, i, i + 1);
    tcase_add_loop_test(tc, missing_and_mistyped_fields_are_bad_request, i, i + 1);
    tcase_add_loop_test(tc, plausible_requests_get_one_reply, i, i + 1);
    tcase_add_loop_test(tc, commands_that_need_login_refuse_anonymous_sessions, i, i + 1);
    suite_add_tcase(suite, tc);
    return suite;
}
