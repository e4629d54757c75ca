#include "intake.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "rec.h"

#define LOG_COMP "ingress"
/* wait slice on a full ring: bounded so a consumer that never wakes us still lets the loop
 * notice progress, not for the stop flag (a blocked write is finished, never abandoned) */
#define WAIT_SLICE_MS 200

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
    *out = in;
    return 0;
}

void intake_destroy(intake *in)
{
    free(in);
}

uint64_t intake_next_seq(const intake *in)
{
    return in->seq;
}

int intake_message(intake *in, const char *topic, size_t topic_len, const void *payload,
                   size_t payload_len, int qos, int retain)
{
    size_t len = rec_size(topic_len, payload_len);
    if (payload_len > in->max_payload || len > ring_max_record(in->r)) {
        stats_add(&in->slot->errors, 1);
        stats_add(&in->slot->dead, 1);
        /* one line per second at most: a publisher flooding oversized messages must not turn
         * into a log flood; the counters keep the exact number */
        uint64_t now = clock_mono_ns();
        if (now - in->last_refusal_log_ns >= 1000000000ull || in->last_refusal_log_ns == 0) {
            log_warn(LOG_COMP,
                     "message on \"%.*s\" of %zu bytes refused: above max_payload %zu or the "
                     "ring's max record %zu (record %zu bytes); %llu more refused since the "
                     "last such line",
                     (int)(topic_len > 200 ? 200 : topic_len), topic, payload_len, in->max_payload,
                     ring_max_record(in->r), len, (unsigned long long)in->refusals_unlogged);
            in->last_refusal_log_ns = now;
            in->refusals_unlogged = 0;
        } else {
            in->refusals_unlogged++;
        }
        return -EMSGSIZE;
    }

    void *buf;
    int rc;
    while ((rc = ring_reserve(in->r, len, &buf)) == -EAGAIN) {
        if (in->overflow == CFG_OVERFLOW_DROP && qos == 0) {
            ring_count_drop(in->r);
            stats_add(&in->slot->dropped, 1);
            return INTAKE_DROPPED;
        }
        /* -ETIMEDOUT / -EINTR: the record is still owed to the ring (a QoS 1 message is
         * acknowledged when we return), so keep waiting */
        (void)ring_wait_space(in->r, len, WAIT_SLICE_MS);
    }
    if (rc < 0) { /* -EMSGSIZE was checked above; anything else is our bug */
        stats_add(&in->slot->errors, 1);
        log_error(LOG_COMP, "ring_reserve(%zu) on \"%.*s\": %s", len, (int)topic_len, topic,
                  strerror(-rc));
        return rc;
    }
    rec_hdr h;
    memset(&h, 0, sizeof(h));
    h.seq = in->seq;
    h.received_ns = clock_wall_ns();
    h.client = in->client;
    h.rule = REC_NONE;
    h.step = REC_NONE;
    h.kind = REC_MSG;
    h.qos = (uint8_t)(qos < 0 ? 0 : qos > 2 ? 2 : qos);
    h.retain = retain ? 1 : 0;
    h.src_client = in->client;
    long n = rec_encode(buf, len, &h, topic, topic_len, payload, payload_len);
    if (n < 0) /* cannot happen: len is rec_size of these lengths */
        abort();
    ring_commit(in->r, (size_t)n);
    /* publish before paho acknowledges the message (see intake.h) */
    ring_flush(in->r);
    in->seq++;
    stats_add(&in->slot->in, 1);
    return INTAKE_WRITTEN;
}
