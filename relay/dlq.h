/* dlq: the relay's side of the dead-letter path (DESIGN §2, §5; issue 4 "Poison messages",
 * issue 9 "the dead-letter path in one module per side"): it makes the relay's own dead
 * records, stores every dead record and says what to publish on the dead-letter topic.
 *
 * The workers hand messages they gave up as REC_DEAD records (rec.h: rec_hdr.aux is
 * the reason, rule and src_client name where it came from, topic and payload are the
 * original's; workers/deadrec.h makes them). What the relay itself gives up becomes such a
 * record too (dlq_dead_of_publish, dlq_dead_of_bytes, dlq_dead_of_misplaced), owned by its inflight
 * entry. The pump queues each one here (the ring record stays unreleased); dlq_flush writes one
 * JSON line per record to runtime.dead_letter_dir/dead-letters.jsonl (common/deadletter.h),
 * fdatasyncs once for the batch and then reports each record, so the pump releases it only once the
 * line is durable (and, when runtime.dead_letter_topic is set, publishes the line there first:
 * dlq_flush hands it a REC_PUBLISH record of the line). A failed open, write or sync keeps the
 * batch queued and is tried again after DLQ_RETRY_MS (the ring waits: backpressure, never a silent
 * drop); a crash in between writes the line again (at-least-once).
 *
 * Reason texts from rec_hdr.aux (rec.h REC_DEAD_AUX: the reason code and the signal that
 * killed the last worker running the message): REC_DEAD_CRASHED "killed the worker N times
 * (runtime.max_attempts) by SIGSEGV (Segmentation fault)", or without a signal "crashed the
 * worker N times ..."; REC_DEAD_TIMEOUT "timed out: ... the watchdog killed the worker N
 * times"; REC_DEAD_TOO_LARGE "oversized: ..."; REC_DEAD_CALLBACK_ERROR "callback error ...";
 * REC_DEAD_CORRUPT_RING "corrupt ring: N bytes ..."; REC_DEAD_UNDECODABLE "undecodable
 * record: N bytes of worker W's input|output ring: <rec_bad_text>"; REC_DEAD_MISPLACED
 * "record of kind K in worker W's input|output ring: N bytes", "unknown rule R: a record of N
 * bytes in ...", "unknown target client C: a record of N bytes in ..."; other codes "unknown
 * reason N".
 *
 * Used by the relay's main loop only (one thread).
 */
#ifndef MF_RELAY_DLQ_H
#define MF_RELAY_DLQ_H

#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "rec.h"

#define DLQ_RETRY_MS 100

typedef struct dlq dlq;

/* Called by dlq_flush for each record whose line is durable. pub is NULL when there is
 * nothing more to do (release it), else a malloc'd REC_PUBLISH record of pub_len bytes that
 * becomes the callee's: the line, QoS 1, on runtime.dead_letter_topic, for the client
 * runtime.dead_letter_client or else the message's source client (publish it, then
 * release). */
typedef void (*dlq_stored_fn)(void *arg, uint16_t ring, uint64_t seq, void *pub, size_t pub_len);

/* c outlives it; nothing is opened yet. 0 or -ENOMEM. */
int dlq_create(const cfg *c, dlq **out);
void dlq_destroy(dlq *q); /* accepts NULL */

/* Queues the REC_DEAD record (rec, len: valid until the pump marks (ring, seq) done). 0 or
 * -ENOMEM. */
int dlq_queue(dlq *q, uint16_t ring, uint64_t seq, const void *rec, size_t len);
/* Writes and syncs what is queued (when a retry is due) and reports each record. Returns how
 * many were stored. */
size_t dlq_flush(dlq *q, uint64_t now_ns, dlq_stored_fn fn, void *arg);
size_t dlq_queued(const dlq *q);
uint64_t dlq_stored(const dlq *q); /* lines made durable by this process */
/* Monotonic time of the next retry, or UINT64_MAX. */
uint64_t dlq_next_timer(const dlq *q);

/* A REC_DEAD copy, malloc'd into *out (*out_len bytes), of the REC_PUBLISH record rec that
 * the relay gives up for reason (enum rec_dead_reason). 0, -EINVAL (rec does not decode) or
 * -ENOMEM. */
int dlq_dead_of_publish(const void *rec, size_t len, unsigned reason, void **out, size_t *out_len);
/* A REC_DEAD record (REC_DEAD_UNDECODABLE, found by the relay), malloc'd into *out, for the
 * len bytes of a worker's output ring that do not decode as a record: their length, the
 * decode error, the first of them (at most 4096 and runtime.max_payload). 0 or -ENOMEM. */
int dlq_dead_of_bytes(const cfg *c, const void *buf, size_t len, void **out, size_t *out_len);
/* The same (REC_DEAD_MISPLACED, found by the relay) for a record that decodes but cannot be
 * delivered: `what` (rec.h enum rec_misplaced) with its kind or target client number n. 0 or
 * -ENOMEM. */
int dlq_dead_of_misplaced(const cfg *c, const void *buf, size_t len, enum rec_misplaced what,
                          unsigned n, void **out, size_t *out_len);

/* The reason text for a REC_DEAD aux into buf. Returns buf. */
const char *dlq_reason(const cfg *c, unsigned aux, char *buf, size_t cap);
/* The callback a dead record's rule (and step, when not REC_NONE) ran, or NULL. */
const char *dlq_callback(const cfg *c, unsigned rule, unsigned step);

#endif
