/* fields.h - a command's field table as the host keeps it: a copy of the plugin's
 * table (so a plugin may build it in init), the rules of ABI 1.2 (integer ranges,
 * defaults, limits from options), and the check every request goes through. */
#ifndef CHATD_HOST_FIELDS_H
#define CHATD_HOST_FIELDS_H

#include <chatd/plugin.h>
#include <stddef.h>

struct chatd_plugin;

/* What the host adds to one field of a command's table. */
struct field_rule {
    int has_range;
    int64_t min_int, max_int;
    json_t *default_value; /* NULL: an absent field stays absent */
};

struct field_table {
    struct chatd_field *fields; /* NULL-terminated copy, names owned; NULL: no table */
    struct field_rule *rules;   /* one per field */
    size_t n;
};

/* Copy src (NULL-terminated, may be NULL) into t. CHATD_ENOMEM or CHATD_EINVAL (a field
 * without a valid type). */
int fields_copy(struct field_table *t, const struct chatd_field *src);
/* Apply rules (ended by a NULL field) from plugin p. CHATD_ENOENT for an unknown field
 * or option, CHATD_EINVAL for a bad default or range. `why` gets the reason. */
int fields_add_rules(struct field_table *t, struct chatd_plugin *p,
                     const struct chatd_field_rule *rules, char *why, size_t whylen);
/* Check body against t, filling in defaults. -1 with the reason for bad_request. */
int fields_check(const struct field_table *t, json_t *body, char *reason, size_t len);
void fields_free(struct field_table *t);

#endif
