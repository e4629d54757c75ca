/* benchlib: what the C benchmarks of the pipeline's stages share (header-only): appending
 * message records to a ring as the ingress does. Processes are spawned with the fixture
 * library (tests/tools/testlib.h). */
#ifndef MF_BENCHLIB_H
#define MF_BENCHLIB_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "rec.h"
#include "ring.h"

/* Appends one REC_MSG record (source client 0, sequence seq) to in, waiting for space as a
 * producer does. */
static inline void bench_put_msg(ring *in, uint64_t seq, const char *topic, size_t topic_len,
                                 const void *payload, size_t len)
{
    rec_hdr h = {.seq = seq, .client = 0, .rule = REC_NONE, .step = REC_NONE, .kind = REC_MSG};
    size_t sz = rec_size(topic_len, len);
    void *buf;
    while (ring_reserve(in, sz, &buf) == -EAGAIN)
        ring_wait_space(in, sz, 100);
    rec_encode(buf, sz, &h, topic, topic_len, payload, len);
    ring_commit(in, sz);
}

#endif
