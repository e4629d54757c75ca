/* intake: turns one MQTT message into a REC_MSG record in the ingress ring (DESIGN §1, §5).
 *
 * Used by the ingress process: intake_message from paho's receive thread (messageArrived), one
 * message at a time; intake_drain / intake_spooled from the main thread. Every ring producer
 * call is made under the intake's mutex, so the ring has exactly one producer at any moment
 * although two threads take turns. The record is committed and the ring flushed (or the
 * spool append is fsync'd) before intake_message returns, so a message counts as taken only
 * once it is in the ring or durable in the spool (see subscriber.h for when paho acknowledges).
 *
 * Full ring, with a spool (intake_set_spool; the ingress's
 * runtime.spool_dir/ingress<i>.<instance>/): the call waits for room at most spill_wait_ms (well
 * under keepalive / 2), then appends the message to the spool, waits for it to be durable and
 * returns, so paho's receive thread never stops for long and the broker connection (keepalive,
 * PUBACKs) survives a ring that stays full for any time. Order is kept: while the spool holds
 * anything, every new message first lets the spool drain into the ring as far as it has room, then
 * goes to the spool itself if anything is left there. intake_drain (main thread, every loop turn)
 * moves spooled records into the ring when no messages arrive. QoS 0 with runtime.overflow: drop is
 * dropped and counted as before, never spooled. When the spool refuses (its cap
 * runtime.spool_max_bytes: -ENOSPC, or a disk error) the call falls back to waiting until
 * the ring has room (logged once): nothing is ever acknowledged that is not stored.
 *
 * Stall limit (intake_set_stall; issue 8, DESIGN §2 "never stalls its MQTT client past half
 * the keepalive"): the caller's thread is paho's receive thread, which also sends the PINGREQs
 * and PUBACKs, so a wait past 1.5 x keepalive makes the broker drop the connection and, for a
 * clean session, the messages it queued. With a limit set, a message that could be stored
 * neither in the ring nor in the spool within stall_ms of the call is handed back unstored
 * (INTAKE_REFUSED): the caller must then cut the connection without acknowledging it (the
 * broker keeps it in the persistent session and sends it again) and connect again only once
 * intake_has_room says so (the ring half empty and the spool at or below the resume mark), so
 * the broker queues meanwhile instead of dropping the session.
 * Cost: paho hands over one message per call, so each spilled message is its own durable
 * batch (one fdatasync): measured 0.1 ms here (virtio disk, about 10k spilled messages/s);
 * a disk with a 2 ms fsync takes about 500/s while spilling. The ring path is unchanged.
 *
 * Full ring without a spool: the call blocks until the consumer makes room (backpressure
 * reaches the broker through TCP, since paho's receive thread stops reading), unless
 * runtime.overflow is drop and the message is QoS 0: then it is dropped and counted (ring
 * drops, stats dropped).
 * A message larger than runtime.max_payload or than the ring's max record, or whose topic no
 * broker accepts (common/topicname.h: a source broker that passes control characters on), is
 * counted (stats errors and dead), logged with its topic and size (rate-limited), written to
 * the dead-letter store with its reason (an oversized one: metadata and the first 1 KiB) and
 * not put into the ring; it never stops the stage.
 *
 * Sequence numbers continue across restarts: they start at the number of records the ring's
 * producers have published so far plus what waits in the spool, so the router sees one
 * increasing series per source (with a gap after a crash that re-reads spooled records).
 *
 * Counters: in (taken: ring or spool), dropped, errors, dead, and the ingress's extras
 * (stats.h STATS_I_SPOOLED: through the spool, STATS_I_SPOOL_NOW: in the spool now).
 */
#ifndef MF_INTAKE_H
#define MF_INTAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "ring.h"
#include "spool.h"
#include "stats.h"

typedef struct intake intake;

/* INTAKE_REFUSED: not stored within the stall limit (see above); nothing was written */
enum { INTAKE_WRITTEN = 0, INTAKE_DROPPED = 1, INTAKE_REFUSED = 2 };

/* Prepares intake for ring r (attached as producer; not owned) of source client `client`
 * (cfg index, written into every record). slot (may be NULL) receives in/dropped/errors/dead.
 * 0 and *out, or -ENOMEM / -EINVAL (client above REC_NONE). */
int intake_create(ring *r, stats_slot *slot, size_t client, size_t max_payload,
                  enum cfg_overflow overflow, intake **out);
/* Writes one message (topic need not be NUL-terminated) into the ring or the spool.
 * INTAKE_WRITTEN (stored), INTAKE_DROPPED, INTAKE_REFUSED (see Stall limit), -EMSGSIZE when
 * it was too large or -EINVAL for an invalid topic (dead-lettered, see above). Waits while the ring
 * is full as described above; signals do not end the wait. */
int intake_message(intake *in, const char *topic, size_t topic_len, const void *payload,
                   size_t payload_len, int qos, int retain);
/* Gives the intake a spool for a full ring (see above): sp is borrowed (the caller closes it
 * after intake_destroy), spill_wait_ms is the wait for room before spilling. Call before
 * messages arrive. 0 or -ENOMEM (then there is no spool: a full ring blocks). */
int intake_set_spool(intake *in, spool *sp, int spill_wait_ms);
/* Main thread: moves spooled records into the ring as far as it has room, without waiting
 * for room (it may wait for the mutex while a message is being written). *left (may be
 * NULL) gets the records still spooled. Never fails: errors are logged and retried. */
int intake_drain(intake *in, uint64_t *left);
/* Batched intake (the io_uring subscriber, ingress/sub_ops.h): with defer on, intake_message
 * commits without flushing and the caller calls intake_flush once after a batch of messages,
 * before it acknowledges any of them (ack after commit stays true: nothing is acknowledged
 * before the flush). The records of one batch (one socket read) share one received time, the
 * clock's when the batch's first message came in. Off (the default): every intake_message flushes,
 * for paho, which acknowledges each message as its call returns. Never fails. */
void intake_set_deferred_flush(intake *in, int defer);
void intake_flush(intake *in);
/* Sets the stall limit (0 = none: a full ring is waited for as long as it takes) and the
 * spool size at or below which intake_has_room says yes. Cannot fail. */
void intake_set_stall(intake *in, int stall_ms, uint64_t resume_spool_bytes);
/* Whether a paused connection may come back (see "Stall limit"). Cannot fail. */
bool intake_has_room(intake *in);
/* Where refused messages go (issue 8 item 3): the dead-letter store in dir
 * (common/deadletter.h; runtime.dead_letter_dir), with instance and client_id in each line.
 * Strings are copied. 0 or -ENOMEM. Without it refusals are only counted and logged. */
int intake_set_deadletter(intake *in, const char *dir, const char *instance, const char *client_id);
/* Records waiting in the spool (0 without one). */
uint64_t intake_spooled(intake *in);
/* Sequence number the next written record gets. */
uint64_t intake_next_seq(intake *in);
/* Acknowledges the spool for records already moved into the ring; accepts NULL; the ring
 * stays attached and the spool open. */
void intake_destroy(intake *in);

#endif
