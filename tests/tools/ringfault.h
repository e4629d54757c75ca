/* ringfault: a damaged ring region (issue 8 item 4) for the stage tests (router, worker,
 * relay), which must quarantine and dead-letter it. Header-only; include cmocka.h first. */
#ifndef MF_TESTS_RINGFAULT_H
#define MF_TESTS_RINGFAULT_H

#include <string.h>

#include "ring.h"
#include "ring_layout.h"

/* Commits a 64-byte record of bytes `fill` to r, then makes its ring header claim an
 * impossible length. The caller flushes. */
static inline void plant_corrupt_header(ring *r, unsigned char fill)
{
    void *buf;
    assert_int_equal(ring_reserve(r, 64, &buf), 0);
    memset(buf, fill, 64);
    ring_commit(r, 64);
    ((ring_rec_hdr *)buf - 1)->len = 0x7fffffff;
}

#endif
