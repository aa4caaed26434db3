/* tokens.c - login tokens: a successful login_reply carries one, and
 * {"cmd":"login","user":..,"token":..} logs the same user in again without the password
 * until it expires or `logout` with "all" revokes it.
 *
 * A token is 32 bytes from randombytes_buf, given to the client as base64url without
 * padding (43 characters). accounts_tokens keeps only the hex of its crypto_generichash
 * (BLAKE2b-256 of the 32 bytes), so a copy of the table logs nobody in; a login looks the
 * token up by that hash (its primary key), so nothing secret is compared by hand. */
#include "accounts.h"

#include <sodium.h>
#include <string.h>

static void hash_of(struct accounts_token *t, const unsigned char raw[ACCOUNTS_TOKEN_BYTES])
{
    unsigned char digest[crypto_generichash_BYTES];
    crypto_generichash(digest, sizeof(digest), raw, ACCOUNTS_TOKEN_BYTES, NULL, 0);
    sodium_bin2hex(t->hash, sizeof(t->hash), digest, sizeof(digest));
}

void accounts_token_new(struct accounts_token *t)
{
    unsigned char raw[ACCOUNTS_TOKEN_BYTES];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(t->text, sizeof(t->text), raw, sizeof(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    hash_of(t, raw);
    sodium_memzero(raw, sizeof(raw));
}

int accounts_token_parse(struct accounts_token *t, const char *text)
{
    memset(t, 0, sizeof(*t));
    if (!text || strlen(text) != ACCOUNTS_TOKEN_TEXT - 1)
        return -1;
    unsigned char raw[ACCOUNTS_TOKEN_BYTES];
    size_t len = 0;
    if (sodium_base642bin(raw, sizeof(raw), text, strlen(text), NULL, &len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        len != sizeof(raw))
        return -1;
    /* Only the one spelling this plugin issues: a token has exactly one text. */
    sodium_bin2base64(t->text, sizeof(t->text), raw, sizeof(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    int rc = strcmp(t->text, text) == 0 ? 0 : -1;
    if (rc == 0)
        hash_of(t, raw);
    sodium_memzero(raw, sizeof(raw));
    return rc;
}

static struct chatd_value text_value(const char *s)
{
    return (struct chatd_value){.type = CHATD_PARAM_TEXT, .s = s, .len = strlen(s)};
}

static struct chatd_value int_value(int64_t i)
{
    return (struct chatd_value){.type = CHATD_PARAM_INT64, .i = i};
}

/* The user's expired tokens, and the oldest beyond max_tokens, deleted one by one by
 * primary key after a plain read: deleting by a range of the (user_name, id) index
 * would lock gaps, and logins storming at once deadlocked on them. */
static int prune(struct accounts *a, struct chatd_db *db, const char *user, int64_t now)
{
    const struct chatd_host *host = a->host;
    struct chatd_value name = text_value(user);
    struct chatd_rows *rows = NULL;
    int rc = host->db_query_rows(
        db, "SELECT id, expires_at FROM accounts_tokens WHERE user_name = ? ORDER BY id DESC",
        &name, 1, 0, &rows);
    for (size_t r = 0; rc == 0 && r < rows->n_rows; r++) {
        const struct chatd_value *row = &rows->values[r * rows->n_cols];
        if ((int64_t)r < a->max_tokens && row[1].i > now)
            continue;
        struct chatd_value id = int_value(row[0].i);
        rc = host->db_exec(db, "DELETE FROM accounts_tokens WHERE id = ?", &id, 1, NULL, NULL);
    }
    host->rows_free(rows);
    return rc;
}

int accounts_token_store(struct accounts *a, struct chatd_db *db, const char *user,
                         const struct accounts_token *t)
{
    const struct chatd_host *host = a->host;
    int64_t now = host->now_ms();
    /* IGNORE: a retry after a lost connection finds its own row. */
    struct chatd_value row[4] = {text_value(t->hash), text_value(user), int_value(now),
                                 int_value(now + a->token_lifetime_ms)};
    int rc = host->db_exec(db,
                           "INSERT IGNORE INTO accounts_tokens (token_hash, user_name, created, "
                           "expires_at) VALUES (?, ?, ?, ?)",
                           row, 4, NULL, NULL);
    if (rc != 0)
        return rc;
    /* The token is stored: pruning is housekeeping, which the next login does again. */
    if (prune(a, db, user, now) != 0)
        host->log(a->self, CHATD_LOG_WARN, "old tokens of %s not pruned; the next login will",
                  user);
    return 0;
}

int accounts_token_check(struct accounts *a, struct chatd_db *db, const char *user,
                         const struct accounts_token *t)
{
    struct chatd_value params[3] = {text_value(t->hash), text_value(user),
                                    int_value(a->host->now_ms())};
    int64_t valid = 0;
    int rc = chat_query_int64(a->host, db,
                              "SELECT 1 FROM accounts_tokens WHERE token_hash = ? AND "
                              "user_name = ? AND expires_at > ?",
                              params, 3, &valid);
    return rc != 0 ? rc : valid == 1;
}

int accounts_token_revoke_all(struct accounts *a, struct chatd_db *db, const char *user)
{
    struct chatd_value name = text_value(user);
    return a->host->db_exec(db, "DELETE FROM accounts_tokens WHERE user_name = ?", &name, 1, NULL,
                            NULL);
}
