/* spool_int.h: what spool.c (open, recovery, reader, checkpoint) and spool_append.c (the
 * io_uring write path) share. On-disk layouts are native byte order: a spool is read back
 * only on the host that wrote it. */
#ifndef MF_SPOOL_INT_H
#define MF_SPOOL_INT_H

#include <liburing.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "spool.h"

#define SPOOL_SEG_MAGIC   0x31474553504d464dull /* "MFMPSEG1" */
#define SPOOL_REC_MAGIC   0x52465053u           /* "SPFR" */
#define SPOOL_VERSION     1u
#define SPOOL_URING_DEPTH 8u /* a batch needs at most write + fdatasync + directory fsync */

typedef struct spool_seghdr {
    uint64_t magic;
    uint32_t version;
    uint32_t hdr_bytes;
    uint64_t first_seq; /* equals the number in the file name */
    uint32_t crc;       /* CRC32C of the bytes before it */
    uint32_t reserved;
} spool_seghdr;
_Static_assert(sizeof(spool_seghdr) == SPOOL_SEGHDR_BYTES, "segment header layout");

typedef struct spool_frame {
    uint32_t magic;
    uint32_t len; /* data bytes after the frame */
    uint64_t seq;
    uint64_t time_ns; /* wall clock at append */
    uint32_t crc;     /* CRC32C of len, seq, time_ns, then the data */
    uint32_t reserved;
} spool_frame;
_Static_assert(sizeof(spool_frame) == SPOOL_FRAME_BYTES, "record frame layout");
_Static_assert(offsetof(spool_frame, len) == 4 && offsetof(spool_frame, crc) == 24,
               "the frame CRC covers bytes 4..24");

typedef struct spool_ckpt {
    uint64_t magic;
    uint64_t acked_seq; /* first seq the reader has not acknowledged */
    uint32_t crc;       /* CRC32C of the bytes before it */
    uint32_t reserved;
} spool_ckpt;

typedef struct spool_seg {
    uint64_t first_seq, end_seq; /* records [first_seq, end_seq) */
    uint64_t size;               /* durable bytes */
} spool_seg;

typedef struct spool_rdbuf {
    uint8_t *b;
    size_t cap, len;
    uint64_t off; /* file offset of b[0] */
    int valid;
} spool_rdbuf;

struct spool {
    char *dir, *name;
    int dirfd;
    int lockfd; /* "lock" in dir, flock'ed while open */
    spool_opts o;
    struct io_uring ring;
    int ring_ok;
    spool_seg *segs; /* ordered by first_seq; the last one may be the writer's */
    size_t n_segs, cap_segs;
    /* writer */
    int wfd;         /* segment being appended to (always segs[n_segs-1]), -1 = none yet */
    uint64_t wfirst; /* its first seq */
    uint64_t next_seq;
    uint8_t *stage; /* the batch as it goes to disk */
    size_t stage_cap;
    int broken; /* a failed batch could not be cut off: appends refused */
    /* reader */
    size_t r_seg;
    uint64_t r_off, r_seq; /* position in segs[r_seg], seq of the next record to show */
    int rfd;
    uint64_t rfd_first;
    spool_rdbuf rb;
    int shown;
    uint64_t shown_next, shown_seq;
    uint64_t acked_seq; /* value in the checkpoint file */
    spool_stats st;
};

uint32_t spool_crc32c(uint32_t crc, const void *data, size_t n);
uint32_t spool_frame_crc(const spool_frame *f, const void *data);
void spool_seg_name(char *buf, size_t cap, uint64_t first_seq);
/* Makes room for one more entry in s->segs, so that adding a segment after its file exists
 * cannot fail. 0 or -ENOMEM (s->segs unchanged). */
int spool_segs_reserve(spool *s);

#endif
