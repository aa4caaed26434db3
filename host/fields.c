/* fields.c - checking a request's fields against its command's table and rules. */
#include "fields.h"

#include "plugin_options.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *field_type_name(enum chatd_field_type t)
{
    switch (t) {
    case CHATD_FIELD_STRING:
        return "a string";
    case CHATD_FIELD_INT:
        return "an integer";
    case CHATD_FIELD_BOOL:
        return "a boolean";
    case CHATD_FIELD_OBJECT:
        return "an object";
    case CHATD_FIELD_ARRAY:
        return "an array";
    }
    return NULL;
}

static int has_type(const json_t *v, enum chatd_field_type t)
{
    switch (t) {
    case CHATD_FIELD_STRING:
        return json_is_string(v);
    case CHATD_FIELD_INT:
        return json_is_integer(v);
    case CHATD_FIELD_BOOL:
        return json_is_boolean(v);
    case CHATD_FIELD_OBJECT:
        return json_is_object(v);
    case CHATD_FIELD_ARRAY:
        return json_is_array(v);
    }
    return 0;
}

int fields_copy(struct field_table *t, const struct chatd_field *src)
{
    memset(t, 0, sizeof(*t));
    if (!src)
        return 0;
    size_t n = 0;
    while (src[n].name)
        n++;
    t->fields = calloc(n + 1, sizeof(*t->fields));
    t->rules = calloc(n ? n : 1, sizeof(*t->rules));
    if (!t->fields || !t->rules) {
        fields_free(t);
        return CHATD_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (!field_type_name(src[i].type)) {
            fields_free(t);
            return CHATD_EINVAL;
        }
        t->fields[i] = src[i];
        t->fields[i].name = strdup(src[i].name);
        t->n = i + 1;
        if (!t->fields[i].name) {
            fields_free(t);
            return CHATD_ENOMEM;
        }
    }
    return 0;
}

static ssize_t field_index(const struct field_table *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->fields[i].name, name) == 0)
            return (ssize_t)i;
    return -1;
}

/* The limit an option gives, into *out. */
static int option_limit(struct chatd_plugin *p, const char *key, int64_t *out)
{
    const struct option_value *v = plugin_option(p, key);
    if (!v || v->option->type != CHATD_OPT_INT)
        return -1;
    *out = v->number;
    return 0;
}

static int add_rule(struct field_table *t, struct chatd_plugin *p, const struct chatd_field_rule *r,
                    char *why, size_t whylen)
{
    ssize_t i = field_index(t, r->field);
    if (i < 0) {
        snprintf(why, whylen, "no field '%s'", r->field);
        return CHATD_ENOENT;
    }
    struct chatd_field *f = &t->fields[i];
    struct field_rule *rule = &t->rules[i];
    if (r->min_int != 0 || r->max_int != 0) {
        if (f->type != CHATD_FIELD_INT || r->min_int > r->max_int) {
            snprintf(why, whylen, "field '%s': a range needs an integer field and min <= max",
                     f->name);
            return CHATD_EINVAL;
        }
        rule->has_range = 1;
        rule->min_int = r->min_int;
        rule->max_int = r->max_int;
    }
    if (r->max_from_option) {
        int64_t limit;
        if (option_limit(p, r->max_from_option, &limit) < 0) {
            snprintf(why, whylen, "field '%s': '%s' is not an integer option of the plugin",
                     f->name, r->max_from_option);
            return CHATD_EINVAL;
        }
        if (f->type == CHATD_FIELD_STRING && limit >= 0) {
            f->max_len = (size_t)limit;
        } else if (f->type == CHATD_FIELD_INT) {
            if (!rule->has_range)
                rule->min_int = INT64_MIN;
            rule->has_range = 1;
            rule->max_int = limit;
        } else {
            snprintf(why, whylen, "field '%s': only strings and integers take a limit", f->name);
            return CHATD_EINVAL;
        }
    }
    if (r->default_json) {
        json_t *v = json_loads(r->default_json, JSON_DECODE_ANY, NULL);
        if (!v || !has_type(v, f->type) || f->required) {
            json_decref(v);
            snprintf(why, whylen, "field '%s': the default must be JSON %s, for an optional field",
                     f->name, field_type_name(f->type));
            return CHATD_EINVAL;
        }
        json_decref(rule->default_value);
        rule->default_value = v;
    }
    return 0;
}

int fields_add_rules(struct field_table *t, struct chatd_plugin *p,
                     const struct chatd_field_rule *rules, char *why, size_t whylen)
{
    for (const struct chatd_field_rule *r = rules; r && r->field; r++) {
        int rc = add_rule(t, p, r, why, whylen);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int check_string(const struct chatd_field *f, const json_t *v, char *reason, size_t len)
{
    size_t n = json_string_length(v);
    if (f->max_len && (n < f->min_len || n > f->max_len)) {
        snprintf(reason, len, "'%s' must be %zu to %zu bytes long", f->name, f->min_len,
                 f->max_len);
        return -1;
    }
    if (n < f->min_len) {
        snprintf(reason, len, "'%s' must be at least %zu bytes long", f->name, f->min_len);
        return -1;
    }
    return 0;
}

static int check_range(const struct chatd_field *f, const struct field_rule *rule, const json_t *v,
                       char *reason, size_t len)
{
    json_int_t n = json_integer_value(v);
    if (!rule->has_range || (n >= rule->min_int && n <= rule->max_int))
        return 0;
    if (rule->min_int == INT64_MIN)
        snprintf(reason, len, "'%s' must be at most %lld", f->name, (long long)rule->max_int);
    else
        snprintf(reason, len, "'%s' must be %lld to %lld", f->name, (long long)rule->min_int,
                 (long long)rule->max_int);
    return -1;
}

int fields_check(const struct field_table *t, json_t *body, char *reason, size_t len)
{
    for (size_t i = 0; i < t->n; i++) {
        const struct chatd_field *f = &t->fields[i];
        const struct field_rule *rule = &t->rules[i];
        const json_t *v = json_object_get(body, f->name);
        if (!v) {
            if (f->required) {
                snprintf(reason, len, "'%s' is required", f->name);
                return -1;
            }
            if (rule->default_value)
                json_object_set(body, f->name, rule->default_value);
            continue;
        }
        if (!has_type(v, f->type)) {
            snprintf(reason, len, "'%s' must be %s", f->name, field_type_name(f->type));
            return -1;
        }
        if (f->type == CHATD_FIELD_STRING && check_string(f, v, reason, len) < 0)
            return -1;
        if (f->type == CHATD_FIELD_INT && check_range(f, rule, v, reason, len) < 0)
            return -1;
    }
    return 0;
}

void fields_free(struct field_table *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free((void *)(uintptr_t)t->fields[i].name); /* our own copy */
        json_decref(t->rules[i].default_value);
    }
    free(t->fields);
    free(t->rules);
    memset(t, 0, sizeof(*t));
}
