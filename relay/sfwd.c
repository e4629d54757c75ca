/* sfwd: the relay's store-and-forward; see sfwd.h for the contract.
 *
 * Per target: the spool (opened lazily, or at start when its directory exists), a FIFO of
 * queued ring records waiting for their append, and the drain window. The spool directory is
 * runtime.spool_dir/<names_client_dir(client_id)>: a one-to-one encoding (common/names.h), so a
 * free-text client_id never climbs out of spool_dir and two ids never share a folder.
 */
#include "sfwd.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "clock.h"
#include "grow.h"
#include "log.h"
#include "names.h"
#include "rec.h"
#include "spool.h"

#define COMP          "relay"
#define CHUNK         64 /* records per append call */
#define OPEN_RETRY_NS 1000000000ull

typedef struct queued {
    uint16_t ring;
    uint64_t seq;
    struct iovec iov;
} queued;

typedef struct target {
    spool *sp;
    inflight *win;
    queued *q;
    size_t q_head, q_len, q_cap; /* FIFO: q[q_head .. q_head + q_len) */
    uint64_t retry_at;           /* no append (or open) before this time, 0 = now */
    int refusing;                /* the cap refused the last append (logged once) */
    int open_failed;             /* the last open failed (logged once) */
    int must_open;               /* its directory exists but could not be opened at start */
    int consumed;                /* records consumed since the last spool_ack */
    char dir[PATH_MAX];
    char name[300];
} target;

struct sfwd {
    const cfg *cfg;
    target *t;
    size_t n;
    size_t batch;
};

/* Before issue 8 the folder was the id with every unsafe byte replaced by '_' (not one-to-one:
 * "a/b" and "a_b" collided). A folder left under that old name is renamed to the new one when
 * the new one does not exist yet and no other client's new name is the old name; otherwise it
 * is named in the log, never silently orphaned. */
static void adopt_old_name(const cfg *c, size_t i, const char *dir, size_t base_len)
{
    char old[PATH_MAX];
    const char *id = c->clients[i].client_id;
    if (base_len + strlen(id) + 1 > sizeof(old))
        return;
    memcpy(old, dir, base_len);
    char *d = old + base_len;
    for (const char *p = id; *p; p++)
        *d++ = ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                *p == '.' || *p == '_' || *p == '-')
                   ? *p
                   : '_';
    *d = '\0';
    if (!strcmp(old, dir) || *id == '\0' || !strcmp(id, ".") || !strcmp(id, ".."))
        return;
    struct stat st;
    if (lstat(old, &st) < 0 || !S_ISDIR(st.st_mode))
        return;
    for (size_t j = 0; j < c->n_clients; j++) {
        char other[NAME_MAX + 1];
        if (names_client_dir(other, sizeof(other), c->clients[j].client_id) == 0 &&
            !strcmp(other, old + base_len)) {
            log_warn(COMP,
                     "spool %s may hold records of client %s (its name before issue 8), but it "
                     "is client %s's folder now: check it by hand",
                     old, id, c->clients[j].client_id);
            return;
        }
    }
    if (lstat(dir, &st) == 0) {
        log_warn(COMP, "spool %s (client %s's old folder name) left beside %s: merge by hand", old,
                 id, dir);
        return;
    }
    if (rename(old, dir) < 0)
        log_warn(COMP, "spool of client %s: rename %s -> %s: %s", id, old, dir, strerror(errno));
    else
        log_info(COMP, "spool of client %s moved from its old folder name %s to %s", id, old, dir);
}

int sfwd_create(const cfg *c, size_t batch, sfwd **out)
{
    *out = NULL;
    if (batch < 1 || batch > SFWD_BATCH_MAX)
        return -EINVAL;
    int rc = -ENOMEM;
    sfwd *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->cfg = c;
    s->n = c->n_clients;
    s->batch = batch;
    s->t = calloc(s->n ? s->n : 1, sizeof(*s->t));
    if (!s->t)
        goto err;
    for (size_t i = 0; i < s->n; i++) {
        target *t = &s->t[i];
        if (inflight_create(SFWD_BATCH_MAX, &t->win) != 0)
            goto err;
        const char *id = c->clients[i].client_id;
        char leaf[NAME_MAX + 1];
        int len = snprintf(t->dir, sizeof(t->dir), "%s/", c->runtime.spool_dir);
        if (names_client_dir(leaf, sizeof(leaf), id) < 0 || len < 0 ||
            (size_t)len + strlen(leaf) + 1 > sizeof(t->dir)) {
            /* config/cfg_client.c refuses both, so `check` said so first */
            log_error(COMP, "client %s: spool path under %s too long", id, c->runtime.spool_dir);
            rc = -EINVAL;
            goto err;
        }
        memcpy(t->dir + len, leaf, strlen(leaf) + 1);
        adopt_old_name(c, i, t->dir, (size_t)len);
        snprintf(t->name, sizeof(t->name), "relay %s", id);
    }
    *out = s;
    return 0;
err:
    sfwd_destroy(s);
    return rc;
}

void sfwd_destroy(sfwd *s)
{
    if (!s)
        return;
    for (size_t i = 0; s->t && i < s->n; i++) {
        target *t = &s->t[i];
        /* a batch all of whose records are done: its reader position may be kept; one with
         * records still out is read again by the next relay (duplicates, never a loss) */
        if (t->sp && t->consumed && t->win && inflight_count(t->win) == 0) {
            int rc = spool_ack(t->sp);
            if (rc)
                log_warn(COMP, "spool %s: ack at exit: %s", t->dir, strerror(-rc));
        }
        spool_close(t->sp);
        inflight_destroy(t->win);
        free(t->q);
    }
    free(s->t);
    free(s);
}

static int open_spool(sfwd *s, target *t)
{
    spool_opts o = {
        .max_bytes = s->cfg->runtime.spool_max_bytes,
        .name = t->name,
    };
    int rc = spool_open(t->dir, &o, &t->sp);
    if (rc) {
        t->sp = NULL;
        if (!t->open_failed)
            log_error(COMP,
                      "spool %s cannot be opened: %s; records for this target wait in the "
                      "rings",
                      t->dir, strerror(-rc));
        t->open_failed = 1;
        t->retry_at = clock_mono_ns() + OPEN_RETRY_NS;
        return rc;
    }
    if (t->open_failed)
        log_info(COMP, "spool %s opened", t->dir);
    t->open_failed = 0;
    t->must_open = 0;
    spool_stats st;
    spool_get_stats(t->sp, &st);
    if (st.recovered || st.quarantined || st.cut_bytes)
        log_info(COMP,
                 "spool %s: recovered %llu records (%llu not yet published), %llu files "
                 "quarantined, %llu bytes cut",
                 t->dir, (unsigned long long)st.recovered, (unsigned long long)st.records,
                 (unsigned long long)st.quarantined, (unsigned long long)st.cut_bytes);
    return 0;
}

void sfwd_recover(sfwd *s)
{
    uint64_t found = 0;
    for (size_t i = 0; i < s->n; i++) {
        target *t = &s->t[i];
        struct stat sb;
        if (stat(t->dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
            continue;
        if (open_spool(s, t) == 0)
            found += spool_count(t->sp);
        else
            t->must_open = 1; /* it may hold records: nothing for t goes out before them */
    }
    if (found)
        log_info(COMP, "%llu spooled records to publish once their targets are up",
                 (unsigned long long)found);
}

int sfwd_diverts(const sfwd *s, uint16_t t, int up)
{
    const target *tg = &s->t[t];
    return !up || tg->must_open || tg->q_len > 0 || !inflight_is_empty(tg->win) ||
           (tg->sp && spool_count(tg->sp) > 0);
}

int sfwd_queue(sfwd *s, uint16_t ti, uint16_t ring, uint64_t seq, const void *rec, size_t len)
{
    target *t = &s->t[ti];
    if (!t->sp) {
        if (t->open_failed && clock_mono_ns() < t->retry_at)
            return -EAGAIN;
        int rc = open_spool(s, t);
        if (rc)
            return rc;
    }
    if (t->q_len >= SFWD_QUEUE_MAX)
        return -ENOBUFS;
    if (t->q_head + t->q_len == t->q_cap) {
        if (t->q_head > 0) {
            memmove(t->q, t->q + t->q_head, t->q_len * sizeof(*t->q));
            t->q_head = 0;
        } else {
            queued *nq = grow_one(t->q, &t->q_cap, t->q_len, sizeof(*nq), 256);
            if (!nq)
                return -ENOMEM;
            t->q = nq;
        }
    }
    queued *e = &t->q[t->q_head + t->q_len++];
    e->ring = ring;
    e->seq = seq;
    e->iov.iov_base = (void *)rec; /* only read by the append */
    e->iov.iov_len = len;
    return 0;
}

/* Appends t's queue in chunks; stops at the first refusal or error. */
static size_t flush_target(target *t, uint64_t now, sfwd_stored_fn fn, void *arg)
{
    size_t stored = 0;
    if (!t->q_len || (t->retry_at && now < t->retry_at))
        return 0;
    t->retry_at = 0;
    if (!t->sp)
        return 0; /* queued only once opened; closed after an I/O error: reopened below */
    struct iovec iov[CHUNK];
    while (t->q_len > 0) {
        size_t n = t->q_len < CHUNK ? t->q_len : CHUNK;
        for (size_t k = 0; k < n; k++)
            iov[k] = t->q[t->q_head + k].iov;
        int rc = spool_append_batch(t->sp, iov, n);
        if (rc == -ENOSPC) {
            if (!t->refusing)
                log_warn(COMP,
                         "spool %s is full (runtime.spool_max_bytes): %zu records wait in "
                         "the rings (backpressure) until it drains",
                         t->dir, t->q_len);
            t->refusing = 1;
            t->retry_at = now + SFWD_RETRY_MS * 1000000ull;
            break;
        }
        if (rc) {
            log_error(COMP, "spool %s: append of %zu records failed: %s; trying again", t->dir, n,
                      strerror(-rc));
            if (rc == -EIO) {
                /* the spool says: close and reopen (recovery keeps what is intact) */
                spool_close(t->sp);
                t->sp = NULL;
                t->consumed = 0;
            }
            t->retry_at = now + SFWD_RETRY_MS * 1000000ull;
            break;
        }
        if (t->refusing)
            log_info(COMP, "spool %s accepts records again", t->dir);
        t->refusing = 0;
        for (size_t k = 0; k < n; k++)
            fn(arg, t->q[t->q_head + k].ring, t->q[t->q_head + k].seq);
        t->q_head += n;
        t->q_len -= n;
        stored += n;
    }
    if (t->q_len == 0)
        t->q_head = 0;
    return stored;
}

size_t sfwd_flush(sfwd *s, uint64_t now, sfwd_stored_fn fn, void *arg)
{
    size_t stored = 0;
    for (size_t i = 0; i < s->n; i++) {
        target *t = &s->t[i];
        if (t->q_len && !t->sp && (!t->retry_at || now >= t->retry_at) && open_spool(s, t) != 0)
            continue;
        stored += flush_target(t, now, fn, arg);
    }
    return stored;
}

inflight *sfwd_window(sfwd *s, uint16_t t)
{
    return s->t[t].win;
}

size_t sfwd_fill(sfwd *s, uint16_t ti)
{
    target *t = &s->t[ti];
    if (!t->sp || !inflight_is_empty(t->win))
        return 0;
    if (t->consumed) {
        int rc = spool_ack(t->sp);
        if (rc) {
            /* the position stays where it was: the batch would be published again after a
             * crash; go on (nothing is lost) */
            log_warn(COMP, "spool %s: ack failed: %s", t->dir, strerror(-rc));
        }
        t->consumed = 0;
    }
    size_t added = 0;
    while (added < s->batch) {
        const void *data;
        size_t len;
        int rc = spool_peek(t->sp, &data, &len, NULL);
        if (rc == -ENODATA)
            break;
        if (rc) {
            log_error(COMP, "spool %s: read failed: %s", t->dir, strerror(-rc));
            break;
        }
        inflight_entry e;
        memset(&e, 0, sizeof(e));
        e.owned = malloc(len ? len : 1);
        if (!e.owned)
            break;
        memcpy(e.owned, data, len);
        rec_view v;
        if (rec_decode(e.owned, len, &v) != 0 || v.h.kind != REC_PUBLISH ||
            !cfg_topic_name_is_valid(v.topic)) {
            /* the CRC held, so this is not disk damage: a record we can never publish */
            log_error(COMP, "spool %s: unpublishable record of %zu bytes skipped", t->dir, len);
            e.state = INFLIGHT_DONE;
        } else {
            e.topic = v.topic;
            e.payload = v.payload;
            e.payload_len = v.h.payload_len;
            e.qos = v.h.qos;
            e.retain = v.h.retain ? 1 : 0;
            e.state = INFLIGHT_PENDING;
        }
        e.rec = e.owned;
        e.rec_len = (uint32_t)len;
        e.conn = ti;
        e.kind = INFLIGHT_PUBLISH;
        inflight_push(t->win, &e);
        spool_consume(t->sp);
        t->consumed = 1;
        added++;
    }
    return added;
}

uint64_t sfwd_spooled(const sfwd *s)
{
    uint64_t n = 0;
    for (size_t i = 0; i < s->n; i++) {
        const target *t = &s->t[i];
        if (t->sp)
            n += spool_count(t->sp) + inflight_count(t->win);
    }
    return n;
}

size_t sfwd_queued(const sfwd *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++)
        n += s->t[i].q_len;
    return n;
}

uint64_t sfwd_next_timer(const sfwd *s)
{
    uint64_t next = UINT64_MAX;
    for (size_t i = 0; i < s->n; i++) {
        const target *t = &s->t[i];
        if (t->q_len && t->retry_at && t->retry_at < next)
            next = t->retry_at;
    }
    return next;
}
