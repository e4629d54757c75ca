/* dlq: the relay's side of the dead-letter store; see dlq.h for the contract. */
#include "dlq.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deadletter.h"
#include "grow.h"
#include "log.h"
#include "rec.h"

#define COMP "relay"
/* bytes of an undecodable record kept in its dead letter */
#define DLQ_KEEP 4096

typedef struct item {
    uint16_t ring;
    uint64_t seq;
    const void *rec;
    size_t len;
} item;

struct dlq {
    const cfg *cfg;
    deadletter *store;
    item *q;
    size_t n, cap;
    uint64_t retry_at;
    uint64_t stored;
    int failing; /* the last attempt failed (logged once per episode) */
};

int dlq_create(const cfg *c, dlq **out)
{
    *out = calloc(1, sizeof(**out));
    if (!*out)
        return -ENOMEM;
    (*out)->cfg = c;
    return 0;
}

void dlq_destroy(dlq *q)
{
    if (!q)
        return;
    deadletter_close(q->store);
    free(q->q);
    free(q);
}

int dlq_queue(dlq *q, uint16_t ring, uint64_t seq, const void *rec, size_t len)
{
    item *nq = grow_one(q->q, &q->cap, q->n, sizeof(*nq), 64);
    if (!nq)
        return -ENOMEM;
    q->q = nq;
    q->q[q->n++] = (item){.ring = ring, .seq = seq, .rec = rec, .len = len};
    return 0;
}

const char *dlq_reason(const cfg *c, unsigned aux, char *buf, size_t cap)
{
    unsigned code = REC_DEAD_AUX_REASON(aux), sig = REC_DEAD_AUX_SIGNAL(aux);
    const char *abbrev = sig ? sigabbrev_np((int)sig) : NULL;
    char by[96] = "";
    if (sig)
        snprintf(by, sizeof(by), " by SIG%s (%s)", abbrev ? abbrev : "?", strsignal((int)sig));
    switch (code) {
    case REC_DEAD_CRASHED:
        if (sig)
            snprintf(buf, cap, "killed the worker %d times (runtime.max_attempts)%s",
                     c->runtime.max_attempts, by);
        else
            snprintf(buf, cap,
                     "crashed the worker %d times (runtime.max_attempts; a signal or a "
                     "callback past callback_timeout_ms)",
                     c->runtime.max_attempts);
        break;
    case REC_DEAD_TIMEOUT:
        snprintf(buf, cap,
                 "timed out: a callback ran past callback_timeout_ms (%d ms); the watchdog "
                 "killed the worker %d times (runtime.max_attempts)",
                 c->runtime.callback_timeout_ms, c->runtime.max_attempts);
        break;
    case REC_DEAD_TOO_LARGE:
        snprintf(buf, cap, "oversized: payload above runtime.max_payload (%zu bytes)",
                 c->runtime.max_payload);
        break;
    case REC_DEAD_CALLBACK_ERROR:
        snprintf(buf, cap,
                 "callback error (the callback returned non-zero; on_error: dead_letter)");
        break;
    case REC_DEAD_INVALID_TOPIC:
        snprintf(buf, cap,
                 "invalid topic: a format step made a topic name that brokers refuse (control "
                 "characters, wildcards, bad UTF-8 or empty); the original message is kept");
        break;
    case REC_DEAD_STEP_ERROR:
        snprintf(buf, cap, "step error (a format step failed; on_error: dead_letter)");
        break;
    case REC_DEAD_BROKER_CLOSED:
        snprintf(buf, cap,
                 "refused by the broker: it closed the connection after this publish %d times "
                 "in a row (runtime.max_attempts; e.g. above its max_packet_size, or a topic it "
                 "refuses)",
                 c->runtime.max_attempts);
        break;
    case REC_DEAD_LIB_REFUSED:
        snprintf(buf, cap,
                 "refused by the MQTT client library: it cannot send this publish at all (e.g. "
                 "a packet larger than it can ever queue); the relay does not try it again");
        break;
    default:
        snprintf(buf, cap, "unknown reason %u%s", code, by);
        break;
    }
    return buf;
}

const char *dlq_callback(const cfg *c, unsigned rule, unsigned step)
{
    if (rule >= c->n_rules)
        return NULL;
    const cfg_rule *r = &c->rules[rule];
    if (r->callback >= 0 && (size_t)r->callback < c->n_callbacks)
        return c->callbacks[r->callback].name;
    if (r->chain < 0 || (size_t)r->chain >= c->n_chains)
        return NULL;
    const cfg_chain *ch = &c->chains[r->chain];
    if (step < ch->n_steps && ch->steps[step].callback >= 0)
        return c->callbacks[ch->steps[step].callback].name;
    /* the step is not known: the chain's first callback (the one a crash is most likely in
     * cannot be told from here) */
    for (size_t i = 0; i < ch->n_steps; i++)
        if (ch->steps[i].callback >= 0 && (size_t)ch->steps[i].callback < c->n_callbacks)
            return c->callbacks[ch->steps[i].callback].name;
    return NULL;
}

int dlq_dead_of_publish(const void *rec, size_t len, unsigned reason, void **out, size_t *out_len)
{
    rec_view v;
    *out = NULL;
    if (rec_decode(rec, len, &v) != 0)
        return -EINVAL;
    void *buf = malloc(len);
    if (!buf)
        return -ENOMEM;
    rec_hdr h = v.h;
    h.kind = REC_DEAD;
    h.aux = REC_DEAD_AUX(reason, 0);
    long n = rec_encode(buf, len, &h, v.topic, v.h.topic_len, v.payload, v.h.payload_len);
    if (n < 0) {
        free(buf);
        return -EINVAL;
    }
    *out = buf;
    *out_len = (size_t)n;
    return 0;
}

/* A REC_DEAD record (found by the relay) on topic about len bytes of a worker's output ring:
 * reason and detail in aux, seq, the first of the bytes (at most DLQ_KEEP and
 * runtime.max_payload) as the payload. 0 or -ENOMEM. */
static int dead_of_raw(const cfg *c, const char *topic, unsigned reason, unsigned detail,
                       uint64_t seq, const void *buf, size_t len, void **out, size_t *out_len)
{
    size_t keep = len < DLQ_KEEP ? len : DLQ_KEEP;
    if (keep > c->runtime.max_payload)
        keep = c->runtime.max_payload;
    size_t tlen = strlen(topic), need = rec_size(tlen, keep);
    *out = malloc(need);
    if (!*out)
        return -ENOMEM;
    rec_hdr h;
    memset(&h, 0, sizeof(h));
    h.kind = REC_DEAD;
    h.aux = REC_DEAD_AUX(reason, detail | REC_DEAD_FOUND_BY_RELAY);
    h.seq = seq;
    h.client = REC_NONE;
    h.rule = REC_NONE;
    h.step = REC_NONE;
    h.src_client = REC_NONE;
    *out_len = (size_t)rec_encode(*out, need, &h, topic, tlen, buf, keep);
    return 0;
}

int dlq_dead_of_bytes(const cfg *c, const void *buf, size_t len, void **out, size_t *out_len)
{
    rec_view v;
    unsigned why = rec_check(buf, len, &v);
    return dead_of_raw(c, "$mqttflow/undecodable-record", REC_DEAD_UNDECODABLE, why, len, buf, len,
                       out, out_len);
}

int dlq_dead_of_misplaced(const cfg *c, const void *buf, size_t len, enum rec_misplaced what,
                          unsigned n, void **out, size_t *out_len)
{
    return dead_of_raw(c, "$mqttflow/misplaced-record", REC_DEAD_MISPLACED, what,
                       REC_MISPLACED_SEQ(len, n), buf, len, out, out_len);
}

/* The reasons that describe bytes rather than a message (seq holds their size). NULL for
 * another reason. */
static const char *raw_reason(const rec_view *v, uint16_t ring, char *buf, size_t cap)
{
    unsigned detail = REC_DEAD_AUX_SIGNAL(v->h.aux);
    switch (REC_DEAD_AUX_REASON(v->h.aux)) {
    case REC_DEAD_CORRUPT_RING:
        snprintf(buf, cap,
                 "corrupt ring: %llu bytes of the worker's input ring could not be read as "
                 "records and were skipped (the payload holds the first of them)",
                 (unsigned long long)v->h.seq);
        return buf;
    case REC_DEAD_UNDECODABLE:
        snprintf(buf, cap,
                 "undecodable record: %llu bytes of worker %u's %s ring: %s (the payload holds "
                 "the first of them)",
                 (unsigned long long)v->h.seq, (unsigned)ring,
                 detail & REC_DEAD_FOUND_BY_RELAY ? "output" : "input",
                 rec_bad_text(detail & ~REC_DEAD_FOUND_BY_RELAY));
        return buf;
    case REC_DEAD_MISPLACED: {
        unsigned n = REC_MISPLACED_WHAT(v->h.seq);
        unsigned long long len = (unsigned long long)REC_MISPLACED_LEN(v->h.seq);
        const char *side = detail & REC_DEAD_FOUND_BY_RELAY ? "output" : "input";
        switch (detail & ~REC_DEAD_FOUND_BY_RELAY) {
        case REC_MISPLACED_KIND:
            snprintf(buf, cap, "record of kind %u in worker %u's %s ring: %llu bytes", n,
                     (unsigned)ring, side, len);
            break;
        case REC_MISPLACED_RULE:
            snprintf(buf, cap, "unknown rule %u: a record of %llu bytes in worker %u's %s ring", n,
                     len, (unsigned)ring, side);
            break;
        default:
            snprintf(buf, cap,
                     "unknown target client %u: a record of %llu bytes in worker %u's %s ring", n,
                     len, (unsigned)ring, side);
            break;
        }
        return buf;
    }
    default:
        return NULL;
    }
}

static char *line_of(dlq *q, const item *it)
{
    const cfg *c = q->cfg;
    rec_view v;
    char reason[256];
    if (rec_decode(it->rec, it->len, &v) != 0)
        return NULL; /* checked by the pump before queueing */
    const char *raw = raw_reason(&v, it->ring, reason, sizeof(reason));
    deadletter_entry e = {
        .instance = c->runtime.instance,
        .rule = v.h.rule < c->n_rules ? c->rules[v.h.rule].name : NULL,
        .callback = dlq_callback(c, v.h.rule, v.h.step),
        .reason = raw ? raw : dlq_reason(c, v.h.aux, reason, sizeof(reason)),
        .source_client =
            v.h.src_client < c->n_clients ? c->clients[v.h.src_client].client_id : NULL,
        .topic = v.topic,
        .qos = v.h.qos,
        .payload = v.payload,
        .payload_len = v.h.payload_len,
    };
    return deadletter_json(&e);
}

/* What to publish of a stored dead letter (dlq_stored_fn): a REC_PUBLISH record of line on
 * runtime.dead_letter_topic, or NULL (no topic set, no client to publish it on, out of
 * memory: the line is in the store either way). */
static void *topic_record(dlq *q, const item *it, const char *line, size_t *len)
{
    const cfg_runtime *rt = &q->cfg->runtime;
    rec_view v;
    if (!rt->dead_letter_topic || rec_decode(it->rec, it->len, &v) != 0)
        return NULL;
    int target = rt->dead_letter_client >= 0 ? rt->dead_letter_client : (int)v.h.src_client;
    if (target < 0 || (size_t)target >= q->cfg->n_clients) {
        log_warn(COMP, "dead letter of rule %u: no client to publish it on", v.h.rule);
        return NULL;
    }
    size_t tlen = strlen(rt->dead_letter_topic), plen = strlen(line);
    size_t need = rec_size(tlen, plen);
    void *buf = malloc(need);
    if (!buf) {
        log_error(COMP, "out of memory: dead letter not published (it is in the store)");
        return NULL;
    }
    rec_hdr h = v.h;
    h.kind = REC_PUBLISH;
    h.client = (uint16_t)target;
    h.qos = 1;
    h.retain = 0;
    h.aux = 0;
    long n = rec_encode(buf, need, &h, rt->dead_letter_topic, tlen, line, plen);
    if (n < 0) {
        free(buf);
        return NULL;
    }
    *len = (size_t)n;
    return buf;
}

static void failed(dlq *q, uint64_t now, const char *what, int rc)
{
    if (!q->failing)
        log_error(COMP,
                  "dead-letter store %s: %s: %s; %zu dead letters wait in the rings, trying "
                  "again",
                  q->cfg->runtime.dead_letter_dir, what, strerror(-rc), q->n);
    q->failing = 1;
    q->retry_at = now + DLQ_RETRY_MS * 1000000ull;
}

size_t dlq_flush(dlq *q, uint64_t now, dlq_stored_fn fn, void *arg)
{
    if (!q->n || (q->retry_at && now < q->retry_at))
        return 0;
    q->retry_at = 0;
    int rc;
    if (!q->store && (rc = deadletter_open(q->cfg->runtime.dead_letter_dir, &q->store)) != 0) {
        q->store = NULL;
        failed(q, now, "open", rc);
        return 0;
    }
    char **lines = calloc(q->n, sizeof(*lines));
    if (!lines)
        return 0;
    for (size_t i = 0; i < q->n; i++) {
        if (!(lines[i] = line_of(q, &q->q[i]))) {
            failed(q, now, "JSON", -ENOMEM);
            goto undo;
        }
        if ((rc = deadletter_append(q->store, lines[i])) != 0) {
            failed(q, now, "write", rc);
            goto undo;
        }
    }
    if ((rc = deadletter_sync(q->store)) != 0) {
        failed(q, now, "fdatasync", rc);
        goto undo;
    }
    if (q->failing)
        log_info(COMP, "dead-letter store %s works again", deadletter_path(q->store));
    q->failing = 0;
    size_t n = q->n;
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        void *pub = topic_record(q, &q->q[i], lines[i], &len);
        free(lines[i]);
        fn(arg, q->q[i].ring, q->q[i].seq, pub, len);
    }
    free(lines);
    q->n = 0;
    q->stored += n;
    return n;
undo:
    /* lines written before the failure are written again with the retry (at-least-once) */
    for (size_t i = 0; i < q->n; i++)
        free(lines[i]);
    free(lines);
    return 0;
}

size_t dlq_queued(const dlq *q)
{
    return q->n;
}

uint64_t dlq_stored(const dlq *q)
{
    return q->stored;
}

uint64_t dlq_next_timer(const dlq *q)
{
    return q->n && q->retry_at ? q->retry_at : UINT64_MAX;
}
