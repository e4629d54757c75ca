#include "intake.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "deadletter.h"
#include "log.h"
#include "rec.h"
#include "topicname.h"

#define LOG_COMP "ingress"
/* wait slice on a full ring: bounded so a consumer that never wakes us still lets the loop
 * notice progress, not for the stop flag (a blocked write is finished, never abandoned) */
#define WAIT_SLICE_MS 200
/* acknowledging the spool costs a checkpoint write + fsync + rename: batch it while draining
 * (consumed-but-unacknowledged records are re-read after a crash: bounded duplicates) */
#define ACK_EVERY_NS   (100ull * 1000 * 1000)
#define ACK_EVERY_RECS 1024
/* an oversized message's dead letter keeps its metadata and this much of its payload: enough
 * to tell what it was, never the 100 MiB that made it oversized */
#define DEAD_HEAD_BYTES 1024

struct intake {
    ring *r;
    stats_slot *slot;
    uint16_t client;
    size_t max_payload;
    enum cfg_overflow overflow;
    uint64_t seq;
    uint64_t last_refusal_log_ns; /* rate limit of the oversized-message line */
    uint64_t refusals_unlogged;
    stats_slot own; /* counted into when the caller has no stats slot (tests) */
    /* Everything below, and every producer call on r, happens under mu: the ring has one
     * producer at a time (paho's thread in intake_message, or the main thread in
     * intake_drain); the mutex's acquire/release orders the producer's private cursor
     * between the two threads. */
    pthread_mutex_t mu;
    spool *sp;         /* NULL: no spool, a full ring blocks (the old behaviour) */
    int spill_wait_ms; /* how long a full ring is waited for before spilling */
    uint8_t *scratch;  /* one record, encoded for the spool */
    size_t scratch_cap;
    uint64_t unacked; /* spool records consumed into the ring since the last spool_ack */
    uint64_t last_ack_ns;
    int spill_failed_logged;
    int defer_flush;             /* intake_set_deferred_flush */
    uint64_t batch_wall_ns;      /* deferred: the batch's receive time (0: none read yet) */
    int stall_ms;                /* intake_set_stall: longest hold of the caller, 0 = none */
    uint64_t resume_spool_bytes; /* intake_has_room: spool bytes at or below which we resume */
    uint64_t stall_refused;      /* messages handed back unstored (INTAKE_REFUSED) */
    /* dead letters of what the ingress refuses (intake_set_deadletter); opened on first use,
     * written only by the thread that holds mu */
    char *dead_dir, *instance, *client_id;
    deadletter *dead;
};

int intake_create(ring *r, stats_slot *slot, size_t client, size_t max_payload,
                  enum cfg_overflow overflow, intake **out)
{
    if (!r || client >= REC_NONE)
        return -EINVAL;
    intake *in = calloc(1, sizeof(*in));
    if (!in)
        return -ENOMEM;
    ring_stats st;
    ring_get_stats(r, &st);
    in->r = r;
    in->slot = slot ? slot : &in->own;
    in->client = (uint16_t)client;
    in->max_payload = max_payload;
    in->overflow = overflow;
    in->seq = st.records_in;
    pthread_mutex_init(&in->mu, NULL);
    *out = in;
    return 0;
}

void intake_destroy(intake *in)
{
    if (!in)
        return;
    pthread_mutex_lock(&in->mu);
    if (in->sp && in->unacked)
        (void)spool_ack(in->sp); /* everything consumed was flushed to the ring */
    pthread_mutex_unlock(&in->mu);
    pthread_mutex_destroy(&in->mu);
    deadletter_close(in->dead);
    free(in->dead_dir);
    free(in->instance);
    free(in->client_id);
    free(in->scratch);
    free(in);
}

int intake_set_spool(intake *in, spool *sp, int spill_wait_ms)
{
    size_t cap = ring_max_record(in->r);
    uint8_t *b = malloc(cap);
    if (!b)
        return -ENOMEM;
    pthread_mutex_lock(&in->mu);
    free(in->scratch);
    in->scratch = b;
    in->scratch_cap = cap;
    in->sp = sp;
    in->spill_wait_ms = spill_wait_ms;
    /* spooled records already carry their sequence numbers; new ones come after them (with
     * records consumed-not-acknowledged the sum overshoots: a gap, never a repeat) */
    in->seq += spool_count(sp);
    stats_set(&in->slot->extra[STATS_I_SPOOL_NOW], spool_count(sp));
    pthread_mutex_unlock(&in->mu);
    return 0;
}

/* Under mu: moves spooled records into the ring while it has room (never waits), flushes,
 * and acknowledges the spool now and then. Returns how many records moved. */
static uint64_t drain_locked(intake *in, int force_ack)
{
    uint64_t moved = 0;
    const void *d;
    size_t len;
    int rc;
    while ((rc = spool_peek(in->sp, &d, &len, NULL)) == 0) {
        void *buf;
        int r = ring_reserve(in->r, len, &buf);
        if (r == -EAGAIN)
            break;
        if (r < 0) { /* a spooled record the ring cannot take: written by another geometry */
            log_error(LOG_COMP,
                      "spooled record of %zu bytes does not fit the ring: %s; "
                      "dropped (counted dead)",
                      len, strerror(-r));
            stats_add(&in->slot->dead, 1);
            (void)spool_consume(in->sp);
            continue;
        }
        memcpy(buf, d, len);
        ring_commit(in->r, len);
        (void)spool_consume(in->sp);
        moved++;
    }
    if (rc < 0 && rc != -ENODATA)
        log_error(LOG_COMP, "spool_peek: %s; spooled records wait for the next try", strerror(-rc));
    if (moved) {
        ring_flush(in->r); /* before the spool forgets them */
        in->unacked += moved;
    }
    stats_set(&in->slot->extra[STATS_I_SPOOL_NOW], spool_count(in->sp));
    uint64_t now = clock_mono_ns();
    if (in->unacked && (force_ack || spool_is_empty(in->sp) || in->unacked >= ACK_EVERY_RECS ||
                        now - in->last_ack_ns >= ACK_EVERY_NS)) {
        if (spool_ack(in->sp) == 0)
            in->unacked = 0;
        in->last_ack_ns = now;
    }
    return moved;
}

int intake_drain(intake *in, uint64_t *left)
{
    pthread_mutex_lock(&in->mu);
    if (in->sp && !spool_is_empty(in->sp))
        (void)drain_locked(in, 0);
    else if (in->sp && in->unacked)
        (void)drain_locked(in, 1);
    uint64_t n = in->sp ? spool_count(in->sp) : 0;
    pthread_mutex_unlock(&in->mu);
    if (left)
        *left = n;
    return 0;
}

uint64_t intake_spooled(intake *in)
{
    pthread_mutex_lock(&in->mu);
    uint64_t n = in->sp ? spool_count(in->sp) : 0;
    pthread_mutex_unlock(&in->mu);
    return n;
}

static void fill_hdr(intake *in, rec_hdr *h, int qos, int retain)
{
    memset(h, 0, sizeof(*h));
    h->seq = in->seq;
    /* a batch (deferred flush) came in one socket read: one clock read for all of it */
    if (!in->defer_flush)
        h->received_ns = clock_wall_ns();
    else
        h->received_ns =
            in->batch_wall_ns ? in->batch_wall_ns : (in->batch_wall_ns = clock_wall_ns());
    h->client = in->client;
    h->rule = REC_NONE;
    h->step = REC_NONE;
    h->kind = REC_MSG;
    h->qos = (uint8_t)(qos < 0 ? 0 : qos > 2 ? 2 : qos);
    h->retain = retain ? 1 : 0;
    h->src_client = in->client;
}

int intake_set_deadletter(intake *in, const char *dir, const char *instance, const char *client_id)
{
    char *d = dir ? strdup(dir) : NULL, *i = strdup(instance ? instance : "");
    char *c = strdup(client_id ? client_id : "");
    if ((dir && !d) || !i || !c) {
        free(d);
        free(i);
        free(c);
        return -ENOMEM;
    }
    pthread_mutex_lock(&in->mu);
    free(in->dead_dir);
    free(in->instance);
    free(in->client_id);
    in->dead_dir = d;
    in->instance = i;
    in->client_id = c;
    pthread_mutex_unlock(&in->mu);
    return 0;
}

/* Under mu: one dead letter, durable when it returns 0. */
static int write_dead(intake *in, const deadletter_entry *e)
{
    int rc;
    if (!in->dead_dir)
        return -ENOENT;
    if (!in->dead && (rc = deadletter_open(in->dead_dir, &in->dead)) < 0)
        return rc;
    char *line = deadletter_json(e);
    if (!line)
        return -ENOMEM;
    rc = deadletter_append(in->dead, line);
    free(line);
    if (rc == 0)
        rc = deadletter_sync(in->dead);
    return rc;
}

/* A message the pipeline cannot take (oversized, or a topic no broker accepts): counted,
 * logged at most once a second, and written to the dead-letter store (for an oversized one
 * its metadata and first DEAD_HEAD_BYTES bytes) before the caller acknowledges it. When the
 * store cannot be written the message is still acknowledged (it can never be taken; holding
 * it would wedge the subscription) and the log says so. */
static int refuse(intake *in, const char *topic, size_t topic_len, const void *payload,
                  size_t payload_len, int qos, const char *bad_topic, size_t len)
{
    stats_add(&in->slot->errors, 1);
    stats_add(&in->slot->dead, 1);
    char reason[256], shown[256];
    if (bad_topic)
        snprintf(reason, sizeof(reason), "invalid topic: the topic name %s", bad_topic);
    else
        snprintf(reason, sizeof(reason),
                 "oversized: %zu bytes, above runtime.max_payload %zu or the ring's max record "
                 "%zu; the first %d bytes kept",
                 payload_len, in->max_payload, ring_max_record(in->r), DEAD_HEAD_BYTES);
    topicname_escape(shown, sizeof(shown), topic, topic_len);
    /* the store takes a C string: an invalid topic (it may hold a NUL) goes escaped */
    char *topic_c = bad_topic ? strdup(shown) : strndup(topic, topic_len);
    deadletter_entry e = {
        .instance = in->instance,
        .reason = reason,
        .source_client = in->client_id,
        .topic = topic_c ? topic_c : "",
        .qos = qos,
        .payload = payload,
        .payload_len = bad_topic || payload_len <= DEAD_HEAD_BYTES ? payload_len : DEAD_HEAD_BYTES,
    };
    pthread_mutex_lock(&in->mu);
    int rc = write_dead(in, &e);
    pthread_mutex_unlock(&in->mu);
    free(topic_c);
    /* one line per second at most: a publisher flooding such messages must not turn into a
     * log flood; the counters and the store keep the exact number */
    uint64_t now = clock_mono_ns();
    if (now - in->last_refusal_log_ns >= 1000000000ull || in->last_refusal_log_ns == 0) {
        log_warn(LOG_COMP,
                 "message on \"%s\" refused (%s, record %zu bytes): %s%s; %llu more "
                 "refused since the last such line",
                 shown, reason, len,
                 rc == 0 ? "dead-lettered" : "NOT dead-lettered: ", rc == 0 ? "" : strerror(-rc),
                 (unsigned long long)in->refusals_unlogged);
        in->last_refusal_log_ns = now;
        in->refusals_unlogged = 0;
    } else {
        in->refusals_unlogged++;
    }
    return bad_topic ? -EINVAL : -EMSGSIZE;
}

/* How long the next wait on a full ring may take before deadline_ns (0 = none): 0 once the
 * deadline has passed. */
static int wait_slice(uint64_t deadline_ns)
{
    if (!deadline_ns)
        return WAIT_SLICE_MS;
    uint64_t now = clock_mono_ns();
    if (now >= deadline_ns)
        return 0;
    uint64_t left_ms = (deadline_ns - now + 999999) / 1000000;
    return left_ms < WAIT_SLICE_MS ? (int)left_ms : WAIT_SLICE_MS;
}

/* Under mu, with the spool non-empty or the ring full after the bounded wait: the message
 * goes to the spool and is durable when this returns 0. When the spool refuses (cap reached:
 * -ENOSPC, or a disk error) the message is owed to the ring in order: drain, then wait for
 * room as without a spool (this blocks paho's thread: the last resort, logged). */
static int spill(intake *in, const rec_hdr *h, const char *topic, size_t topic_len,
                 const void *payload, size_t payload_len, uint64_t deadline_ns)
{
    long n = rec_encode(in->scratch, in->scratch_cap, h, topic, topic_len, payload, payload_len);
    if (n < 0) /* cannot happen: the size was checked against the ring's max record */
        abort();
    int rc = spool_append(in->sp, in->scratch, (size_t)n);
    if (rc == 0) {
        stats_add(&in->slot->extra[STATS_I_SPOOLED], 1);
        stats_set(&in->slot->extra[STATS_I_SPOOL_NOW], spool_count(in->sp));
        in->spill_failed_logged = 0;
        return 0;
    }
    if (!in->spill_failed_logged) {
        spool_stats ss;
        spool_get_stats(in->sp, &ss);
        if (rc == -ENOSPC)
            log_warn(LOG_COMP,
                     "the ingress spool is at its cap (runtime.spool_max_bytes, %llu bytes in "
                     "%llu records; the disk is not full) and the ring is full: the pipeline "
                     "behind this ingress is not keeping up; %s",
                     (unsigned long long)ss.bytes, (unsigned long long)ss.records,
                     in->stall_ms ? "waiting for room, then pausing the broker connection"
                                  : "holding the message until the ring has room");
        else
            log_error(LOG_COMP, "spool_append: %s; holding the message until the ring has room",
                      strerror(-rc));
        in->spill_failed_logged = 1;
    }
    for (;;) {
        if (!spool_is_empty(in->sp))
            (void)drain_locked(in, 0);
        if (spool_is_empty(in->sp)) {
            if (ring_push(in->r, in->scratch, (size_t)n) == 0) {
                ring_flush(in->r);
                return 0;
            }
        } else if (spool_append(in->sp, in->scratch, (size_t)n) == 0) {
            stats_add(&in->slot->extra[STATS_I_SPOOLED], 1);
            stats_set(&in->slot->extra[STATS_I_SPOOL_NOW], spool_count(in->sp));
            return 0;
        }
        int slice = wait_slice(deadline_ns);
        if (slice == 0)
            return -ETIMEDOUT;
        (void)ring_wait_space(in->r, (size_t)n, slice);
    }
}

void intake_set_stall(intake *in, int stall_ms, uint64_t resume_spool_bytes)
{
    pthread_mutex_lock(&in->mu);
    in->stall_ms = stall_ms > 0 ? stall_ms : 0;
    in->resume_spool_bytes = resume_spool_bytes;
    pthread_mutex_unlock(&in->mu);
}

bool intake_has_room(intake *in)
{
    pthread_mutex_lock(&in->mu);
    bool room = ring_used(in->r) <= ring_capacity(in->r) / 2;
    if (room && in->sp && !spool_is_empty(in->sp)) {
        spool_stats ss;
        spool_get_stats(in->sp, &ss);
        room = ss.bytes <= in->resume_spool_bytes;
    }
    if (room)
        in->spill_failed_logged = 0; /* the next time the spool refuses is news again */
    pthread_mutex_unlock(&in->mu);
    return room;
}

uint64_t intake_next_seq(intake *in)
{
    pthread_mutex_lock(&in->mu);
    uint64_t v = in->seq;
    pthread_mutex_unlock(&in->mu);
    return v;
}

/* intake_message's bound on how long it holds its caller, from now (0: none) */
static uint64_t stall_deadline(const intake *in)
{
    return in->stall_ms ? clock_mono_ns() + (uint64_t)in->stall_ms * 1000000ull : 0;
}

int intake_message(intake *in, const char *topic, size_t topic_len, const void *payload,
                   size_t payload_len, int qos, int retain)
{
    size_t len = rec_size(topic_len, payload_len);
    const char *bad_topic = topicname_check(topic, topic_len, false, NULL);
    if (bad_topic || payload_len > in->max_payload || len > ring_max_record(in->r))
        return refuse(in, topic, topic_len, payload, payload_len, qos, bad_topic, len);

    void *buf;
    int rc;
    rec_hdr h;
    /* the caller's thread (paho's, which also sends PINGREQs and PUBACKs) is held at most
     * stall_ms in all: past that the message is handed back unstored (INTAKE_REFUSED). The
     * clock is read only once the message may have to wait (spool in use, ring full), not
     * per message */
    uint64_t deadline = 0;
    pthread_mutex_lock(&in->mu);
    if (in->sp && !spool_is_empty(in->sp)) {
        deadline = stall_deadline(in);
        /* order: what waits in the spool goes first; if it cannot all go, this one follows
         * it into the spool */
        (void)drain_locked(in, 0);
        if (!spool_is_empty(in->sp)) {
            rc = -EAGAIN;
            goto full;
        }
    }
    rc = ring_reserve(in->r, len, &buf);
    if (rc == -EAGAIN && !deadline)
        deadline = stall_deadline(in);
    if (rc == -EAGAIN && in->sp && !(in->overflow == CFG_OVERFLOW_DROP && qos == 0)) {
        /* a short wait absorbs a consumer that is only a little behind; well under
         * keepalive / 2 so paho's thread (which also sends PINGREQ) is back in time */
        (void)ring_wait_space(in->r, len, in->spill_wait_ms);
        rc = ring_reserve(in->r, len, &buf);
    }
full:
    while (rc == -EAGAIN) {
        if (in->overflow == CFG_OVERFLOW_DROP && qos == 0) {
            ring_count_drop(in->r);
            stats_add(&in->slot->dropped, 1);
            pthread_mutex_unlock(&in->mu);
            return INTAKE_DROPPED;
        }
        if (in->sp) {
            fill_hdr(in, &h, qos, retain);
            rc = spill(in, &h, topic, topic_len, payload, payload_len, deadline);
            if (rc == 0) {
                in->seq++;
                stats_add(&in->slot->in, 1);
            }
            if (rc == -ETIMEDOUT)
                in->stall_refused++;
            pthread_mutex_unlock(&in->mu);
            return rc == 0 ? INTAKE_WRITTEN : rc == -ETIMEDOUT ? INTAKE_REFUSED : rc;
        }
        /* the record is still owed to the ring (a QoS 1 message is acknowledged when we
         * return), so keep waiting, up to the stall limit */
        int slice = wait_slice(deadline);
        if (slice == 0) {
            in->stall_refused++;
            pthread_mutex_unlock(&in->mu);
            return INTAKE_REFUSED;
        }
        (void)ring_wait_space(in->r, len, slice);
        rc = ring_reserve(in->r, len, &buf);
    }
    if (rc < 0) { /* -EMSGSIZE was checked above; anything else is our bug */
        pthread_mutex_unlock(&in->mu);
        stats_add(&in->slot->errors, 1);
        log_error(LOG_COMP, "ring_reserve(%zu) on \"%.*s\": %s", len, (int)topic_len, topic,
                  strerror(-rc));
        return rc;
    }
    fill_hdr(in, &h, qos, retain);
    long n = rec_encode(buf, len, &h, topic, topic_len, payload, payload_len);
    if (n < 0) /* cannot happen: len is rec_size of these lengths */
        abort();
    ring_commit(in->r, (size_t)n);
    /* publish before paho acknowledges the message (see intake.h); a batching caller
     * flushes once per batch, before its acknowledgements (intake_flush) */
    if (!in->defer_flush)
        ring_flush(in->r);
    in->seq++;
    pthread_mutex_unlock(&in->mu);
    stats_add(&in->slot->in, 1);
    return INTAKE_WRITTEN;
}

void intake_set_deferred_flush(intake *in, int defer)
{
    pthread_mutex_lock(&in->mu);
    in->defer_flush = defer;
    pthread_mutex_unlock(&in->mu);
}

void intake_flush(intake *in)
{
    pthread_mutex_lock(&in->mu);
    in->batch_wall_ns = 0; /* the next batch reads the clock again */
    ring_flush(in->r);
    pthread_mutex_unlock(&in->mu);
}
