/* route: the router loop (see route.h). */
#include "route.h"

#include <errno.h>
#include <stddef.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backoff.h"
#include "clock.h"
#include "dispatch.h"
#include "futex.h"
#include "deadletter.h"
#include "log.h"
#include "names.h"
#include "rec.h"
#include "ring.h"
#include "rule.h"
#include "shm.h"
#include "stage.h"
#include "stats.h"
#include "tap.h"

#define ROUTE_STOP_BLOCK_MS 5000 /* stopping: how long a full worker ring may block the drain */

static const char COMP[] = "router";
/* bytes of a damaged ring region or an undecodable record kept in its dead letter */
#define QUARANTINE_KEEP 4096
/* when a dead letter the store refused is tried again (its ring waits meanwhile): after
 * ROUTE_RETRY_MS, the wait doubling with each failure up to ROUTE_RETRY_MAX_MS, so a store
 * that stays broken costs a log line of deadletter_open's every few seconds, not ten a
 * second, and a repaired one is found again within that bound */
#define ROUTE_RETRY_MS     BACKOFF_STORE_FIRST_MS /* common/backoff.h */
#define ROUTE_RETRY_MAX_MS BACKOFF_STORE_MAX_MS

/* A dead letter of an ingress ring that the store could not take yet: nothing is released
 * before its dead letter is durable (issue 8), so the ring is not read on (backpressure) and
 * the store is tried again (ROUTE_RETRY_MS, backing off). Either a damaged region the read cursor
 * has skipped (region: its first bytes stay valid, being unreleased) or the undecodable record at
 * the read cursor (read again on the retry). A held ring is left out of every wait: a wait
 * releases what it waits on, and its unread records would end each wait at once. */
typedef struct hold {
    uint64_t retry_at; /* monotonic ns; 0: nothing held */
    unsigned delay_ms; /* the wait before retry_at */
    int region;
    uint64_t at, bytes; /* region: where it began, how long it is */
    const void *first;
    size_t first_len;
} hold;

struct route {
    const cfg *c;
    rule_set *rules;
    dispatch *disp;
    size_t n_in, n_out;
    ring **in;
    char **in_names;
    unsigned char *in_broken; /* a corrupt segment: no longer read */
    unsigned char *in_moved;  /* records advanced this turn, to release */
    hold *hold;               /* per ingress ring */
    ring **waitset;           /* the rings a wait watches (the ones not held) */
    ring **out;
    size_t *pending; /* bytes committed to out[w] since its last flush (parallel load) */
    unsigned char *dirty;
    uint16_t *matched; /* rule_set_match output, n_rules entries */
    size_t start;      /* round-robin: first ingress ring of the next turn */
    stats *st;         /* the stats segment and the router's slot: stage.h's, borrowed */
    stats_slot *slot;
    tap_port tap_in, tap_rule; /* `mqttflow tap --at ingress|rule` (tap.h) */
    rule_counters *pub;        /* per rule: what publish_rule_counters has added to stats */
    uint64_t pub_total;        /* rule_set_counters_total at that time */
};

static void route_detach_all(route *r)
{
    for (size_t i = 0; r->in && i < r->n_in; i++)
        ring_detach(r->in[i]);
    for (size_t i = 0; r->in_names && i < r->n_in; i++)
        free(r->in_names[i]);
    for (size_t w = 0; r->out && w < r->n_out; w++) {
        if (r->out[w])
            ring_flush(r->out[w]);
        ring_detach(r->out[w]);
    }
    tap_port_fini(&r->tap_in);
    tap_port_fini(&r->tap_rule);
}

void route_destroy(route *r)
{
    if (!r)
        return;
    route_detach_all(r);
    rule_set_destroy(r->rules);
    dispatch_destroy(r->disp);
    free(r->in);
    free(r->in_names);
    free(r->in_broken);
    free(r->in_moved);
    free(r->hold);
    free(r->waitset);
    free(r->out);
    free(r->pending);
    free(r->dirty);
    free(r->matched);
    free(r->pub);
    free(r);
}

static int attach_rings(route *r)
{
    const char *inst = r->c->runtime.instance;
    char name[SHM_NAME_MAX];
    int rc;

    for (size_t i = 0; i < r->n_in; i++) {
        rc = names_ingress_ring(name, sizeof(name), inst, i);
        if (rc < 0)
            return rc;
        r->in_names[i] = strdup(name);
        if (!r->in_names[i])
            return -ENOMEM;
        rc = ring_attach(name, RING_CONSUMER, &r->in[i]);
        if (rc < 0) {
            log_error(COMP, "ring_attach(%s, consumer): %s", name, strerror(-rc));
            return rc;
        }
    }
    for (size_t w = 0; w < r->n_out; w++) {
        rc = names_worker_in(name, sizeof(name), inst, w);
        if (rc < 0)
            return rc;
        rc = ring_attach(name, RING_PRODUCER, &r->out[w]);
        if (rc < 0) {
            log_error(COMP, "ring_attach(%s, producer): %s", name, strerror(-rc));
            return rc;
        }
    }
    return 0;
}

int route_create(const cfg *c, stats *st, stats_slot *slot, route **out)
{
    route *r;
    char err[256];
    int rc = -ENOMEM;

    *out = NULL;
    r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->c = c;
    r->st = st;
    r->slot = slot;
    r->n_in = cfg_ingress_count(c);
    r->n_out = c->runtime.workers > 0 ? (size_t)c->runtime.workers : 1;
    r->in = calloc(r->n_in + 1, sizeof(*r->in));
    r->in_names = calloc(r->n_in + 1, sizeof(*r->in_names));
    r->in_broken = calloc(r->n_in + 1, 1);
    r->in_moved = calloc(r->n_in + 1, 1);
    r->hold = calloc(r->n_in + 1, sizeof(*r->hold));
    r->waitset = calloc(r->n_in + 1, sizeof(*r->waitset));
    r->out = calloc(r->n_out, sizeof(*r->out));
    r->pending = calloc(r->n_out, sizeof(*r->pending));
    r->dirty = calloc(r->n_out, 1);
    r->matched = calloc(c->n_rules + 1, sizeof(*r->matched));
    r->pub = calloc(c->n_rules + 1, sizeof(*r->pub));
    if (!r->in || !r->in_names || !r->in_broken || !r->in_moved || !r->hold || !r->waitset ||
        !r->out || !r->pending || !r->dirty || !r->matched || !r->pub)
        goto fail;
    rc = rule_set_create(c, &r->rules, err, sizeof(err));
    if (rc < 0) {
        if (rc == -EINVAL)
            log_error(COMP, "%s: %s", c->path ? c->path : "config", err);
        goto fail;
    }
    rc = dispatch_create(c, r->n_out, &r->disp);
    if (rc < 0)
        goto fail;
    rc = attach_rings(r);
    if (rc < 0)
        goto fail;
    log_info(COMP, "%zu ingress ring(s), %zu worker(s), %zu rule(s)%s", r->n_in, r->n_out,
             rule_set_count(r->rules), rule_set_uses_jit(r->rules) ? "" : " (regex without JIT)");
    *out = r;
    return 0;

fail:
    route_destroy(r);
    return rc;
}

/* The rule set's match-limit and invalid-JSON counts into the stats segment (`status
 * --rules`, /metrics), as deltas so they count across restarts of the router; only when one
 * changed, so an untroubled router does not walk its rules on every turn. */
static void publish_rule_counters(route *r)
{
    uint64_t total = rule_set_counters_total(r->rules);
    if (total == r->pub_total || !r->st)
        return;
    r->pub_total = total;
    for (size_t i = 0; i < rule_set_count(r->rules); i++) {
        stats_rule_router *out = stats_rule_router_at(r->st, i);
        if (!out)
            break; /* rules past STATS_MAX_RULES are not counted */
        rule_counters now;
        rule_set_counters(r->rules, i, &now);
        stats_add(&out->match_limit, now.match_limit - r->pub[i].match_limit);
        stats_add(&out->json_invalid, now.json_invalid - r->pub[i].json_invalid);
        r->pub[i] = now;
    }
}

static void heartbeat(route *r)
{
    stats_set(&r->slot->heartbeat_ns, clock_mono_ns());
    publish_rule_counters(r);
}

/* Logs the 1st, 2nd, 4th, 8th... occurrence: a stream of bad records must not flood the log. */
static int log_worthy(uint64_t count)
{
    return (count & (count - 1)) == 0;
}

/* Counts a bad record or copy; whether to log it (rate-limited by log_worthy). */
static int count_error(route *r)
{
    stats_add(&r->slot->errors, 1);
    return log_worthy(stats_get(&r->slot->errors));
}

static void flush_out(route *r)
{
    for (size_t w = 0; w < r->n_out; w++) {
        if (!r->dirty[w])
            continue;
        ring_flush(r->out[w]);
        r->dirty[w] = 0;
        r->pending[w] = 0;
    }
}

static size_t worker_load(void *ctx, size_t w)
{
    route *r = ctx;

    return ring_used(r->out[w]) + r->pending[w];
}

/* Reserves room for len bytes in worker ring w, waiting while it is full. 0; -EMSGSIZE (the
 * record can never fit); -ETIMEDOUT (stopping and the ring stayed full too long). */
static int reserve_out(route *r, size_t w, size_t len, void **dst)
{
    uint64_t stop_since = 0;
    int rc;

    for (;;) {
        rc = ring_reserve(r->out[w], len, dst);
        if (rc != -EAGAIN)
            return rc;
        /* every worker gets what it is owed before we block on one of them */
        flush_out(r);
        rc = ring_wait_space(r->out[w], len, ROUTE_WAIT_MS);
        heartbeat(r);
        if (rc == 0 || !stage_stop_flag)
            continue;
        if (!stop_since) {
            stop_since = clock_mono_ns();
            log_info(COMP, "stopping: waiting for worker %zu to make room", w);
        } else if (clock_mono_ns() - stop_since > ROUTE_STOP_BLOCK_MS * 1000000ull) {
            return -ETIMEDOUT;
        }
    }
}

/* Writes one dead letter of ingress ring i and syncs it. 0 (counted in dead; a hold of ring
 * i ends), or -errno: counted in errors, ring i held (struct hold), logged once per episode. */
static int store_dead(route *r, size_t i, const deadletter_entry *e)
{
    hold *h = &r->hold[i];
    int rc = deadletter_store_one(r->c->runtime.dead_letter_dir, e);
    if (rc == 0) {
        if (h->retry_at)
            log_info(COMP, "dead-letter store %s works again: reading %s on",
                     r->c->runtime.dead_letter_dir, r->in_names[i]);
        memset(h, 0, sizeof(*h));
        stats_add(&r->slot->dead, 1);
        return 0;
    }
    stats_add(&r->slot->errors, 1);
    if (!h->retry_at)
        log_error(COMP,
                  "dead-letter store %s cannot take a dead letter of %s: %s; what follows in "
                  "that ring waits for it (tried again from %d ms up to every %d ms)",
                  r->c->runtime.dead_letter_dir, r->in_names[i], strerror(-rc), ROUTE_RETRY_MS,
                  ROUTE_RETRY_MAX_MS);
    h->delay_ms = backoff_next(h->delay_ms, ROUTE_RETRY_MS, ROUTE_RETRY_MAX_MS);
    h->retry_at = clock_mono_ns() + h->delay_ms * 1000000ull;
    return rc;
}

/* The dead letter of ring i's held damaged region (h->region). 0 or -errno (still held). */
static int store_region(route *r, size_t i)
{
    const hold *h = &r->hold[i];
    char reason[256];
    snprintf(reason, sizeof(reason),
             "corrupt ring: %llu bytes of %s at position %llu could not be read as records and "
             "were skipped (the payload holds the first of them)",
             (unsigned long long)h->bytes, r->in_names[i], (unsigned long long)h->at);
    deadletter_entry e = {
        .instance = r->c->runtime.instance,
        .reason = reason,
        .topic = "$mqttflow/corrupt-ring",
        .payload = h->first,
        .payload_len = h->first_len < QUARANTINE_KEEP ? h->first_len : QUARANTINE_KEEP,
    };
    return store_dead(r, i, &e);
}

/* A corrupt record header in ingress ring i (issue 8 item 4): the damaged region up to the
 * ingress's published head is skipped, written to the dead-letter store with its size and
 * first bytes, counted (errors, dead), released and the ring read on: a fault with a way out
 * instead of a ring no longer read while status says running. What was routed before it is
 * released first, so that the region alone waits when the store fails (held, struct hold). */
static void quarantine(route *r, size_t i)
{
    hold *h = &r->hold[i];
    flush_out(r);
    ring_release(r->in[i]);
    r->in_moved[i] = 0;
    h->region = 1;
    h->at = ring_read_pos(r->in[i]);
    h->bytes = ring_skip_damaged(r->in[i], &h->first, &h->first_len);
    stats_add(&r->slot->errors, 1);
    int rc = store_region(r, i);
    if (rc == 0)
        ring_release(r->in[i]);
    log_error(COMP, "%s is corrupt at position %llu: %llu byte(s) skipped and %s", r->in_names[i],
              (unsigned long long)h->at, (unsigned long long)h->bytes,
              rc == 0 ? "dead-lettered; reading on"
                      : "kept until the dead-letter store takes them");
}

/* A record of ring i that cannot be routed (issue 8 item 3): a dead letter on topic whose
 * reason says what is wrong, its length and place and the detail (NULL: none), its first
 * bytes as the payload; retry = the ring was held for it (logged once). 0, or -errno when the
 * store failed (ring i is held). */
static int dead_record(route *r, size_t i, const void *buf, size_t len, int retry,
                       const char *topic, const char *what, const char *detail)
{
    char reason[256];
    const char *sep = detail ? ": " : "";
    detail = detail ? detail : "";
    if (!retry && count_error(r))
        log_warn(COMP, "%s: %s of %zu bytes%s%s: dead-lettered", r->in_names[i], what, len, sep,
                 detail);
    snprintf(reason, sizeof(reason),
             "%s: %zu bytes of %s at position %llu%s%s (the payload holds the first of them)", what,
             len, r->in_names[i], (unsigned long long)ring_read_pos(r->in[i]), sep, detail);
    deadletter_entry e = {
        .instance = r->c->runtime.instance,
        .reason = reason,
        .topic = topic,
        .payload = buf,
        .payload_len = len < QUARANTINE_KEEP ? len : QUARANTINE_KEEP,
    };
    return store_dead(r, i, &e);
}

/* A record of ring i that does not decode: dead_record with the decode error */
static int dead_undecodable(route *r, size_t i, const void *buf, size_t len, int retry)
{
    rec_view v;
    return dead_record(r, i, buf, len, retry, "$mqttflow/undecodable-record", "undecodable record",
                       rec_bad_text(rec_check(buf, len, &v)));
}

#define ROUTE_HELD 1 /* route_one: the record stays, its ring is held */

/* Once per turn: follows the taps the supervisor attaches or removes (one load each). */
static void tap_sync(route *r)
{
    tap_port_sync(&r->tap_in, r->st, TAP_INGRESS, r->c->runtime.instance);
    tap_port_sync(&r->tap_rule, r->st, TAP_RULE, r->c->runtime.instance);
}

/* Routes one ingress record of ring ri. 0 (routed, dropped, dead-lettered or counted as
 * bad); ROUTE_HELD (an undecodable record the dead-letter store could not take: it stays,
 * ring ri is held); -ETIMEDOUT.
 * Per record (STYLE 25), about 55 ns of CPU in bench_pipeline (one rule in/#): no system call
 * and no wake-up unless a worker ring is full (the flush that may wake a worker is per turn,
 * route_turn); the rule match (a walk of the topic trie, a memchr per level) is the largest
 * part, then the decode and one copy of the record per matching rule. */
static int route_one(route *r, size_t ri, const void *buf, size_t len)
{
    rec_view v;
    size_t n;

    if (rec_decode(buf, len, &v) < 0)
        return dead_undecodable(r, ri, buf, len, r->hold[ri].retry_at != 0) < 0 ? ROUTE_HELD : 0;
    if (v.h.kind != REC_MSG) {
        char what[64];
        snprintf(what, sizeof(what), "record of kind %u in an ingress ring", (unsigned)v.h.kind);
        return dead_record(r, ri, buf, len, r->hold[ri].retry_at != 0, "$mqttflow/misplaced-record",
                           what, NULL) < 0
                   ? ROUTE_HELD
                   : 0;
    }
    stats_add(&r->slot->in, 1);
    tap_port_put(&r->tap_in, &v);
    n = rule_set_match(r->rules, v.h.client, v.topic, v.h.topic_len, v.payload, v.h.payload_len,
                       r->matched);
    if (n == 0) {
        stats_add(&r->slot->dropped, 1);
        stats_add(&r->slot->extra[STATS_RT_UNMATCHED], 1);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t *matched = r->st ? stats_rule_matched(r->st, r->matched[i]) : NULL;
        if (matched) /* per-rule count for `status --rules` (stats.h) */
            stats_add(matched, 1);
        v.h.rule = r->matched[i];
        tap_port_put(&r->tap_rule, &v);
        size_t w = dispatch_pick(r->disp, r->matched[i], v.topic, v.h.topic_len, worker_load, r);
        void *dst;
        int rc = reserve_out(r, w, len, &dst);
        if (rc == -EMSGSIZE) {
            if (count_error(r))
                log_warn(COMP, "record of %zu bytes exceeds worker %zu's max_record: skipped", len,
                         w);
            continue;
        }
        if (rc < 0)
            return rc;
        /* the record as it came, then its rule patched in place: a header copy patched on
         * the stack before copying it out stalled the copy's 16-byte loads on the 2-byte
         * store of the rule (no store forwarding), about 8 ns per record */
        uint16_t rule = r->matched[i];
        memcpy(dst, buf, len);
        memcpy((unsigned char *)dst + offsetof(rec_hdr, rule), &rule, sizeof(rule));
        ring_commit(r->out[w], len);
        r->pending[w] += len;
        r->dirty[w] = 1;
        stats_add(&r->slot->out, 1);
    }
    return 0;
}

/* One turn: up to ROUTE_BATCH records from each ingress ring, then flush every worker ring,
 * then release what was consumed. *taken = records consumed. 0 or -ETIMEDOUT. */
static int route_turn(route *r, size_t *taken)
{
    int rc = 0;

    *taken = 0;
    tap_sync(r);
    for (size_t k = 0; k < r->n_in && rc == 0; k++) {
        size_t i = (r->start + k) % r->n_in, got = 0;
        hold *h = &r->hold[i];
        if (h->retry_at && (clock_mono_ns() < h->retry_at || (h->region && store_region(r, i))))
            continue;    /* held (struct hold); a held record is stored by its route_one again */
        if (h->region) { /* stored just now */
            ring_release(r->in[i]);
            h->region = 0;
        }
        while (got < ROUTE_BATCH && !r->in_broken[i] && !h->retry_at) {
            const void *buf;
            size_t len;
            int prc = ring_peek(r->in[i], &buf, &len);
            if (prc == -EAGAIN)
                break;
            if (prc == -EBADMSG) {
                quarantine(r, i);
                continue;
            }
            if (prc < 0) {
                r->in_broken[i] = 1;
                stats_add(&r->slot->errors, 1);
                log_error(COMP, "ring_peek(%s): %s: ring no longer read", r->in_names[i],
                          strerror(-prc));
                break;
            }
            /* the router runs no user code, but a record that crashes it (our bug, or
             * hostile input we did not foresee) must not crash it forever: after
             * max_attempts deaths on the same record it is skipped */
            if (ring_begin(r->in[i]) > (unsigned)r->c->runtime.max_attempts) {
                stats_add(&r->slot->dead, 1);
                stats_add(&r->slot->errors, 1);
                log_error(COMP, "%s: record of %zu bytes killed the router %d times: skipped",
                          r->in_names[i], len, r->c->runtime.max_attempts);
            } else {
                rc = route_one(r, i, buf, len);
            }
            ring_end(r->in[i]); /* it did not kill us, whatever rc says */
            if (rc == ROUTE_HELD) {
                rc = 0;
                break; /* the record stays at the read cursor */
            }
            if (rc < 0)
                break;
            ring_advance(r->in[i]);
            got++;
        }
        if (got && !h->region) /* a held region was skipped, not released */
            r->in_moved[i] = 1;
        *taken += got;
    }
    if (r->n_in)
        r->start = (r->start + 1) % r->n_in;
    if (rc < 0)
        return rc; /* the unfinished batch stays unreleased: re-read on the next run */
    /* at-least-once: copies are flushed to the worker rings before the ingress records are let
     * go */
    flush_out(r);
    for (size_t i = 0; i < r->n_in; i++) {
        if (r->in_moved[i]) {
            ring_release(r->in[i]);
            r->in_moved[i] = 0;
        }
    }
    return 0;
}

/* Waits for input (ring_wait_paced: busy, i.e. records arrive fast enough for a nap to pay
 * (ring_pace_nap), naps; otherwise parks). Cost per wait: one timer wake-up (nap) or one
 * futex_waitv and the producer's FUTEX_WAKE (park); under steady traffic a nap takes every record
 * that arrived during it. */
static void wait_input(route *r, int busy)
{
    size_t n = 0;
    int timeout = ROUTE_WAIT_MS;
    uint64_t now = 0;

    for (size_t i = 0; i < r->n_in; i++) {
        const hold *h = &r->hold[i];
        if (!h->retry_at) {
            r->waitset[n++] = r->in[i];
            continue;
        }
        if (!now)
            now = clock_mono_ns(); /* only while a ring is held */
        uint64_t ms = h->retry_at > now ? (h->retry_at - now + 999999) / 1000000 : 0;
        if (ms < (uint64_t)timeout)
            timeout = (int)ms;
    }
    if (n == 0) {
        poll(NULL, 0, timeout); /* nothing to read: just wait for the stop flag or a retry */
        return;
    }
    if (n <= FUTEX_WAITV_MAX_WORDS) {
        ring_wait_paced(r->waitset, n, NULL, 0, timeout, busy);
        return;
    }
    /* more rings than futex_waitv takes: park on a rotating window with a short timeout, so
     * rings outside it are looked at within a few milliseconds */
    for (size_t i = 0; i < n; i++)
        ring_release(r->waitset[i]);
    {
        size_t off = r->start % (n - FUTEX_WAITV_MAX_WORDS + 1);
        ring_wait_paced(r->waitset + off, FUTEX_WAITV_MAX_WORDS, NULL, 0, timeout < 5 ? timeout : 5,
                        busy);
    }
}

int route_run(route *r)
{
    size_t taken_since = 0; /* records taken since the last wait */
    ring_pace pace = {0};

    for (;;) {
        /* read before the turn: a turn that then finds every ring empty proves the drain
         * is complete (the ingresses were stopped before us) */
        int stopping = stage_stop_flag;
        size_t taken;
        int rc = route_turn(r, &taken);

        heartbeat(r);
        if (rc < 0) {
            log_error(COMP,
                      "stopping with a worker ring full for %d ms: unrouted records "
                      "stay in the ingress rings",
                      ROUTE_STOP_BLOCK_MS);
            return rc;
        }
        if (taken) {
            taken_since += taken;
            continue;
        }
        if (stopping) {
            log_info(COMP, "ingress rings drained: %llu in, %llu out, %llu unmatched",
                     (unsigned long long)stats_get(&r->slot->in),
                     (unsigned long long)stats_get(&r->slot->out),
                     (unsigned long long)stats_get(&r->slot->extra[STATS_RT_UNMATCHED]));
            return 0;
        }
        wait_input(r, ring_pace_nap(&pace, taken_since));
        taken_since = 0;
    }
}
