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

static int store_in_transaction(struct accounts *a, struct chatd_db *db, const char *user,
                                const struct accounts_token *t, int64_t now)
{
    const struct chatd_host *host = a->host;
    struct chatd_value expired[2] = {text_value(user), int_value(now)};
    int rc =
        host->db_exec(db, "DELETE FROM accounts_tokens WHERE user_name = ? AND expires_at <= ?",
                      expired, 2, NULL, NULL);
    if (rc != 0)
        return rc;
    /* IGNORE: a retry after a lost connection finds its own row. */
    struct chatd_value row[4] = {text_value(t->hash), text_value(user), int_value(now),
                                 int_value(now + a->token_lifetime_ms)};
    rc = host->db_exec(db,
                       "INSERT IGNORE INTO accounts_tokens (token_hash, user_name, created, "
                       "expires_at) VALUES (?, ?, ?, ?)",
                       row, 4, NULL, NULL);
    if (rc != 0)
        return rc;
    /* Keep the newest max_tokens: delete below the id of the max_tokens-th newest. */
    struct chatd_value oldest[3] = {text_value(user), text_value(user),
                                    int_value(a->max_tokens - 1)};
    return host->db_exec(db,
                         "DELETE FROM accounts_tokens WHERE user_name = ? AND id < "
                         "(SELECT id FROM (SELECT id FROM accounts_tokens WHERE user_name = ? "
                         "ORDER BY id DESC LIMIT 1 OFFSET ?) AS kept)",
                         oldest, 3, NULL, NULL);
}

int accounts_token_store(struct accounts *a, struct chatd_db *db, const char *user,
                         const struct accounts_token *t)
{
    const struct chatd_host *host = a->host;
    int rc = host->db_exec(db, "START TRANSACTION", NULL, 0, NULL, NULL);
    if (rc == 0)
        rc = store_in_transaction(a, db, user, t, host->now_ms());
    if (rc == 0)
        rc = host->db_exec(db, "COMMIT", NULL, 0, NULL, NULL);
    /* On failure the host rolls the open transaction back. */
    return rc;
}

int accounts_token_check(struct accounts *a, struct chatd_db *db, const char *user,
                         const struct accounts_token *t)
{
    struct chatd_value params[3] = {text_value(t->hash), text_value(user),
                                    int_value(a->host->now_ms())};
    struct chatd_rows *rows = NULL;
    int rc = a->host->db_query_rows(db,
                                    "SELECT 1 FROM accounts_tokens WHERE token_hash = ? AND "
                                    "user_name = ? AND expires_at > ?",
                                    params, 3, 1, &rows);
    if (rc != 0)
        return rc;
    int valid = rows->n_rows > 0;
    a->host->rows_free(rows);
    return valid;
}

int accounts_token_revoke_all(struct accounts *a, struct chatd_db *db, const char *user)
{
    struct chatd_value name = text_value(user);
    return a->host->db_exec(db, "DELETE FROM accounts_tokens WHERE user_name = ?", &name, 1, NULL,
                            NULL);
}
