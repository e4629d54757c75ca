/* out: the worker's output ring (worker w -> relay), as a ctx_append_fn.
 *
 * Appends each record (REC_PUBLISH, REC_DEAD) straight to the ring (reserve, encode, commit). A
 * full ring is backpressure: the worker flushes and waits for the relay to make room, however long
 * that takes (the records it is working on are not released meanwhile, so nothing is lost if it is
 * killed while waiting). Records become visible to the relay at out_flush, which the run loop
 * calls before it releases the input records they came from (at-least-once, DESIGN §2).
 * One thread; the ring must be attached as producer and outlive the out.
 */
#ifndef MF_WORKERS_OUT_H
#define MF_WORKERS_OUT_H

#include "rec.h"
#include "ring.h"

typedef struct out {
    ring *r;
    unsigned long long waits; /* times a full ring made the worker wait */
} out;

void out_init(out *o, ring *r);
/* ctx_append_fn with arg = out *. 0; -EMSGSIZE when the record exceeds the ring's
 * max_record. */
int out_append(void *arg, const rec_hdr *h, const char *topic, const void *payload, size_t len);
/* Makes every committed record visible to the relay. */
void out_flush(out *o);

#endif
