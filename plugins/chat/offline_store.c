/* offline_store.c - private messages for users who are not online here, stored in
 * batches: one transaction, and one commit, for every message that arrived while the
 * previous batch was being written. Each sender's `offline` reply still goes out only
 * after the commit that holds its message; requests wait (held) until then.
 *
 * One job per message would cap storing at the worker pool's job rate and pay a
 * commit per message; a batch pays one of each for up to BATCH_MAX messages.
 *
 * The mailbox limit needs each recipient's count of waiting messages. COUNT(*) walks
 * the recipient's whole index range, so it is done once per recipient and then kept
 * here, grown by what is stored, and forgotten whenever messages leave the mailbox
 * (a drain acknowledged them) or arrive another way (held pushes kept at logout). Two
 * batches in flight for one recipient each check the size they started from, so
 * together they can pass the limit by up to one batch. */
#include "chat.h"

#include <stdlib.h>
#include <string.h>
#include <uthash.h>

/* Messages per transaction, and transactions in flight at once. */
#define BATCH_MAX   256
#define BATCHES_MAX 2

enum outcome { STORED, NO_SUCH_USER, MAILBOX_FULL };

struct pending {
    struct chatd_request *req; /* held until the reply */
    char to[CHAT_NAME_MAX + 1];
    int64_t sender_id;
    char msg_id[40];
    char *text;
    size_t len;
    int64_t ts;
    enum outcome outcome;
    struct recipient *recipient; /* set by the worker */
    struct pending *next;
};

/* A recipient of a batch: their id (found by the worker) and their mailbox size,
 * known from the cache or counted by the worker, grown as the batch stores. */
struct recipient {
    char *name;
    int64_t known_id;    /* the id the loop thread knew (0: not known) */
    int64_t known;       /* the size the loop thread knew (-1: not known) */
    int64_t id, waiting; /* found and grown by the worker (waiting < 0: count it) */
    int64_t stored;      /* messages this batch stored for them */
    UT_hash_handle hh;
};

struct batch {
    struct pending *first;
    struct recipient *recipients; /* by name */
    int64_t limit;                /* max_offline_messages when the batch was formed */
    uint64_t epoch;               /* mailbox_epoch when the batch was formed */
};

/* Mailbox sizes known on the loop thread, by recipient name, with the recipient's id
 * (which never changes). */
struct mailbox {
    char *name;
    int64_t id, waiting;
    UT_hash_handle hh;
};
static struct mailbox *mailboxes;
/* Moves whenever a mailbox is forgotten: a batch formed before must not write back
 * sizes counted before the change. */
static uint64_t mailbox_epoch;

static struct {
    struct pending *head, **tail;
    int batches; /* in flight */
} queue = {NULL, &queue.head, 0};

static void pending_free(struct pending *p)
{
    free(p->text);
    free(p);
}

/* ---- worker side ----------------------------------------------------------------- */

static int lookup_recipient(struct chatd_db *db, struct recipient *r)
{
    int rc = 0;
    if (r->id == 0) {
        struct chatd_value name = {.type = CHATD_PARAM_TEXT, .s = r->name, .len = strlen(r->name)};
        rc = HOST->db_query(db, "SELECT id FROM users WHERE name = ?", &name, 1, chat_read_int64,
                            &r->id);
    }
    if (rc != 0 || r->id == 0 || r->waiting >= 0)
        return rc;
    struct chatd_value who = {.type = CHATD_PARAM_INT64, .i = r->id};
    return HOST->db_query(db, "SELECT COUNT(*) FROM private_messages WHERE recipient_id = ?", &who,
                          1, chat_read_int64, &r->waiting);
}

/* Rows go in by statements of CHUNK rows, the rest one by one: one round trip to the
 * database per CHUNK messages, and only two statement texts to prepare. */
#define CHUNK 16
#define INSERT_HEAD                                                                                \
    "INSERT IGNORE INTO private_messages (recipient_id, sender_id, msg_id, text, ts) VALUES "
#define ROW    "(?, ?, ?, ?, ?)"
#define ROWS4  ROW ", " ROW ", " ROW ", " ROW
#define ROWS16 ROWS4 ", " ROWS4 ", " ROWS4 ", " ROWS4

static void bind_row(struct chatd_value *v, const struct pending *p)
{
    v[0] = (struct chatd_value){.type = CHATD_PARAM_INT64, .i = p->recipient->id};
    v[1] = (struct chatd_value){.type = CHATD_PARAM_INT64, .i = p->sender_id};
    v[2] = (struct chatd_value){.type = CHATD_PARAM_TEXT, .s = p->msg_id, .len = strlen(p->msg_id)};
    v[3] = (struct chatd_value){.type = CHATD_PARAM_TEXT, .s = p->text, .len = p->len};
    v[4] = (struct chatd_value){.type = CHATD_PARAM_INT64, .i = p->ts};
}

/* Store rows[0..n) (safe to repeat: msg_id is unique, so a row stored twice is kept
 * once). */
static int insert_rows(struct chatd_db *db, struct pending **rows, size_t n)
{
    struct chatd_value v[CHUNK * 5];
    size_t i = 0;
    for (; i + CHUNK <= n; i += CHUNK) {
        for (size_t k = 0; k < CHUNK; k++)
            bind_row(v + 5 * k, rows[i + k]);
        int rc = HOST->db_exec(db, INSERT_HEAD ROWS16, v, CHUNK * 5, NULL, NULL);
        if (rc != 0)
            return rc;
    }
    for (; i < n; i++) {
        bind_row(v, rows[i]);
        int rc = HOST->db_exec(db, INSERT_HEAD ROW, v, 5, NULL, NULL);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int store_all(struct chatd_db *db, struct batch *b)
{
    struct recipient *r, *tmp;
    HASH_ITER (hh, b->recipients, r, tmp) {
        int rc = lookup_recipient(db, r);
        if (rc != 0)
            return rc;
    }
    struct pending *rows[BATCH_MAX];
    size_t n = 0;
    for (struct pending *p = b->first; p; p = p->next) {
        HASH_FIND_STR(b->recipients, p->to, r);
        p->recipient = r;
        if (!r || r->id == 0) {
            p->outcome = NO_SUCH_USER;
        } else if (r->waiting >= b->limit) {
            p->outcome = MAILBOX_FULL;
        } else {
            p->outcome = STORED;
            r->waiting++;
            r->stored++;
            rows[n++] = p;
        }
    }
    return insert_rows(db, rows, n);
}

/* The whole batch in one transaction: committed together, or (on any error, which
 * the host follows with a ROLLBACK) not at all. Run again from the start when the
 * host retries it. */
static int batch_work(struct chatd_db *db, void *arg)
{
    struct batch *b = arg;
    /* A retry starts again from what the loop thread knew. */
    struct recipient *r, *tmp;
    HASH_ITER (hh, b->recipients, r, tmp) {
        r->id = r->known_id;
        r->waiting = r->known;
        r->stored = 0;
    }
    int rc = HOST->db_exec(db, "START TRANSACTION", NULL, 0, NULL, NULL);
    if (rc == 0)
        rc = store_all(db, b);
    if (rc == 0)
        rc = HOST->db_exec(db, "COMMIT", NULL, 0, NULL, NULL);
    return rc;
}

/* ---- loop side ------------------------------------------------------------------- */

static void answer(struct pending *p, int status)
{
    if (status != 0) {
        chat_refuse(p->req, chat_status_word(status), "the message could not be stored");
    } else if (p->outcome == NO_SUCH_USER) {
        HOST->reply(p->req, "user_not_exist", NULL);
    } else if (p->outcome == MAILBOX_FULL) {
        chat_refuse(p->req, "forbidden", "the recipient's offline mailbox is full");
    } else {
        HOST->reply(p->req, "offline", NULL);
        /* The recipient may have logged in while the message was being stored. */
        struct online_user *u = chat_online(p->to);
        if (u && chat.offline_delivery)
            chat_drain(u);
    }
    HOST->request_release(p->req);
    pending_free(p);
}

static struct mailbox *mailbox_find(const char *name)
{
    struct mailbox *m;
    HASH_FIND_STR(mailboxes, name, m);
    return m;
}

/* Keep the sizes a committed batch ended with, unless a mailbox changed meanwhile. A
 * size already kept (another batch in flight at the same time kept it) grows by what
 * this batch stored, so two overlapping batches add up instead of the later one
 * overwriting the earlier; it may then count a row twice, never miss one. */
static void remember_sizes(struct batch *b)
{
    if (b->epoch != mailbox_epoch)
        return;
    struct recipient *r, *tmp;
    HASH_ITER (hh, b->recipients, r, tmp) {
        if (r->id == 0 || r->waiting < 0)
            continue;
        struct mailbox *m = mailbox_find(r->name);
        if (m) {
            m->waiting += r->stored;
            continue;
        }
        if (!(m = calloc(1, sizeof(*m))) || !(m->name = chat_strdup(r->name))) {
            free(m);
            continue;
        }
        HASH_ADD_KEYPTR(hh, mailboxes, m->name, strlen(m->name), m);
        m->id = r->id;
        m->waiting = r->waiting;
    }
}

void offline_store_forget(const char *user)
{
    struct mailbox *m = mailbox_find(user);
    if (m) {
        HASH_DEL(mailboxes, m);
        free(m->name);
        free(m);
    }
    mailbox_epoch++;
}

static void batch_free(struct batch *b)
{
    struct recipient *r, *tmp;
    HASH_ITER (hh, b->recipients, r, tmp) {
        HASH_DEL(b->recipients, r);
        free(r->name);
        free(r);
    }
    free(b);
}

/* Name every recipient of b once, with the size the loop thread knows. */
static int list_recipients(struct batch *b)
{
    for (struct pending *p = b->first; p; p = p->next) {
        struct recipient *r;
        HASH_FIND_STR(b->recipients, p->to, r);
        if (r)
            continue;
        if (!(r = calloc(1, sizeof(*r))) || !(r->name = chat_strdup(p->to))) {
            free(r);
            return -1;
        }
        struct mailbox *m = mailbox_find(p->to);
        r->known_id = m ? m->id : 0;
        r->known = m ? m->waiting : -1;
        HASH_ADD_KEYPTR(hh, b->recipients, r->name, strlen(r->name), r);
    }
    return 0;
}

/* ---- the backlog gauge ----------------------------------------------------------- */

/* Private messages stored and not yet delivered, for /metrics: counted once after
 * start, then moved by what is stored and what drains acknowledge. */
static struct {
    int known;
    int64_t messages;
} backlog;

static void publish_backlog(void)
{
    HOST->metric_set(chat.self, "offline_messages",
                     "Private messages stored for users who were offline, not yet delivered.",
                     (double)backlog.messages);
}

void offline_backlog_add(int64_t change)
{
    if (!backlog.known)
        return; /* the count, when it comes, includes it */
    backlog.messages += change;
    publish_backlog();
}

static int count_work(struct chatd_db *db, void *arg)
{
    return HOST->db_query(db, "SELECT COUNT(*) FROM private_messages", NULL, 0, chat_read_int64,
                          arg);
}

static void count_done(struct chatd_request *req, void *arg, int status)
{
    (void)req;
    int64_t *count = arg;
    if (status == 0) {
        backlog.known = 1;
        backlog.messages = *count;
        publish_backlog();
    }
    free(count);
}

/* A timer, because jobs cannot be submitted during init. */
void offline_backlog_count(void *arg)
{
    (void)arg;
    int64_t *count = calloc(1, sizeof(*count));
    static const struct chatd_job job = {
        .work = count_work, .done = count_done, .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
    if (count && HOST->job_submit(chat.self, NULL, &job, count) != 0)
        free(count);
}

static void start_batches(void);

static void batch_done(struct chatd_request *req, void *arg, int status)
{
    (void)req;
    struct batch *b = arg;
    if (status == 0) {
        remember_sizes(b);
        int64_t stored = 0;
        for (struct pending *p = b->first; p; p = p->next)
            stored += p->outcome == STORED;
        offline_backlog_add(stored);
    }
    for (struct pending *p = b->first, *next; p; p = next) {
        next = p->next;
        answer(p, status);
    }
    batch_free(b);
    queue.batches--;
    start_batches();
}

/* Form batches from the queue while fewer than BATCHES_MAX are in flight. */
static void start_batches(void)
{
    while (queue.head && queue.batches < BATCHES_MAX) {
        struct batch *b = calloc(1, sizeof(*b));
        if (!b) {
            /* Answer the oldest rather than keep it waiting on memory that may not come. */
            struct pending *p = queue.head;
            if (!(queue.head = p->next))
                queue.tail = &queue.head;
            answer(p, CHATD_ENOMEM);
            continue;
        }
        b->limit = chat.max_offline;
        b->epoch = mailbox_epoch;
        b->first = queue.head;
        struct pending **end = &queue.head;
        for (int n = 0; *end && n < BATCH_MAX; n++)
            end = &(*end)->next;
        queue.head = *end;
        *end = NULL;
        if (!queue.head)
            queue.tail = &queue.head;
        if (list_recipients(b) < 0) {
            queue.batches++; /* batch_done takes it back */
            batch_done(NULL, b, CHATD_ENOMEM);
            return;
        }
        static const struct chatd_job job = {
            .work = batch_work, .done = batch_done, .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
        int rc = HOST->job_submit(chat.self, NULL, &job, b);
        if (rc != 0) {
            queue.batches++; /* batch_done takes it back */
            batch_done(NULL, b, rc);
            return;
        }
        queue.batches++;
    }
}

void offline_store(struct chatd_request *req, const char *to, int64_t sender_id, const char *msg_id,
                   const json_t *text, int64_t ts)
{
    struct pending *p = calloc(1, sizeof(*p));
    size_t len = json_string_length(text);
    if (!p || !(p->text = malloc(len + 1))) {
        free(p);
        chat_refuse(req, "internal", "out of memory");
        return;
    }
    p->req = req;
    HOST->request_hold(req);
    snprintf(p->to, sizeof(p->to), "%s", to);
    p->sender_id = sender_id;
    snprintf(p->msg_id, sizeof(p->msg_id), "%s", msg_id);
    memcpy(p->text, json_string_value(text), len + 1);
    p->len = len;
    p->ts = ts;
    *queue.tail = p;
    queue.tail = &p->next;
    start_batches();
}

void offline_store_free(void)
{
    backlog.known = 0;
    backlog.messages = 0;
    struct mailbox *m, *tmp;
    HASH_ITER (hh, mailboxes, m, tmp) {
        HASH_DEL(mailboxes, m);
        free(m->name);
        free(m);
    }
}
