/* deadrec: the worker's REC_DEAD records; see deadrec.h for the contract. */
#include "deadrec.h"

#include <string.h>

#include "log.h"

#define COMP "worker"

int deadrec_message(const ctx_env *env, const rec_view *v, uint16_t aux)
{
    rec_hdr h = v->h;
    h.kind = REC_DEAD;
    h.aux = aux;
    h.step = REC_NONE;
    h.src_client = v->h.client;
    int rc = env->append(env->append_arg, &h, v->topic, v->payload, v->h.payload_len);
    if (rc < 0)
        log_warn(COMP, "dead message on topic \"%s\" (%u bytes) not handed to the relay: %s",
                 v->topic, v->h.payload_len, strerror(-rc));
    return rc;
}

/* A REC_DEAD record about bytes that are no message: no rule, client or step; seq (the
 * record's or the region's length `size`, rec.h says per reason), the first bytes as the
 * payload. */
static int append_raw(const ctx_env *env, unsigned reason, unsigned detail, const char *topic,
                      uint64_t size, uint64_t seq, const void *first, size_t len)
{
    size_t keep = len < DEADREC_KEEP ? len : DEADREC_KEEP;
    if (keep > env->c->runtime.max_payload)
        keep = env->c->runtime.max_payload;
    rec_hdr h;
    memset(&h, 0, sizeof(h));
    h.kind = REC_DEAD;
    h.aux = REC_DEAD_AUX(reason, detail);
    h.seq = seq;
    h.rule = REC_NONE;
    h.step = REC_NONE;
    h.client = REC_NONE;
    h.src_client = REC_NONE;
    int rc = env->append(env->append_arg, &h, topic, first, keep);
    if (rc < 0)
        log_warn(COMP, "dead letter of %llu unreadable bytes (%s) not handed to the relay: %s",
                 (unsigned long long)size, topic, strerror(-rc));
    return rc;
}

int deadrec_region(const ctx_env *env, uint64_t bytes, const void *first, size_t len)
{
    return append_raw(env, REC_DEAD_CORRUPT_RING, 0, "$mqttflow/corrupt-ring", bytes, bytes, first,
                      len);
}

int deadrec_undecodable(const ctx_env *env, const void *buf, size_t len, enum rec_bad why)
{
    return append_raw(env, REC_DEAD_UNDECODABLE, why, "$mqttflow/undecodable-record", len, len, buf,
                      len);
}

int deadrec_misplaced(const ctx_env *env, const void *buf, size_t len, enum rec_misplaced what,
                      unsigned n)
{
    return append_raw(env, REC_DEAD_MISPLACED, what, "$mqttflow/misplaced-record", len,
                      REC_MISPLACED_SEQ(len, n), buf, len);
}
