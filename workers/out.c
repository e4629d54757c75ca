#include "out.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "log.h"

#define COMP "worker"

void out_init(out *o, ring *r)
{
    memset(o, 0, sizeof(*o));
    o->r = r;
}

void out_flush(out *o)
{
    ring_flush(o->r);
}

int out_append(void *arg, const rec_hdr *h, const char *topic, const void *payload, size_t len)
{
    out *o = arg;
    size_t tl = strlen(topic);
    size_t size = rec_size(tl, len);
    void *buf;
    int rc;

    /* checked before reserving: once reserved, a record must be committed (the ring has no
     * cancel), and with these bounds rec_encode cannot fail */
    if (size > ring_max_record(o->r) || tl > UINT32_MAX || len > UINT32_MAX)
        return -EMSGSIZE;
    while ((rc = ring_reserve(o->r, size, &buf)) == -EAGAIN) {
        o->waits++;
        /* flushes first; a timeout or a signal only makes us look again: the record must go
         * out, even while stopping (the relay stops after the workers and drains us) */
        ring_wait_space(o->r, size, 200);
    }
    if (rc < 0)
        return rc;
    long n = rec_encode(buf, size, h, topic, tl, payload, len);
    assert(n == (long)size);
    ring_commit(o->r, size);
    (void)n;
    return 0;
}
