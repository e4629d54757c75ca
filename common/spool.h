/* spool: an append-only, ordered, durable queue of opaque records in one directory on disk
 * (DESIGN §5, issue 4 "Store-and-forward"). The relay keeps one spool per target client
 * (runtime.spool_dir/<client_id>/) while that target is down; the ingress keeps one
 * (runtime.spool_dir/ingress<i>.<instance>/) for messages that arrive while its ring is full.
 *
 * Threads: one spool is used by one process; every call on it must be serialised by the
 * caller (one thread, or the caller's own mutex). There is one writer position and one reader
 * position. Two processes must never open the same directory (an flock on the file "lock"
 * in it enforces it: a second open waits up to 1 s for the first owner to finish exiting,
 * then fails with -EBUSY).
 *
 * On disk: segment files "<first seq, 16 hex digits>.seg" (mode 0600; directory 0700) of at
 * about segment_bytes each (a batch goes whole into one segment: a new one is started when the
 * current one reached segment_bytes, so a file ends past it by less than one batch),
 * a 32-byte segment header (magic, version, first seq), then records, each framed as
 *     magic u32 | len u32 | seq u64 | time_ns u64 | crc32c u32 | reserved u32 | len bytes
 * where the CRC32C covers len, seq, time_ns and the data. seq is the spool's own sequence
 * number (+1 per record, never reused, continues across reopen); time_ns is the wall clock at
 * append (TTL is measured from it). A file "checkpoint" (written to checkpoint.tmp, fsync'd,
 * renamed, directory fsync'd) holds the first seq not yet acknowledged by the reader.
 *
 * Durability: spool_append_batch writes the whole batch with io_uring (one write SQE per
 * segment it touches, one io_uring_submit per batch) followed by IOSQE_IO_LINK'ed fdatasync
 * SQEs (and a directory fsync when a segment file was created), and returns 0 only after
 * every one of those completed successfully: a record counts as stored exactly then. A
 * failed batch is not stored (the caller still owns its records and must keep them); the
 * spool cuts the file back to where the batch began, so a later successful batch never
 * leaves a half-batch in the middle. When that cut itself fails the spool is broken: every
 * further append returns -EIO and the caller should close and reopen it (recovery then keeps
 * whatever of that batch is intact on disk: at-least-once, a record may then appear twice).
 *
 * Overflow policy (runtime.spool_max_bytes): REFUSE. A batch that would take the spool's
 * bytes on disk (all live segment files) above max_bytes is refused whole with -ENOSPC and
 * nothing of it is written; the caller keeps the records where they are (its ring stays
 * full: backpressure) and retries after the reader acknowledged. Nothing stored is ever
 * dropped for space; stats.refused counts refused records. Space comes back only when a whole
 * segment is acknowledged (its file is deleted), so segment_bytes defaults to max_bytes / 8
 * (between 64 KiB and 64 MiB).
 *
 * TTL: with ttl_ms > 0, spool_peek skips records older than ttl_ms (by time_ns) and counts
 * them in stats.expired; they are acknowledged like consumed ones.
 *
 * Reader: spool_peek shows the oldest unconsumed record, spool_consume moves past it (in
 * memory), spool_ack persists the reader position in the checkpoint and deletes segment
 * files whose records are all consumed. After a crash the reader resumes at the last ack:
 * records consumed but not acknowledged are read again (duplicates bounded by what was
 * consumed between two acks), nothing acknowledged-as-stored by append is lost.
 *
 * Recovery (spool_open): every segment is read and every frame and CRC checked. A segment
 * whose records stop being valid is cut at its last good record (ftruncate + fsync; a torn
 * tail after a crash mid-write) and the cut bytes are copied to quarantine/ first; an empty
 * file, a file shorter than its header, or one with a bad header is moved (rename) into the
 * quarantine/ subfolder. Each case is logged (component "spool") and counted
 * (stats.quarantined files, stats.cut_bytes); none of them makes the open fail. A corrupt
 * checkpoint is quarantined too and reading restarts at the oldest record (duplicates, no
 * loss).
 */
#ifndef MF_SPOOL_H
#define MF_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

typedef struct spool spool;

#define SPOOL_FRAME_BYTES  32u /* per-record overhead on disk */
#define SPOOL_SEGHDR_BYTES 32u /* per-segment header */
#define SPOOL_MAX_RECORD   (64u << 20)

typedef struct spool_opts {
    uint64_t max_bytes;     /* cap on live segment bytes, 0 = none (overflow policy above) */
    uint64_t segment_bytes; /* 0 = default (max_bytes / 8, clamped to 64 KiB .. 64 MiB) */
    size_t max_record;      /* largest record accepted, 0 = SPOOL_MAX_RECORD */
    uint64_t ttl_ms;        /* 0 = records never expire */
    const char *name;       /* for log lines, e.g. "relay client2"; copied; NULL = the dir */
} spool_opts;

typedef struct spool_stats {
    uint64_t records;     /* stored, not yet consumed (after the reader position) */
    uint64_t bytes;       /* live segment bytes on disk (what the cap counts) */
    uint64_t segments;    /* live segment files */
    uint64_t appended;    /* records made durable by this open */
    uint64_t batches;     /* successful append batches */
    uint64_t fsyncs;      /* fsync/fdatasync completions seen with success */
    uint64_t consumed;    /* records passed by spool_consume */
    uint64_t expired;     /* records skipped for TTL */
    uint64_t refused;     /* records refused with -ENOSPC (cap) */
    uint64_t recovered;   /* valid records found by spool_open */
    uint64_t quarantined; /* files moved to quarantine/ (open) */
    uint64_t cut_bytes;   /* bytes cut off segment tails at open (torn or corrupt) */
} spool_stats;

/* Opens (creating it 0700 if missing, parents too) the spool in dir and recovers it as
 * described above. o may be NULL (defaults). 0 and *out; -EBUSY when another process has it
 * open; -ENOSYS/-EPERM (io_uring_setup refused: no io_uring in
 * this kernel or a seccomp filter); -errno for the directory. Damaged files never
 * make it fail. dir is copied. */
int spool_open(const char *dir, const spool_opts *o, spool **out);
/* Closes files and the ring. Acknowledges nothing (call spool_ack first to keep the reader
 * position). Accepts NULL. */
void spool_close(spool *s);

/* Appends n records (recs[i].iov_len bytes each, 1 .. max_record) in order and returns once
 * all of them are durable: 0 = stored. On error nothing of the batch counts as stored and the
 * caller keeps ownership of every record: -ENOSPC (cap reached, policy REFUSE, nothing
 * written), -EMSGSIZE (a record is empty or too large, nothing written), -EIO/-errno (write
 * or fsync failed; see Durability). recs and their data are only read during the call. */
int spool_append_batch(spool *s, const struct iovec *recs, size_t n);
/* One record: spool_append_batch with n = 1. */
int spool_append(spool *s, const void *data, size_t len);

/* Shows the oldest unconsumed record: 0 with *data and *len (a view valid until the next call on
 * s) and *seq (may be NULL); -ENODATA when the spool has nothing left to read; -EIO/-errno
 * when reading the segment failed (the reader stays where it was). Expired records are
 * skipped (counted) on the way. */
int spool_peek(spool *s, const void **data, size_t *len, uint64_t *seq);
/* Moves the reader past the record last shown by spool_peek. -ENODATA if none was shown.
 * The move is in memory only until spool_ack. */
int spool_consume(spool *s);
/* Persists the reader position (checkpoint file, fsync + rename) and deletes segment files
 * whose records were all consumed. 0 or -errno (the previous checkpoint stays in force).
 * Cheap when nothing was consumed since the last ack. */
int spool_ack(spool *s);

/* Records stored and not yet consumed (0 = empty for the reader). Cannot fail. */
uint64_t spool_count(const spool *s);
int spool_is_empty(const spool *s);
/* Counters snapshot. Cannot fail. */
void spool_get_stats(const spool *s, spool_stats *out);

#endif
