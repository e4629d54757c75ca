/* sfwd: the relay's store-and-forward, one disk spool per target client (DESIGN §1, §5; issue
 * 4 "Store-and-forward").
 *
 * While a target's connection is down its records go to its spool
 * (runtime.spool_dir/<client_id>/, common/spool.h) instead of waiting in the ring: the pump
 * queues them here (sfwd_queue; the ring records stay unreleased meanwhile), sfwd_flush
 * appends each target's queue as one batch and reports every record whose batch is durable
 * (spool semantics: after the fdatasync completed), and only then does the pump mark it done,
 * so the ring moves on and the other targets' records behind it keep flowing.
 *
 * Per-target order: once a target has anything spooled (or queued, or a drain batch out), its
 * new records keep going to the spool (sfwd_diverts) until the spool is drained; only then do
 * they go straight out again. So what reaches the target is the spool in order, then the
 * records that came later.
 *
 * Drain: when the target is up, sfwd_fill copies up to `batch` records from the spool into the
 * target's drain window (an inflight window whose entries own their copies); the pump
 * publishes them like ring records (QoS as recorded) and marks them done on completion
 * (PUBACK for QoS 1). The spool's reader position is persisted (spool_ack) only when a whole
 * batch is done, before the next batch is read: a relay killed mid-batch publishes that batch
 * again (duplicates bounded by the batch, itself bounded by the outstanding window). Rate: at
 * most one batch per round trip; the batch is the knob (runtime.relay.drain_batch, default
 * 128), and because it takes at most half of the outstanding slots the
 * live traffic of the other targets keeps flowing during a drain.
 *
 * Cap (runtime.spool_max_bytes, per target): the spool refuses a batch that would exceed it
 * (-ENOSPC, policy REFUSE); the records stay queued here and in the ring (backpressure: the
 * ring fills, the worker waits), the refusal is logged once per episode, and the append is
 * tried again every SFWD_RETRY_MS (space comes back when drained segments are deleted).
 * Nothing is ever dropped. A spool that cannot be opened at all (no io_uring, no permission)
 * makes sfwd_queue fail: the pump then keeps the record in the ring as it did before spools.
 *
 * Recovery: sfwd_recover opens every target's spool directory that exists at start (spool
 * recovery and quarantine happen in spool_open) and logs what it found; a target with records
 * left is drained once it is up. A directory that exists but cannot be opened (still locked
 * by a relay that is exiting, -EBUSY) may hold records: that target's records wait in the
 * rings until the open succeeds (tried again every second), so none overtakes them.
 *
 * Used by the relay's main loop only (one thread). Blocking: appends and acks wait for their
 * fsyncs (a few ms per batch, once per loop turn per target at most).
 */
#ifndef MF_RELAY_SFWD_H
#define MF_RELAY_SFWD_H

#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "inflight.h"

#define SFWD_RETRY_MS  100 /* a refused or failed append, a failed open: try again after */
#define SFWD_BATCH_MAX 256 /* largest drain batch (the drain window's size) */
/* records queued per target for one append: a relay killed during an append (its data may
 * be recovered although the ring was not released) duplicates at most this many */
#define SFWD_QUEUE_MAX 256

typedef struct sfwd sfwd;

/* Called by sfwd_flush for every queued record now durable in its target's spool. */
typedef void (*sfwd_stored_fn)(void *arg, uint16_t ring, uint64_t seq);

/* One spool slot per client of c (c outlives it); nothing opened yet. batch: records per
 * drain batch, 1..SFWD_BATCH_MAX. 0, -EINVAL, -ENOMEM. */
int sfwd_create(const cfg *c, size_t batch, sfwd **out);
/* Persists the reader position of fully published batches and closes the spools. Queued
 * records are not stored (they are still in their rings). Accepts NULL. */
void sfwd_destroy(sfwd *s);
/* Opens the spool of every target whose directory exists (recovering it; logged). */
void sfwd_recover(sfwd *s);

/* Whether target t's records must go to its spool now (t down, or its spool not drained). */
int sfwd_diverts(const sfwd *s, uint16_t t, int up);
/* Queues the record (rec, len: in the ring, valid until the pump marks (ring, seq) done) for
 * t's spool. 0; -ENOBUFS when SFWD_QUEUE_MAX records wait already (try after sfwd_flush);
 * another -errno when t's spool cannot be opened (the caller keeps the record). */
int sfwd_queue(sfwd *s, uint16_t t, uint16_t ring, uint64_t seq, const void *rec, size_t len);
/* Appends what is queued (one batch per target, retrying refused ones when due) and calls
 * fn for every record stored. Returns how many were stored. */
size_t sfwd_flush(sfwd *s, uint64_t now_ns, sfwd_stored_fn fn, void *arg);

/* t's drain window (entries conn = t, kind PUBLISH, owning their copies). */
inflight *sfwd_window(sfwd *s, uint16_t t);
/* When t's drain window is empty: acknowledges the finished batch in the spool and reads the
 * next one (at most the batch size). Returns how many entries it added. */
size_t sfwd_fill(sfwd *s, uint16_t t);

/* Records spooled now over every target (stored and not acknowledged as published). */
uint64_t sfwd_spooled(const sfwd *s);
/* Records queued for an append (stored nowhere yet). */
size_t sfwd_queued(const sfwd *s);
/* Monotonic time of the next retry sfwd_flush has to make, or UINT64_MAX. */
uint64_t sfwd_next_timer(const sfwd *s);

#endif
