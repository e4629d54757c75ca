/* pump: the relay's main loop; see pump.h for the contract.
 *
 * One turn: apply connection events, run connection timers, apply finished publishes to the
 * windows, service every ring (publish again what must be, then read and publish new records
 * while the outstanding bound and the window allow), release each ring up to its window's
 * finished prefix (one ring_release_to per ring per turn), then either loop (something
 * happened) or wait.
 */
#include "pump.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "atom.h"
#include "backoff.h"
#include "clock.h"
#include "conn.h"
#include "conn_uring.h"
#include "futex.h"
#include "mqttc.h"
#include "cq.h"
#include "exitcode.h"
#include "log.h"
#include "names.h"
#include "rec.h"
#include "deadletter.h"
#include "dlq.h"
#include "suspect.h"
#include "topicname.h"
#include "inflight.h"
#include "sfwd.h"
#include "stage.h"
#include "tap.h"

#define COMP               "relay"
#define WAIT_MAX_MS        200
#define HOLD_AGAIN_NS      5000000ull   /* paho out of ids/buffer: try that ring again in 5 ms */
#define HOLD_FAIL_NS       100000000ull /* a publish failed on a live connection: 100 ms */
#define DISCONNECT_MS      1000
#define DISCONNECT_WAIT_NS 2000000000ull

_Static_assert(CFG_RELAY_OUTSTANDING_MAX == CQ_MAX_SLOTS, "runtime.relay.outstanding's range");
_Static_assert(CFG_RELAY_DRAIN_BATCH_MAX == SFWD_BATCH_MAX, "runtime.relay.drain_batch's range");

enum send_result { SEND_OK, SEND_REJECTED, SEND_DOWN, SEND_AGAIN, SEND_NO_CREDIT };

/* A damaged region of a ring (a corrupt record header) whose dead letter the store has not
 * taken yet (issue 8): its ring is not read on (broken) and the store is tried again
 * (hold_until, backing off: common/backoff.h); nothing of it is released before (its first
 * bytes stay valid, being unreleased). */
typedef struct qhold {
    uint64_t at, bytes, end_pos; /* where it began, how long, the read cursor after it */
    const void *first;
    size_t first_len;
    unsigned delay_ms; /* the wait before the next try; 0: first try */
} qhold;

/* Windows: 0 .. n_rings-1 are the rings', n_rings + t is target t's spool drain window (its
 * entries live in sfwd); cq completions name a window by that index. */
struct pump {
    const cfg *cfg;
    ring **rings; /* worker w's output ring, attached as its consumer */
    size_t n_rings;
    size_t n_wins;        /* n_rings + n_conns */
    inflight **win;       /* per window (drain windows borrowed from sf) */
    uint64_t *hold_until; /* per window: do not publish before this time (0: no hold) */
    uint8_t *broken;      /* per ring: a damaged region waits for the store (qh) */
    qhold *qh;            /* per ring */
    uint8_t *blocked;     /* per ring: this turn stopped at a record for a down target */
    sfwd *sf;
    dlq *dl;
    suspect *sus; /* which publish a target broker closes the connection for */
    size_t *lost; /* per conn: publishes lost with its connection in this apply_done */
    int stopping;
    uint64_t spooled_shown; /* last value written to extra[STATS_RL_SPOOL_NOW] */
    ring **waitset;
    conn **conns;
    size_t n_conns;
    cq *q;
    cq_done *done;
    size_t done_cap;
    unsigned *ev;
    stats_slot *st;
    uint64_t rejects; /* for log rate limiting */
    int ready;
    size_t rr;
    conn *one;  /* one-thread mode's primary connection (the pump waits through it), or NULL */
    int efd;    /* the other io_uring connections' completions signal it (create_conns), or -1 */
    stats *seg; /* the stats segment, for the tap generation (pump_watch_taps) */
    tap_port tap_out; /* `mqttflow tap --at out` (tap.h) */
};

static void add_stat(pump *p, size_t off, uint64_t n)
{
    if (p->st)
        stats_add((uint64_t *)((char *)p->st + off), n);
}
#define ADD(p, f, n) add_stat((p), offsetof(stats_slot, f), (n))

/* The first 10 rejects, then one in 1000: a stream of bad records must not flood the log. */
static int should_log_reject(pump *p)
{
    p->rejects++;
    return p->rejects <= 10 || p->rejects % 1000 == 0;
}

/* Attaches every worker's output ring as its consumer (the router attaches its own rings the
 * same way, in route_create). */
static int attach_rings(pump *p, const cfg *c)
{
    char name[SHM_NAME_MAX];
    p->rings = calloc((size_t)c->runtime.workers, sizeof(*p->rings));
    if (!p->rings)
        return -ENOMEM;
    for (; p->n_rings < (size_t)c->runtime.workers; p->n_rings++) {
        int rc = names_worker_out(name, sizeof(name), c->runtime.instance, p->n_rings);
        if (rc == 0)
            rc = ring_attach(name, RING_CONSUMER, &p->rings[p->n_rings]);
        if (rc != 0) {
            log_error(COMP, "ring_attach(%s, consumer): %s", name, strerror(-rc));
            return rc;
        }
    }
    return 0;
}

/* Whether the io_uring connections run on the pump's thread (conn_uring.h one-thread mode)
 * rather than on I/O threads of their own: needs IORING_OP_FUTEX_WAITV (Linux 6.7), at most
 * FUTEX_WAITV_MAX_WORDS words (every ring and the cq word), and no MQTTFLOW_RELAY_IO_THREAD=1
 * in the environment (so tests run both paths). *n_uring: how many there are. Logged at INFO. */
static bool one_thread_wanted(const pump *p, const cfg *c, size_t *n_uring)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n_conns; i++)
        n += mqttc_wanted(c->runtime.mqtt_io, &c->clients[i], COMP);
    *n_uring = n;
    if (n == 0)
        return false;
    const char *env = getenv("MQTTFLOW_RELAY_IO_THREAD");
    const char *why = NULL;
    if (env && strcmp(env, "1") == 0)
        why = "MQTTFLOW_RELAY_IO_THREAD=1";
    else if (p->n_rings + 1 > FUTEX_WAITV_MAX_WORDS)
        why = "too many rings for one futex wait";
    else if (!conn_uring_one_thread_supported())
        why = "the kernel's io_uring has no FUTEX_WAITV (Linux < 6.7)";
    if (why) {
        log_info(COMP, "io_uring connections on I/O threads of their own (%s)", why);
        return false;
    }
    log_info(COMP, "io_uring connection%s on the relay's own thread (FUTEX_WAITV)",
             n == 1 ? "" : "s");
    return true;
}

/* Creates every connection (see one_thread_wanted): with the one-thread path, the first io_uring
 * connection is the primary the pump waits through (p->one), and with more than one an eventfd
 * (p->efd) carries the others' completions into its wait. */
static int create_conns(pump *p, const cfg *c)
{
    size_t n_uring;
    bool one = one_thread_wanted(p, c, &n_uring);
    if (one && n_uring > 1) {
        p->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (p->efd < 0) {
            int rc = -errno;
            log_error(COMP, "eventfd(): %s", strerror(errno));
            return rc;
        }
    }
    for (size_t i = 0; i < p->n_conns; i++) {
        enum conn_uring_io io = CONN_URING_IO_THREAD;
        bool uring = mqttc_wanted(c->runtime.mqtt_io, &c->clients[i], COMP);
        if (one && uring)
            io = p->one ? CONN_URING_IO_SECONDARY : CONN_URING_IO_PRIMARY;
        int rc = conn_create(&c->clients[i], (uint16_t)i, c->runtime.instance, c->runtime.mqtt_io,
                             io, p->efd, p->q, &p->conns[i]);
        if (rc != 0)
            return rc;
        if (io == CONN_URING_IO_PRIMARY)
            p->one = p->conns[i];
        /* a publish of the largest payload in one write (common/nodelay.h); the default
         * buffer already holds what max_payload allows by default (256 KiB) */
        if (c->runtime.max_payload > (1u << 20))
            conn_set_sndbuf(p->conns[i], c->runtime.max_payload + 65536);
    }
    return 0;
}

int pump_create(const cfg *c, stats_slot *slot, pump **out)
{
    int rc = -ENOMEM;
    size_t n_rings = (size_t)c->runtime.workers;
    *out = NULL;
    if (c->n_clients > CQ_MAX_CONNS || n_rings + c->n_clients > UINT16_MAX)
        return -EINVAL;
    pump *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->cfg = c;
    p->efd = -1;
    if ((rc = attach_rings(p, c)) != 0)
        goto err;
    rc = -ENOMEM;
    p->st = slot;
    p->n_conns = c->n_clients;
    p->n_wins = n_rings + p->n_conns;

    /* runtime.relay (config/cfg_runtime.c applies the defaults and the ranges) */
    size_t outstanding = (size_t)c->runtime.relay_outstanding;
    /* a drain batch takes at most half the outstanding slots: live traffic keeps the rest */
    size_t batch = (size_t)c->runtime.relay_drain_batch;
    if (batch > outstanding / 2)
        batch = outstanding / 2 ? outstanding / 2 : 1;

    p->win = calloc(p->n_wins ? p->n_wins : 1, sizeof(*p->win));
    p->hold_until = calloc(p->n_wins ? p->n_wins : 1, sizeof(*p->hold_until));
    p->broken = calloc(n_rings ? n_rings : 1, 1);
    p->qh = calloc(n_rings ? n_rings : 1, sizeof(*p->qh));
    p->blocked = calloc(n_rings ? n_rings : 1, 1);
    p->waitset = calloc(n_rings ? n_rings : 1, sizeof(*p->waitset));
    p->conns = calloc(p->n_conns ? p->n_conns : 1, sizeof(*p->conns));
    p->ev = calloc(p->n_conns ? p->n_conns : 1, sizeof(*p->ev));
    p->done_cap = outstanding;
    p->done = calloc(outstanding, sizeof(*p->done));
    if (!p->win || !p->hold_until || !p->broken || !p->qh || !p->blocked || !p->waitset ||
        !p->conns || !p->ev || !p->done)
        goto err;
    for (size_t i = 0; i < n_rings; i++)
        if ((rc = inflight_create(PUMP_WINDOW, &p->win[i])) != 0)
            goto err;
    p->lost = calloc(p->n_conns ? p->n_conns : 1, sizeof(*p->lost));
    if (!p->lost) {
        rc = -ENOMEM;
        goto err;
    }
    if ((rc = suspect_create(p->n_conns, c->runtime.max_attempts, &p->sus)) != 0 ||
        (rc = sfwd_create(c, batch, &p->sf)) != 0 || (rc = dlq_create(c, &p->dl)) != 0)
        goto err;
    for (size_t t = 0; t < p->n_conns; t++)
        p->win[n_rings + t] = sfwd_window(p->sf, (uint16_t)t);
    if ((rc = cq_create(outstanding, p->n_conns, &p->q)) != 0)
        goto err;
    if ((rc = create_conns(p, c)) != 0)
        goto err;
    *out = p;
    return 0;

err:
    pump_destroy(p);
    return rc;
}

void pump_watch_taps(pump *p, stats *seg)
{
    p->seg = seg;
}

void pump_destroy(pump *p)
{
    if (!p)
        return;
    /* connections first: once their paho handles are gone nothing calls into the cq */
    if (p->conns)
        for (size_t i = 0; i < p->n_conns; i++)
            conn_destroy(p->conns[i]);
    cq_destroy(p->q);
    if (p->efd >= 0)
        close(p->efd); /* after the connections whose io_urings signal it */
    if (p->win)
        for (size_t i = 0; i < p->n_rings; i++)
            inflight_destroy(p->win[i]);
    sfwd_destroy(p->sf); /* after the connections: every completion has been applied */
    tap_port_fini(&p->tap_out);
    dlq_destroy(p->dl);
    suspect_destroy(p->sus);
    free(p->lost);
    free(p->done);
    free(p->ev);
    free(p->conns);
    free(p->waitset);
    free(p->blocked);
    free(p->broken);
    free(p->qh);
    free(p->hold_until);
    free(p->win);
    if (p->rings)
        for (size_t i = 0; i < p->n_rings; i++)
            ring_detach(p->rings[i]);
    free(p->rings);
    free(p);
}

/* Makes e the owner of dead, a REC_DEAD record of len bytes from dlq.h, which takes the
 * dead-letter path (dispatch -> dlq); counted as a dead letter of this stage. */
static void adopt_dead(pump *p, inflight_entry *e, void *dead, size_t len)
{
    rec_view v;
    (void)rec_decode(dead, len, &v); /* made by dlq.h: it decodes */
    free(e->owned);                  /* after the copy: e's views may point into it */
    e->owned = dead;
    e->rec = dead;
    e->rec_len = (uint32_t)len;
    e->topic = v.topic;
    e->kind = INFLIGHT_DEAD;
    e->state = INFLIGHT_PENDING;
    if (p->st) {
        stats_add(&p->st->extra[STATS_RL_DEAD_IN], 1);
        stats_add(&p->st->dead, 1);
    }
}

/* Turns e (a REC_PUBLISH record) into a dead letter of `reason` (rec.h). 0, or -ENOMEM /
 * -EINVAL (e is unchanged). */
static int to_dead_letter(pump *p, inflight_entry *e, unsigned reason)
{
    void *dead;
    size_t len;
    int rc = dlq_dead_of_publish(e->rec, e->rec_len, reason, &dead, &len);
    if (rc == 0)
        adopt_dead(p, e, dead, len);
    return rc;
}

/* A record of ring ri that decodes but cannot be delivered (issue 8 item 3): e becomes its
 * dead letter (rec.h REC_DEAD_MISPLACED: `what`, with its kind or client n). */
static void dead_misplaced(pump *p, size_t ri, const void *buf, size_t len, inflight_entry *e,
                           enum rec_misplaced what, unsigned n)
{
    void *dead;
    size_t dlen;
    ADD(p, errors, 1);
    int rc = dlq_dead_of_misplaced(p->cfg, buf, len, what, n, &dead, &dlen);
    if (rc == 0)
        adopt_dead(p, e, dead, dlen);
    if (should_log_reject(p))
        log_error(COMP, "ring %zu: record %s %u: %s", ri,
                  what == REC_MISPLACED_CLIENT ? "for unknown client index" : "of unexpected kind",
                  n, rc == 0 ? "dead-lettered" : "skipped (out of memory)");
}

/* Fills e from a record read from the ring; e->state is PENDING when it is to be published,
 * DONE when it is to be released as it is (counted and logged here). */
static void classify(pump *p, size_t ri, const void *buf, size_t len, inflight_entry *e)
{
    rec_view v;
    e->state = INFLIGHT_DONE;
    if (rec_decode(buf, len, &v) != 0) {
        /* issue 8 item 3: its length and first bytes to the dead-letter store */
        void *dead;
        size_t dlen;
        ADD(p, errors, 1);
        int rc = dlq_dead_of_bytes(p->cfg, buf, len, &dead, &dlen);
        if (rc == 0)
            adopt_dead(p, e, dead, dlen);
        if (should_log_reject(p))
            log_error(COMP, "ring %zu: undecodable record of %zu bytes: %s", ri, len,
                      rc == 0 ? "dead-lettered" : "skipped (out of memory)");
        return;
    }
    switch (v.h.kind) {
    case REC_PUBLISH:
        if (v.h.client >= p->n_conns) {
            dead_misplaced(p, ri, buf, len, e, REC_MISPLACED_CLIENT, v.h.client);
            return;
        }
        if (!cfg_topic_name_is_valid(v.topic)) {
            /* a broker disconnects a client that publishes to a filter or a control
             * character: that record would take the connection down on every retry */
            char shown[256];
            topicname_escape(shown, sizeof(shown), v.topic, v.h.topic_len);
            ADD(p, errors, 1);
            e->rec = buf;
            e->rec_len = (uint32_t)len;
            int rc = to_dead_letter(p, e, REC_DEAD_INVALID_TOPIC);
            if (should_log_reject(p))
                log_error(COMP, "client %s: invalid topic name \"%s\": record %s",
                          conn_name(p->conns[v.h.client]), shown,
                          rc == 0 ? "dead-lettered" : "skipped (out of memory)");
            return;
        }
        e->topic = v.topic;
        e->payload = v.payload;
        e->payload_len = v.h.payload_len;
        e->rec = buf;
        e->rec_len = (uint32_t)len;
        e->conn = v.h.client;
        e->qos = v.h.qos;
        e->retain = v.h.retain ? 1 : 0;
        e->kind = INFLIGHT_PUBLISH;
        e->state = INFLIGHT_PENDING;
        tap_port_put(&p->tap_out, &v);
        return;
    case REC_DEAD:
        /* to the dead-letter store (dlq.h); released once its line is durable */
        if (p->st)
            stats_add(&p->st->extra[STATS_RL_DEAD_IN], 1);
        e->topic = v.topic;
        e->rec = buf;
        e->rec_len = (uint32_t)len;
        e->kind = INFLIGHT_DEAD;
        e->state = INFLIGHT_PENDING;
        return;
    default:
        dead_misplaced(p, ri, buf, len, e, REC_MISPLACED_KIND, v.h.kind);
        return;
    }
}

/* Hands a dead letter (e->kind INFLIGHT_DEAD) to the store's queue (dlq.h); SENT until it is
 * stored. SEND_AGAIN when the queue cannot take it now. */
static enum send_result queue_dead(pump *p, size_t ri, uint64_t seq, inflight_entry *e)
{
    if (dlq_queue(p->dl, (uint16_t)ri, seq, e->rec, e->rec_len) != 0)
        return SEND_AGAIN;
    inflight_sent(p->win[ri], seq);
    return SEND_OK;
}

static enum send_result send_entry(pump *p, size_t ri, uint64_t seq, inflight_entry *e)
{
    if (e->conn >= p->n_conns) {
        /* a dead letter for a client that is not there (an unknown source): nothing to do */
        inflight_done(p->win[ri], seq);
        return SEND_REJECTED;
    }
    conn *c = p->conns[e->conn];
    if (!conn_is_up(c))
        return SEND_DOWN;
    if (e->qos > 0 && !suspect_may_send(p->sus, e->conn, conn_qos_outstanding(c)))
        return SEND_NO_CREDIT; /* on probation (suspect.h): one at a time */
    void *ctx;
    if (cq_acquire(p->q, (uint16_t)ri, seq, e->conn, &ctx) != 0)
        return SEND_NO_CREDIT;
    int rc = conn_publish(c, e->topic, e->payload, e->payload_len, e->qos, e->retain, ctx);
    if (rc == 0) {
        inflight_sent(p->win[ri], seq);
        return SEND_OK;
    }
    cq_cancel(p->q, ctx);
    if (rc == -ENOTCONN)
        return SEND_DOWN;
    if (rc == -EBUSY)
        return SEND_NO_CREDIT; /* this connection's completions wake the loop */
    if (rc == -EAGAIN || rc == -ENOMEM)
        return SEND_AGAIN; /* a full queue or a memory shortage pass */
    /* refused for good (issue 8 item 3: every drop is a dead letter): the record becomes its
     * dead letter and takes the dead-letter path on the next dispatch */
    ADD(p, errors, 1);
    int dl = to_dead_letter(p, e, REC_DEAD_LIB_REFUSED);
    if (should_log_reject(p))
        log_error(COMP,
                  "client %s: the MQTT client library refused a publish to \"%s\" (%zu bytes, "
                  "qos %u: %s): %s",
                  conn_name(c), e->topic, (size_t)e->payload_len, (unsigned)e->qos, strerror(-rc),
                  dl == 0 ? "dead-lettered" : "skipped (out of memory)");
    if (dl == 0)
        return queue_dead(p, ri, seq, e);
    inflight_done(p->win[ri], seq);
    return SEND_REJECTED;
}

/* Hands a ring's PENDING entry on: a dead letter to the store's queue, a record for a target
 * that is down or still draining its spool to that spool's queue (both stay SENT until
 * stored), anything else to paho. */
static enum send_result dispatch(pump *p, size_t ri, uint64_t seq, inflight_entry *e)
{
    if (e->kind == INFLIGHT_DEAD)
        return queue_dead(p, ri, seq, e);
    if (e->conn < p->n_conns && !conn_is_up(p->conns[e->conn]) &&
        !conn_first_attempt_done(p->conns[e->conn]))
        return SEND_DOWN; /* starting: wait for the first connect rather than spool at once */
    if (e->conn < p->n_conns && sfwd_diverts(p->sf, e->conn, conn_is_up(p->conns[e->conn]))) {
        int rc = sfwd_queue(p->sf, e->conn, (uint16_t)ri, seq, e->rec, e->rec_len);
        if (rc == -ENOBUFS)
            return SEND_NO_CREDIT; /* a batch is full: more after this turn's append */
        if (rc != 0)
            return SEND_DOWN; /* no spool for it: the record waits in the ring */
        inflight_sent(p->win[ri], seq);
        return SEND_OK;
    }
    return send_entry(p, ri, seq, e);
}

/* Stores the dead letter of ring ri's damaged region (qh[ri]). 0: stored, released in ring
 * order like a finished record (*n counts it), the ring read on; or -errno: ring ri held
 * (broken), tried again after a backoff (hold_until). */
static int store_region(pump *p, size_t ri, size_t *n, uint64_t now)
{
    qhold *q = &p->qh[ri];
    char reason[256];
    snprintf(reason, sizeof(reason),
             "corrupt ring: %llu bytes of worker output ring %zu at position %llu could not be "
             "read as records and were skipped (the payload holds the first of them)",
             (unsigned long long)q->bytes, ri, (unsigned long long)q->at);
    deadletter_entry e = {
        .instance = p->cfg->runtime.instance,
        .reason = reason,
        .topic = "$mqttflow/corrupt-ring",
        .payload = q->first,
        .payload_len = q->first_len < 4096 ? q->first_len : 4096,
    };
    int rc = deadletter_store_one(p->cfg->runtime.dead_letter_dir, &e);
    if (rc < 0) {
        /* the cursor moved, but nothing of the region is in the window, so nothing of it
         * is released: a later relay reads it again */
        ADD(p, errors, 1);
        if (!q->delay_ms)
            log_error(COMP,
                      "ring %zu: corrupt record header at position %llu and the dead-letter store "
                      "cannot take the damaged %llu bytes: %s; the ring waits for it (tried again "
                      "from %d ms up to every %d ms)",
                      ri, (unsigned long long)q->at, (unsigned long long)q->bytes, strerror(-rc),
                      BACKOFF_STORE_FIRST_MS, BACKOFF_STORE_MAX_MS);
        q->delay_ms = backoff_next(q->delay_ms, BACKOFF_STORE_FIRST_MS, BACKOFF_STORE_MAX_MS);
        p->hold_until[ri] = now + q->delay_ms * 1000000ull;
        p->broken[ri] = 1;
        return rc;
    }
    ADD(p, dead, 1);
    inflight_entry ne;
    memset(&ne, 0, sizeof(ne));
    ne.end_pos = q->end_pos;
    ne.state = INFLIGHT_DONE;
    (void)inflight_push(p->win[ri], &ne);
    (*n)++;
    log_error(COMP,
              "ring %zu: corrupt record header at position %llu: %llu byte(s) skipped and "
              "dead-lettered; reading on",
              ri, (unsigned long long)q->at, (unsigned long long)q->bytes);
    memset(q, 0, sizeof(*q));
    p->broken[ri] = 0;
    return 0;
}

/* A corrupt record header at ring ri's read cursor: see service_ring. The region is skipped
 * and its dead letter stored (store_region). 0 or -errno (ring ri held). */
static int quarantine(pump *p, size_t ri, size_t *n, uint64_t now)
{
    ring *r = p->rings[ri];
    qhold *q = &p->qh[ri];
    memset(q, 0, sizeof(*q));
    q->at = ring_read_pos(r);
    q->bytes = ring_skip_damaged(r, &q->first, &q->first_len);
    q->end_pos = ring_read_pos(r);
    ADD(p, errors, 1);
    return store_region(p, ri, n, now);
}

/* Publishes what ring ri has pending, then reads and publishes new records. Returns how
 * many records it handled (0: nothing to do or blocked). */
static size_t service_ring(pump *p, size_t ri, uint64_t now)
{
    inflight *w = p->win[ri];
    ring *r = p->rings[ri];
    size_t n = 0;
    inflight_entry *e;
    uint64_t seq;

    p->blocked[ri] = 0;
    if (p->hold_until[ri]) {
        if (now < p->hold_until[ri])
            return 0;
        p->hold_until[ri] = 0;
    }
    while ((e = inflight_next_pending(w, &seq)) != NULL) {
        enum send_result s = dispatch(p, ri, seq, e);
        if (s == SEND_OK || s == SEND_REJECTED) {
            n++;
            continue;
        }
        if (s == SEND_DOWN)
            p->blocked[ri] = 1;
        else if (s == SEND_AGAIN)
            p->hold_until[ri] = now + HOLD_AGAIN_NS;
        return n;
    }

    if (p->broken[ri] && store_region(p, ri, &n, now) < 0)
        return n; /* a damaged region still waits for the store */
    while (!p->broken[ri] && !inflight_is_full(w) && cq_free_slots(p->q) > 0) {
        const void *buf;
        size_t len;
        int rc = ring_peek(r, &buf, &len);
        if (rc == -EAGAIN)
            break;
        if (rc != 0) {
            /* a corrupt length (issue 8 item 4): nothing in the region up to the worker's
             * head can be trusted; it is dead-lettered (size and first bytes) and released
             * in ring order like a finished record, and the ring read on. When the
             * store cannot take it the ring waits for it (store_region) */
            if (quarantine(p, ri, &n, now) < 0)
                break;
            continue;
        }
        /* the attempt mark (DESIGN §2): decoding and handing a record to paho is this
         * stage's "run"; a record that killed max_attempts relays is skipped */
        unsigned attempt = ring_begin(r);
        uint64_t start = ring_read_pos(r); /* the record's own position (pads skipped) */
        ring_advance(r);
        ADD(p, in, 1);
        inflight_entry ne;
        memset(&ne, 0, sizeof(ne));
        ne.end_pos = ring_read_pos(r);
        if (attempt > (unsigned)p->cfg->runtime.max_attempts) {
            ADD(p, dead, 1);
            log_error(COMP,
                      "ring %zu: the record at position %llu killed the relay %u times: "
                      "skipped (%zu bytes)",
                      ri, (unsigned long long)start, attempt - 1, len);
            ne.state = INFLIGHT_DONE;
        } else {
            classify(p, ri, buf, len, &ne);
        }
        seq = inflight_push(w, &ne);
        n++;
        if (ne.state != INFLIGHT_PENDING) {
            ring_end(r);
            continue;
        }
        enum send_result s = dispatch(p, ri, seq, inflight_at(w, seq));
        ring_end(r);
        if (s == SEND_OK || s == SEND_REJECTED)
            continue;
        if (s == SEND_DOWN)
            p->blocked[ri] = 1;
        else if (s == SEND_AGAIN)
            p->hold_until[ri] = now + HOLD_AGAIN_NS;
        break;
    }
    return n;
}

/* Publishes target t's spool drain batch (reading the next batch once the last is done). */
static size_t service_drain(pump *p, size_t t, uint64_t now)
{
    size_t wi = p->n_rings + t;
    inflight *w = p->win[wi];
    size_t n = 0;
    if (!conn_is_up(p->conns[t]))
        return 0;
    if (p->hold_until[wi]) {
        if (now < p->hold_until[wi])
            return 0;
        p->hold_until[wi] = 0;
    }
    if (!p->stopping && inflight_is_empty(w))
        n += sfwd_fill(p->sf, (uint16_t)t);
    inflight_entry *e;
    uint64_t seq;
    while ((e = inflight_next_pending(w, &seq)) != NULL) {
        /* a spooled record the broker refused became a dead letter (retry_lost) */
        enum send_result s =
            e->kind == INFLIGHT_DEAD ? dispatch(p, wi, seq, e) : send_entry(p, wi, seq, e);
        if (s == SEND_OK || s == SEND_REJECTED) {
            n++;
            continue;
        }
        if (s == SEND_AGAIN)
            p->hold_until[wi] = now + HOLD_AGAIN_NS;
        break;
    }
    return n;
}

static void on_spooled(void *arg, uint16_t wi, uint64_t seq)
{
    pump *p = arg;
    inflight_done(p->win[wi], seq);
}

/* A dead letter's line is durable: released, or first published to the dead-letter topic
 * (the entry becomes pub, dlq.h's QoS 1 publish of the line, owning its record, and takes the
 * normal path: straight out, or to the target's spool when it is down). */
static void on_dead_stored(void *arg, uint16_t wi, uint64_t seq, void *pub, size_t pub_len)
{
    pump *p = arg;
    inflight *w = p->win[wi];
    inflight_entry *e = inflight_at(w, seq);
    rec_view v;
    ADD(p, extra[STATS_RL_DEAD_STORED], 1);
    if (!pub || !e || rec_decode(pub, pub_len, &v) != 0) {
        free(pub);
        inflight_done(w, seq);
        return;
    }
    free(e->owned); /* the dead record, if the relay made it: the store is done with it */
    e->owned = pub;
    e->rec = pub;
    e->rec_len = (uint32_t)pub_len;
    e->topic = v.topic;
    e->payload = v.payload;
    e->payload_len = v.h.payload_len;
    e->conn = v.h.client;
    e->qos = 1;
    e->retain = 0;
    e->kind = INFLIGHT_PUBLISH;
    inflight_retry(w, seq);
}

/* A publish lost with its connection (or failed) is published again, unless the broker
 * closed the connection for it max_attempts times in a row (suspect.h): then it is
 * dead-lettered. */
static void retry_lost(pump *p, const cq_done *d, inflight_entry *e)
{
    inflight *w = p->win[d->ring];
    if (e && e->qos > 0 && e->kind == INFLIGHT_PUBLISH &&
        suspect_lost(p->sus, d->conn, p->lost[d->conn], d->ring, d->seq)) {
        char shown[256];
        topicname_escape(shown, sizeof(shown), e->topic, strlen(e->topic));
        int rc = to_dead_letter(p, e, REC_DEAD_BROKER_CLOSED);
        log_error(COMP,
                  "client %s: the broker closed the connection %d times in a row right after the "
                  "publish to \"%s\" (%zu bytes), alone in flight: %s",
                  conn_name(p->conns[d->conn]), p->cfg->runtime.max_attempts, shown,
                  (size_t)e->payload_len,
                  rc == 0 ? "dead-lettered (runtime.max_attempts)"
                          : "could not be dead-lettered (out of memory), publishing again");
    }
    inflight_retry(w, d->seq);
}

static void apply_done(pump *p, size_t n, uint64_t now)
{
    uint64_t ok = 0, failed = 0;
    for (size_t i = 0; i < p->n_conns; i++)
        p->lost[i] = 0;
    for (size_t i = 0; i < n; i++) {
        const cq_done *d = &p->done[i];
        if (d->result == CQ_OK)
            continue;
        inflight_entry *e = inflight_at(p->win[d->ring], d->seq);
        /* paho often reports the publishes of a closed connection through onFailure before
         * connectionLost: a failure counts as a loss (a 3.1.1 publish fails no other way; an
         * MQTT 5 refusal by reason code is the broker refusing it too) */
        if (d->conn < p->n_conns && e && e->qos > 0)
            p->lost[d->conn]++;
    }
    for (size_t i = 0; i < n; i++) {
        const cq_done *d = &p->done[i];
        inflight *w = p->win[d->ring];
        inflight_entry *e = inflight_at(w, d->seq);
        if (e && e->qos > 0)
            conn_qos_done(p->conns[d->conn]);
        if (d->result == CQ_OK) {
            if (e && e->qos > 0)
                suspect_acked(p->sus, d->conn);
            inflight_done(w, d->seq);
            ok++;
            continue;
        }
        retry_lost(p, d, e);
        if (d->result == CQ_FAIL) {
            failed++;
            /* a failure on a live connection (a v5 reason code, a timeout): do not hammer */
            p->hold_until[d->ring] = now + HOLD_FAIL_NS;
        }
    }
    if (ok)
        ADD(p, out, ok);
    if (failed) {
        ADD(p, errors, failed);
        if (should_log_reject(p))
            log_warn(COMP, "%llu publish%s failed; publishing again", (unsigned long long)failed,
                     failed == 1 ? "" : "es");
    }
}

static void handle_events(pump *p, uint64_t now)
{
    if (cq_take_events(p->q, p->ev) == 0)
        return;
    uint64_t mask = 0;
    for (size_t i = 0; i < p->n_conns; i++) {
        if (p->ev[i])
            conn_handle_events(p->conns[i], p->ev[i], now);
        if (i < 64 && conn_is_up(p->conns[i]))
            mask |= 1ull << i;
    }
    if (p->st)
        stats_set(&p->st->connected, mask);
}

static void release_rings(pump *p)
{
    for (size_t i = 0; i < p->n_wins; i++) {
        uint64_t pos;
        if (inflight_release(p->win[i], &pos) && i < p->n_rings)
            ring_release_to(p->rings[i], pos);
    }
    uint64_t spooled = sfwd_spooled(p->sf);
    if (p->st && spooled != p->spooled_shown)
        stats_set(&p->st->extra[STATS_RL_SPOOL_NOW], spooled);
    p->spooled_shown = spooled;
}

static int all_drained(pump *p)
{
    for (size_t i = 0; i < p->n_rings; i++) {
        if (!inflight_is_empty(p->win[i]))
            return 0;
        if (!p->broken[i] && !ring_is_empty(p->rings[i]))
            return 0;
    }
    return 1;
}

static void check_ready(pump *p)
{
    if (p->ready)
        return;
    size_t up = 0;
    for (size_t i = 0; i < p->n_conns; i++) {
        if (!conn_first_attempt_done(p->conns[i]))
            return;
        up += conn_is_up(p->conns[i]) != 0;
    }
    p->ready = 1;
    int rc = stage_ready();
    if (rc)
        log_warn(COMP, "stage_ready: %s", strerror(-rc));
    log_info(COMP, "ready: %zu ring%s, %zu of %zu target%s connected", p->n_rings,
             p->n_rings == 1 ? "" : "s", up, p->n_conns, p->n_conns == 1 ? "" : "s");
}

/* How the pump waits after a turn without progress: nap (progress came fast enough for a nap
 * to gather several records: ring_pace_nap), held (progress came slower: park on every ring,
 * records in flight or not, so the next record wakes it at once) or idle (no progress since
 * the last wait: park on the rings with empty windows and the completion queue). */
enum pump_wait { PUMP_WAIT_IDLE, PUMP_WAIT_NAP, PUMP_WAIT_HELD };
/* A held park's longest wait: completions and acknowledgements gathered meanwhile are taken
 * when it ends (the I/O thread reads acknowledgements after a pause of four naps too) */
#define PUMP_HELD_MS (4 * RING_NAP_US / 1000)

/* The held park's rings: every ring that may be read, its window holding records in flight
 * or not (they are not released by the held waits). Returns how many are in p->waitset. */
static size_t held_set(pump *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n_rings && n < FUTEX_WAITV_MAX_WORDS; i++)
        if (!p->broken[i] && !p->blocked[i] && !p->hold_until[i] && !inflight_is_full(p->win[i]) &&
            cq_free_slots(p->q) > 0)
            p->waitset[n++] = p->rings[i]; /* a full window: its data would end the wait */
    return n;
}

/* A park through the io_uring connection on this thread: the futex words of every ring (and
 * the completion queue's word at cq_val) and the connection's completions at once. Every park
 * arms these same words, with the completion queue's word whether it is watched or not: a
 * futex wait stays armed past its timeout (mqttc_arm_futexv: -EALREADY) and serves the next
 * park, so a park arming fewer words would leave a later idle park on a wait that does not
 * watch the queue. held: p->waitset[0..n) keeps its records in flight (ring_park_begin_held),
 * else they are released first (ring_park_begin). */
static void park_one_thread(pump *p, size_t n, bool held, uint32_t cq_val, int timeout)
{
    const uint32_t *words[FUTEX_WAITV_MAX_WORDS];
    uint32_t vals[FUTEX_WAITV_MAX_WORDS];
    const uint32_t *cqw = cq_word(p->q);
    int rc =
        held ? ring_park_begin_held(p->waitset, n, cqw, cq_val, p->rings, p->n_rings, words, vals)
             : ring_park_begin(p->waitset, n, cqw, cq_val, p->rings, p->n_rings, words, vals);
    if (rc == 0) {
        conn_wait(p->one, words, vals, p->n_rings + 1, timeout);
        ring_park_end(p->waitset, n);
    } else {
        conn_nap(p->one, 0); /* ready at once: the sends leave now all the same */
    }
}

/* The held park with the io_uring connection on this thread: held_set's rings, the
 * completion queue's word at its current value (no one bumps it while cq_prepare_wait was
 * not called, so completions wait for the next turn), at most PUMP_HELD_MS. */
static void wait_one_thread_held(pump *p, int timeout)
{
    size_t n = held_set(p);
    if (timeout > PUMP_HELD_MS)
        timeout = PUMP_HELD_MS;
    /* relaxed: a value to compare; a bump comes with a FUTEX_WAKE that ends the wait */
    park_one_thread(p, n, true, atom_load_relaxed(cq_word(p->q)), timeout);
}

/* wait_idle with the io_uring connection on this thread (p->one): the same nap and parks, the
 * sleep being the io_uring_enter that also submits the turn's sends (conn_nap, conn_wait),
 * and a park watching the rings' futex words (IORING_OP_FUTEX_WAITV, ring_park_begin) and
 * the connection's completions at once. The futex wait covers every ring, not just those of
 * the waitset: an armed wait then serves every later park (ring.h), whatever its waitset. */
static void wait_one_thread(pump *p, size_t n, int timeout, enum pump_wait how)
{
    if (timeout <= 0) {
        conn_nap(p->one, 0); /* no wait: the turn's sends leave now all the same */
        return;
    }
    if (how == PUMP_WAIT_NAP) {
        uint64_t ns;
        if (ring_nap_begin(p->waitset, n, &ns) != 0)
            ns = 0; /* data already: no nap, the sends leave now all the same */
        if (ns > (uint64_t)timeout * 1000000)
            ns = (uint64_t)timeout * 1000000;
        conn_nap(p->one, ns);
        return; /* data, the nap's end or a signal: the next turn looks at everything */
    }
    if (how == PUMP_WAIT_HELD) {
        wait_one_thread_held(p, timeout);
        return;
    }
    /* no conn_park: it concerns I/O threads' paced receives, and there are none here */
    uint32_t seen;
    if (cq_prepare_wait(p->q, &seen) != 0) {
        conn_nap(p->one, 0); /* completions queued: no wait, the sends leave now */
        return;
    }
    park_one_thread(p, n, false, seen, timeout); /* paho connections' threads post to cq */
    cq_end_wait(p->q);
}

/* The held park with I/O threads: ring_wait_held on held_set's rings, no completion-queue
 * word (completions wait for the next turn, at most PUMP_HELD_MS), no conn_park. Per record
 * at a low rate: the worker's FUTEX_WAKE and one wake-up here, against a nap's half-nap delay
 * per record. */
static void wait_held(pump *p, int timeout)
{
    size_t n = held_set(p);
    if (timeout > PUMP_HELD_MS)
        timeout = PUMP_HELD_MS;
    if (n && timeout > 0)
        (void)ring_wait_held(p->waitset, n, timeout); /* every outcome: the next turn */
    else if (timeout > 0)
        (void)ring_wait_paced(NULL, 0, NULL, 0, timeout, 1); /* a plain nap */
}

/* Parks until a ring with an empty window has data, a completion or event arrives, or the
 * next timer. Rings with records in flight are left out (see pump.h); they are looked at
 * again when their completions wake us. how (pump_wait): after progress, a nap
 * (ring_wait_paced, without cq_prepare_wait, so neither the workers nor paho's threads make a
 * FUTEX_WAKE for records and completions that arrive during it; the next turn takes them
 * all) or a held park; after none, the park. */
static void wait_idle(pump *p, uint64_t now, uint64_t deadline, enum pump_wait how)
{
    uint64_t next = deadline;
    for (size_t i = 0; i < p->n_conns; i++) {
        uint64_t t = conn_next_timer(p->conns[i]);
        if (t < next)
            next = t;
    }
    uint64_t t = sfwd_next_timer(p->sf);
    if (t < next)
        next = t;
    if ((t = dlq_next_timer(p->dl)) < next)
        next = t;
    for (size_t i = p->n_rings; i < p->n_wins; i++)
        if (p->hold_until[i] && p->hold_until[i] < next)
            next = p->hold_until[i];
    size_t n = 0;
    for (size_t i = 0; i < p->n_rings; i++) {
        if (p->hold_until[i] && p->hold_until[i] < next)
            next = p->hold_until[i];
        if (!p->broken[i] && !p->blocked[i] && !p->hold_until[i] && inflight_is_empty(p->win[i]) &&
            cq_free_slots(p->q) > 0)
            p->waitset[n++] = p->rings[i];
    }
    int timeout = WAIT_MAX_MS;
    if (next != UINT64_MAX) {
        uint64_t ms = next > now ? (next - now + 999999) / 1000000 : 0;
        if (ms < (uint64_t)timeout)
            timeout = (int)ms;
    }
    if (p->one) {
        wait_one_thread(p, n, timeout, how);
        return;
    }
    if (how == PUMP_WAIT_NAP) {
        if (timeout > 0)
            (void)ring_wait_paced(p->waitset, n, NULL, 0, timeout, 1);
        return; /* data, the nap's end or a signal: the next turn looks at everything */
    }
    if (how == PUMP_WAIT_HELD) {
        wait_held(p, timeout);
        return;
    }
    for (size_t i = 0; i < p->n_conns; i++)
        conn_park(p->conns[i]); /* acknowledgements awaited must wake us at once */
    uint32_t seen;
    if (cq_prepare_wait(p->q, &seen) != 0)
        return;
    if (timeout > 0) {
        int rc = ring_wait_paced(p->waitset, n, cq_word(p->q), seen, timeout, 0);
        (void)rc; /* every outcome (data, wake, timeout, EINTR) leads to the next turn */
    }
    cq_end_wait(p->q);
}

/* Disconnects every connection, waiting a bounded time for paho to finish. */
static void shutdown_conns(pump *p)
{
    size_t pending = 0;
    for (size_t i = 0; i < p->n_conns; i++)
        pending += conn_disconnect(p->conns[i], DISCONNECT_MS) == 0;
    uint64_t end = clock_mono_ns() + DISCONNECT_WAIT_NS;
    size_t n;
    while (pending > 0) {
        uint64_t now = clock_mono_ns();
        /* completions still count (and must be taken, or the wait below would not sleep) */
        while ((n = cq_drain(p->q, p->done, p->done_cap)) > 0)
            apply_done(p, n, now);
        if (now >= end) {
            log_warn(COMP, "%zu connection%s did not finish disconnecting", pending,
                     pending == 1 ? "" : "s");
            break;
        }
        if (cq_take_events(p->q, p->ev) > 0) {
            pending = 0;
            for (size_t i = 0; i < p->n_conns; i++) {
                if (p->ev[i])
                    conn_handle_events(p->conns[i], p->ev[i], now);
                pending += conn_get_state(p->conns[i]) == CONN_CLOSING;
            }
            continue;
        }
        uint32_t seen;
        if (cq_prepare_wait(p->q, &seen) == 0) {
            ring_wait_any(NULL, 0, cq_word(p->q), seen, 50);
            cq_end_wait(p->q);
        }
    }
    /* whatever finished meanwhile still counts (and is released) */
    while ((n = cq_drain(p->q, p->done, p->done_cap)) > 0)
        apply_done(p, n, clock_mono_ns());
    release_rings(p);
    if (p->st)
        stats_set(&p->st->connected, 0);
}

int pump_run(pump *p)
{
    uint64_t now = clock_mono_ns();
    int stopping = 0;
    uint64_t stop_deadline = UINT64_MAX;
    size_t progress_since = 0; /* since the last wait */
    ring_pace pace = {0};

    sfwd_recover(p->sf);
    for (size_t i = 0; i < p->n_conns; i++)
        conn_start(p->conns[i], now);

    for (;;) {
        now = clock_mono_ns();
        if (p->st)
            stats_set(&p->st->heartbeat_ns, now);
        size_t progress = 0;

        tap_port_sync(&p->tap_out, p->seg, TAP_OUT, p->cfg->runtime.instance);
        handle_events(p, now);
        for (size_t i = 0; i < p->n_conns; i++)
            conn_tick(p->conns[i], now);
        size_t n = cq_drain(p->q, p->done, p->done_cap);
        if (n) {
            apply_done(p, n, now);
            progress += n;
        }
        check_ready(p);

        for (size_t t = 0; t < p->n_conns; t++)
            progress += service_drain(p, t, now);
        for (size_t k = 0; k < p->n_rings; k++)
            progress += service_ring(p, (p->rr + k) % p->n_rings, now);
        p->rr++;
        /* one fsync'd batch per target spool and one for the dead letters per turn */
        progress += sfwd_flush(p->sf, now, on_spooled, p);
        progress += dlq_flush(p->dl, now, on_dead_stored, p);
        for (size_t i = 0; i < p->n_conns; i++)
            conn_flush(p->conns[i], progress != 0); /* the turn's publishes leave together */
        release_rings(p);

        if (stage_stop_flag && !stopping) {
            stopping = 1;
            p->stopping = 1;
            stop_deadline = now + (uint64_t)PUMP_STOP_MS * 1000000ull;
            log_info(COMP, "stopping: draining the rings and outstanding publishes");
        }
        if (stopping) {
            if (all_drained(p))
                break;
            if (now >= stop_deadline) {
                log_warn(COMP,
                         "stop: %d ms passed with records not yet published; they stay "
                         "in the rings",
                         PUMP_STOP_MS);
                break;
            }
        }
        if (progress) {
            progress_since += progress;
            continue;
        }
        enum pump_wait how = !progress_since                        ? PUMP_WAIT_IDLE
                             : ring_pace_nap(&pace, progress_since) ? PUMP_WAIT_NAP
                                                                    : PUMP_WAIT_HELD;
        wait_idle(p, now, stop_deadline, how);
        progress_since = 0;
    }

    shutdown_conns(p);
    log_info(COMP, "stopped: in %llu, out %llu, errors %llu, spooled now %llu, dead letters %llu",
             (unsigned long long)(p->st ? stats_get(&p->st->in) : 0),
             (unsigned long long)(p->st ? stats_get(&p->st->out) : 0),
             (unsigned long long)(p->st ? stats_get(&p->st->errors) : 0),
             (unsigned long long)sfwd_spooled(p->sf), (unsigned long long)dlq_stored(p->dl));
    return MF_EXIT_OK;
}
