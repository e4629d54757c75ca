/* ring_layout: the bytes of a ring segment (STYLE 5 exception to opacity), shared by every
 * process that maps a ring: ring.c, the supervisor's observers and the tests/benchmarks.
 *
 * A ring segment is a shm_hdr (kind SHM_KIND_RING, version RING_LAYOUT_VERSION), a control
 * block (ring_ctl) and, at RING_DATA_OFFSET, the power-of-two data area. Fields written by
 * different sides live on different 128-byte blocks: x86 prefetches cache lines in pairs, so
 * 64-byte separation alone still lets the producer's head and the consumer's tail bounce.
 *
 *   block  writer       fields                               read by
 *   0      creator      shm_hdr                              everybody (attach)
 *   1      creator      geometry (read-only after creation),  everybody
 *                       tag (ring_set_tag, before the stages start)
 *   2      producer     head, records_in, drops              consumer (head), observers
 *   3      consumer     tail, records_out                    producer (tail), observers
 *   4      producer     prod_waiting, producer_waits         consumer (before waking)
 *          consumer     prod_wake (futex word the producer sleeps on)
 *   5      consumer     cons_waiting, consumer_waits         producer (before waking)
 *          producer     cons_wake (futex word the consumer sleeps on)
 *   6      consumer     attempt mark (att_pos, att_state)    the next consumer after a crash
 *
 * Records in the data area: an 8-byte ring_rec_hdr, then len bytes, padded to RING_ALIGN.
 * A record never crosses the end of the area; the bytes from its would-be start to the end
 * hold a pad header (kind RING_REC_PAD, len = bytes to the end, header included) instead.
 * Since every offset and the capacity are multiples of 8, a pad header always fits.
 */
#ifndef MF_RING_LAYOUT_H
#define MF_RING_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "shm.h"

#define RING_LAYOUT_VERSION 1u
#define RING_DATA_OFFSET    4096u /* page-aligned data area */

enum {
    RING_REC_DATA = 0x52454331u, /* "REC1": a record of len payload bytes */
    RING_REC_PAD = 0x50414431u,  /* "PAD1": skip len bytes (to the end of the area) */
};

typedef struct ring_rec_hdr {
    uint32_t len;  /* DATA: payload bytes (1..max_record); PAD: bytes to the end */
    uint32_t kind; /* RING_REC_DATA or RING_REC_PAD; anything else is corruption */
} ring_rec_hdr;
_Static_assert(sizeof(ring_rec_hdr) == 8, "record header is one aligned word");

typedef struct ring_ctl {
    shm_hdr hdr;
    uint64_t hdr_pad[8];

    /* geometry: written once by ring_create, checked by ring_attach */
    uint64_t capacity;   /* data bytes, a power of two >= RING_MIN_SIZE */
    uint64_t max_record; /* largest payload, <= capacity / 4 */
    uint64_t data_offset;
    uint64_t tag; /* ring_set_tag: the creator's meaning of the records (0: none), kept when a
                     ring is adopted */
    uint64_t geo_pad[12];

    /* producer block */
    uint64_t head;       /* P1: published end of complete records */
    uint64_t records_in; /* records published */
    uint64_t drops;      /* ring_count_drop */
    uint64_t prod_pad[13];

    /* consumer block */
    uint64_t tail;        /* C2: released position; the producer may reuse bytes before it */
    uint64_t records_out; /* records released */
    uint64_t cons_pad[14];

    /* producer parking */
    uint32_t prod_waiting; /* 1 while the producer is parked (or about to) on prod_wake */
    uint32_t prod_wake;    /* futex word; the consumer bumps it to wake the producer */
    uint64_t producer_waits;
    uint64_t prodw_pad[14];

    /* consumer parking */
    uint32_t cons_waiting; /* 1 while the consumer is parked (or about to) on cons_wake */
    uint32_t cons_wake;    /* futex word; the producer bumps it to wake the consumer */
    uint64_t consumer_waits;
    uint64_t consw_pad[14];

    /* attempt mark (ring_begin/ring_end): position of the record being run and its state,
     * (run count << 1) | finished. Two words written in an order that a kill between them
     * cannot misread (see ring_begin). */
    uint64_t att_pos;
    uint32_t att_state;
    uint32_t att_pad0;
    uint64_t att_pad[14];
} ring_ctl;

_Static_assert(offsetof(ring_ctl, capacity) == 128, "geometry block");
_Static_assert(offsetof(ring_ctl, head) == 256, "producer block");
_Static_assert(offsetof(ring_ctl, tail) == 384, "consumer block");
_Static_assert(offsetof(ring_ctl, prod_waiting) == 512, "producer parking block");
_Static_assert(offsetof(ring_ctl, cons_waiting) == 640, "consumer parking block");
_Static_assert(offsetof(ring_ctl, att_pos) == 768, "attempt block");
_Static_assert(sizeof(ring_ctl) == 896, "ring_ctl size");
_Static_assert(sizeof(ring_ctl) <= RING_DATA_OFFSET, "control block fits before the data");
_Static_assert(offsetof(ring_ctl, prod_wake) % 4 == 0 && offsetof(ring_ctl, cons_wake) % 4 == 0,
               "futex words are 32-bit aligned");

#endif
