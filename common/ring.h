/* ring: a single-producer single-consumer ring of variable-length records in a shared-memory
 * segment (DESIGN §2). Every queue between two mqttflow processes is one of these.
 *
 * Who calls what: the supervisor creates, adopts and unlinks rings (ring_create, ring_adopt,
 * ring_unlink) and may attach as an observer (fill level, counters); exactly one producer
 * process and exactly one consumer process attach at a time. Producer functions are called only by
 * the producer, consumer functions only by the consumer, each from one thread.
 *
 * Records: 1 .. max_record bytes, 8-byte aligned, never split across the wrap (a pad record
 * fills the end of the buffer instead). A record is invisible until the producer publishes the
 * head past it, so a producer killed mid-write leaves nothing half-written visible.
 *
 * Positions are 64-bit byte counters that never wrap in practice (2^64 bytes).
 *
 *   producer                                   consumer
 *   write record bytes
 *   P1 store-release head  ------------------> C1 load-acquire head, then read record bytes
 *   P2 full fence, load cons_waiting; if set,   C3 store cons_waiting=1, full fence, reload head
 *      take it (exchange to 0) and wake            (then FUTEX_WAIT on cons_wake)
 *   P3 load-acquire tail   <------------------ C2 store-release tail after the record is done
 *   P4 store prod_waiting=1, full fence,        C4 full fence, load prod_waiting; if set,
 *      reload tail (then FUTEX_WAIT on             take it (exchange to 0) and wake
 *      prod_wake)
 *
 * P2/C3 and C4/P4 are Dekker pairs: each side stores, fences, then loads what the other
 * stored, so at least one of them sees the other and no wake-up is lost. The waker bumps the
 * futex word before FUTEX_WAKE, so a sleeper that read the word before the bump does not
 * sleep at all. The waker takes the flag: one park costs at most one FUTEX_WAKE however many
 * batches the peer publishes before the sleeper runs again (the sleeper sets its flag anew on
 * every round). Segment layout and field owners: ring_layout.h.
 *
 * Release: the consumer moves its read cursor past records as it finishes them and publishes
 * the tail (the producer may reuse the space) only in ring_release / ring_release_to, so a
 * consumer that dies re-reads every record it had not released: at-least-once.
 *
 * Attempts (poison records): before running a record the consumer calls ring_begin, which
 * records the record's position in the segment and counts how often a run of that exact
 * record was begun without ring_end. A consumer that batches releases still blames only the
 * record it was running when it died. See ring_begin.
 *
 * Waiting: a side that finds nothing to do spins briefly, then parks on a futex word in the
 * segment; the other side makes the FUTEX_WAKE syscall only when it sees the parked flag.
 * A stage loop waits with ring_wait_paced instead: after work it naps (a timed sleep no peer
 * is asked to end) and parks only after a nap found nothing, so under steady traffic neither
 * side pays a wake-up per record (interrupt moderation; see ring_wait_paced).
 * Under load the producer publishes the head once per batch (ring_commit publishes every
 * RING_BATCH records, ring_flush at once); it must flush before it idles or blocks.
 * A wait returns -EINTR only for a signal whose handler was installed without SA_RESTART
 * (with SA_RESTART the kernel resumes the futex wait; blocked signals never interrupt it), so
 * a stage that must notice a signal while parked either installs its handler that way, uses a
 * timeout, or has the signal bump an extra word given to ring_wait_any.
 */
#ifndef MF_RING_H
#define MF_RING_H

#include <stddef.h>
#include <stdint.h>

#define RING_ALIGN    8
#define RING_MIN_SIZE 4096u
#define RING_BATCH    32 /* records per head publication in ring_commit */
/* ring_wait_paced's nap (environment MQTTFLOW_RING_NAP_US overrides it, 0..100000; 0 turns
 * the nap off): the latency a busy stage may add to a record, against one wake-up saved per
 * record for every record that arrives during it */
#define RING_NAP_US 250
/* ring_release wakes a producer parked on a full ring only once 1/RING_WAKE_FREE_DIV of the
 * ring is free (a consumer about to wait, and ring_release_to, wake it at once) */
#define RING_WAKE_FREE_DIV 8

typedef struct ring ring; /* process-local handle over a mapped ring segment */

enum ring_role { RING_PRODUCER = 1, RING_CONSUMER = 2, RING_OBSERVER = 3 };

/* Creates the segment `name` (see shm_create: 0600, O_EXCL, stale reclaim) with a data area
 * of capacity bytes (a power of two >= RING_MIN_SIZE) for records of at most max_record bytes
 * (<= capacity / 4), and maps it as an observer. 0, -EINVAL, -EEXIST or -errno. */
int ring_create(const char *name, size_t capacity, size_t max_record, ring **out);
/* Supervisor start-up after a crash: takes over the ring `name` left by a dead instance with
 * its records when its capacity and max_record are the same (see shm_adopt), else creates it
 * (an existing one of another geometry, layout version or with damaged positions is
 * reclaimed empty, logged). The dead sides' parked flags are cleared; positions, counters and
 * the attempt mark are kept, so the next consumer resumes at the released tail and re-reads
 * what was not released. Maps it as an observer. 1 when adopted with its records, 0 when
 * created empty, -EINVAL (geometry), -EEXIST (a live owner) or -errno. */
int ring_adopt(const char *name, size_t capacity, size_t max_record, ring **out);
/* A 64-bit value the creator keeps in the segment with the records, 0 until set; it survives
 * ring_adopt. The supervisor stores a fingerprint of the config indices its records refer to
 * (client and rule numbers), so a run with another config does not misread adopted records.
 * Set it before any stage attaches (a plain store, ordered by the exec of the stages). */
void ring_set_tag(ring *r, uint64_t tag);
uint64_t ring_tag(const ring *r);
/* Maps an existing ring in a role. Checks magic/version/geometry (-EPROTO). Attaching as
 * consumer resumes at the published tail; as producer at the published head (records
 * written but not published by a dead producer are discarded). */
int ring_attach(const char *name, enum ring_role role, ring **out);
/* Unmaps; the segment and its records stay. A producer should ring_flush first. NULL ok. */
void ring_detach(ring *r);
/* Removes the segment's name (supervisor on clean stop). 0 or -errno. */
int ring_unlink(const char *name);

size_t ring_capacity(const ring *r);
size_t ring_max_record(const ring *r);
/* Published bytes not yet released by the consumer (any role; relaxed snapshot). */
size_t ring_used(const ring *r);
int ring_is_empty(const ring *r); /* consumer: nothing published beyond its read cursor */

/* ---- producer ---- */

/* Reserves room for a record of len bytes and points *buf at it (writable until commit).
 * 0; -EAGAIN when full (nothing reserved: wait with ring_wait_space); -EMSGSIZE when len is 0
 * or above max_record. At most one reservation is outstanding. */
int ring_reserve(ring *r, size_t len, void **buf);
/* Completes the reserved record with its final length (<= reserved). It becomes visible to
 * the consumer at the next head publication (every RING_BATCH commits, or ring_flush). */
void ring_commit(ring *r, size_t len);
/* Publishes the head now and wakes the consumer if it is parked. Cheap when nothing changed. */
void ring_flush(ring *r);
/* Copies a whole record: reserve + memcpy + commit. 0, -EAGAIN, -EMSGSIZE. */
int ring_push(ring *r, const void *data, size_t len);
/* Flushes, then blocks until a record of len bytes fits, up to timeout_ms (-1: forever).
 * 0; -ETIMEDOUT; -EINTR when a signal arrived (check your flags and call again). Parks at
 * once (no spin); the consumer wakes it once 1/RING_WAKE_FREE_DIV of the ring is free or
 * when it waits itself, so under backpressure one park covers many records. */
int ring_wait_space(ring *r, size_t len, int timeout_ms);

/* ---- consumer ---- */

/* The next record at the read cursor, without moving it: *buf and *len valid until that record
 * is released. 0, or -EAGAIN when none is published. A corrupt length in the segment (our
 * bug or memory corruption) returns -EBADMSG and leaves the cursor alone. */
int ring_peek(ring *r, const void **buf, size_t *len);
/* After ring_peek returned -EBADMSG (a corrupt record header): quarantines the damaged region,
 * the bytes from the read cursor to the head the producer has published, since no record
 * boundary inside it can be trusted (issue 8 item 4: a fault with a way out, never a silent
 * stop). *first and *first_len (may be NULL) view its first contiguous bytes (valid until
 * released), for the dead letter. Moves the read cursor to that head and returns how many
 * bytes were skipped; release as after ring_advance. Records the producer publishes later
 * are read normally. */
uint64_t ring_skip_damaged(ring *r, const void **first, size_t *first_len);
/* Moves the read cursor past the record ring_peek returned (finished, not yet released). */
void ring_advance(ring *r);
/* The read cursor's position: pass it to ring_release_to later (relay: release on PUBACK). */
uint64_t ring_read_pos(const ring *r);
/* Publishes tail = read cursor (records before it may be overwritten) and wakes a parked
 * producer once a good part of the ring is free (RING_WAKE_FREE_DIV; the waits wake it
 * whatever is free). Callers batch: once per batch of records, and always before waiting. */
void ring_release(ring *r);
/* Publishes tail = pos, pos between the current tail and the read cursor. */
void ring_release_to(ring *r, uint64_t pos);
/* Rewinds the read cursor to the published tail (re-reads unreleased records). */
void ring_rewind(ring *r);

/* Marks the record at the read cursor as being run and returns how many runs of it have
 * been begun, this one included: 1 on a first run, 2 when a previous consumer died while
 * running it, and so on. A record that was finished (ring_end) and is re-read after a crash
 * of a later record starts again at 1; records re-read after a restart never blame each
 * other. The marks live in the segment and survive the consumer. */
unsigned ring_begin(ring *r);
/* Marks the record begun last as finished (its run did not kill the consumer). */
void ring_end(ring *r);

/* Blocks until a record is published beyond the read cursor, up to timeout_ms (-1: forever;
 * 0: just check). Releases first (a parked consumer holds no unreleased space).
 * 0; -ETIMEDOUT; -EINTR. */
int ring_wait_data(ring *r, int timeout_ms);
/* The same over several rings this process consumes (router: every ingress ring; relay:
 * every worker's output ring), with an optional extra 32-bit futex word (may be NULL) that
 * another thread of this process bumps and FUTEX_WAKEs to interrupt the wait: the wait
 * returns when *extra != extra_seen. Returns 0 when any ring has data or extra changed. */
int ring_wait_any(ring *const *rs, size_t n, const uint32_t *extra, uint32_t extra_seen,
                  int timeout_ms);
/* The wait of a stage loop (router, worker, relay): interrupt moderation, the way NAPI
 * defers re-arming a network card's interrupt. busy != 0 says the loop took records since its
 * previous wait: then it releases, and unless a ring already has data sleeps RING_NAP_US
 * (bounded by timeout_ms) with no parked flag set, so producers publish meanwhile without any
 * system call, and returns 0 when data arrived (a batch to take), -ETIMEDOUT when none did
 * (the loop takes its turn and waits again with busy == 0), -EINTR on a signal. The extra
 * word is not watched during a nap: its waker (the relay's paho threads) should see no
 * sleeper either (cq_prepare_wait not called). busy == 0 (traffic stopped at least a nap
 * ago): ring_wait_any without the spin (parked flags, FUTEX_WAIT, woken by the first
 * record). Cost under steady traffic of R records/s: about min(R, 1 s / nap) timer wake-ups a
 * second and no FUTEX_WAKE; each record waits at most one nap longer per stage. */
int ring_wait_paced(ring *const *rs, size_t n, const uint32_t *extra, uint32_t extra_seen,
                    int timeout_ms, int busy);
/* Whether a stage loop's next wait should nap (ring_wait_paced's busy) or park at once. A nap
 * pays only while records arrive faster than about RING_PACE_MIN per nap (8,000 a second with
 * the 250 us nap): then it saves the producers a FUTEX_WAKE per record. Below that a nap saves
 * nothing (the stage wakes about once per record either way) and only delays each record, by
 * half a nap on average per stage; parking instead costs the producer one FUTEX_WAKE per
 * record. The rate is taken from the records handed in and the time since the previous call.
 * One ring_pace per waiting loop, zeroed before the first call (fields private). */
typedef struct ring_pace {
    uint64_t last_ns;
} ring_pace;
#define RING_PACE_MIN 2
/* taken: records (or other events) taken since the previous call. 1: nap; 0: park. With the
 * nap turned off (MQTTFLOW_RING_NAP_US=0) it is taken != 0, as before pacing. */
int ring_pace_nap(ring_pace *p, size_t taken);
/* ring_wait_any (no extra word, no spin) for a consumer that keeps records read but not
 * released while it waits (the relay: released on acknowledgement, ring_release_to): parks
 * without releasing anything first, so a producer parked on a full ring stays parked until
 * the caller releases; use a timeout. 0; -ETIMEDOUT; -EINTR; -EINVAL (n == 0 or too many). */
int ring_wait_held(ring *const *rs, size_t n, int timeout_ms);
/* ring_wait_paced's park (busy == 0) in two halves, for a loop that sleeps on the futex words
 * and on something else at once (the relay: its io_uring, with an IORING_OP_FUTEX_WAITV over
 * the words). ring_park_begin releases rs[0..n) as every consumer wait does, sets their parked
 * flags, reads the futex words of watch[0..n_watch) (every ring of rs must be among them; the
 * others are read too, so one armed wait can serve later parks over other subsets: a word
 * changes only with a FUTEX_WAKE, which ends that wait) and, when extra is given, extra,
 * into words/vals (n_watch + 1 entries), then fences and re-checks (the C3 protocol of
 * wait_ready). 1: a ring has data or extra changed (flags cleared: do not sleep); 0: sleep
 * until any words[i] != vals[i] (woken) or a timeout, then call ring_park_end(rs, n);
 * -EINVAL: n > n_watch, nothing to watch, or more than FUTEX_WAITV_MAX_WORDS words. */
int ring_park_begin(ring *const *rs, size_t n, const uint32_t *extra, uint32_t extra_seen,
                    ring *const *watch, size_t n_watch, const uint32_t **words, uint32_t *vals);
/* ring_park_begin without releasing rs first, for a consumer that keeps records read but not
 * released while it waits (ring_wait_held's park in two halves). */
int ring_park_begin_held(ring *const *rs, size_t n, const uint32_t *extra, uint32_t extra_seen,
                         ring *const *watch, size_t n_watch, const uint32_t **words,
                         uint32_t *vals);
void ring_park_end(ring *const *rs, size_t n);
/* ring_wait_paced's nap (busy != 0) for a loop that sleeps elsewhere: releases rs[0..n) as
 * the nap does; 1 when a ring already has data (do not nap), else 0 and *nap_ns, the nap to
 * sleep (RING_NAP_US or MQTTFLOW_RING_NAP_US; 0: none), with no parked flag set. */
int ring_nap_begin(ring *const *rs, size_t n, uint64_t *nap_ns);
/* Wakes the waiters on an extra word used with ring_wait_any: increments it and FUTEX_WAKEs. */
void ring_wake_word(uint32_t *word);

/* ---- counters (any role, relaxed snapshots) ---- */
typedef struct ring_stats {
    uint64_t head, tail;     /* published positions */
    uint64_t records_in;     /* records published by the producer */
    uint64_t records_out;    /* records released by the consumer */
    uint64_t producer_waits; /* times the producer parked on a full ring */
    uint64_t consumer_waits; /* times the consumer parked on an empty ring */
    uint64_t drops;          /* records a producer chose to drop (ring_count_drop) */
} ring_stats;
void ring_get_stats(const ring *r, ring_stats *st);
/* Producer: counts a record dropped on a full ring (runtime.overflow: drop). */
void ring_count_drop(ring *r);

#endif
