/* pump: the relay's main loop (DESIGN §1, §5).
 *
 * Reads every worker's output ring, publishes each REC_PUBLISH record on its target client's
 * connection (conn.h) and releases ring records only once their publish completed, in ring
 * order (inflight.h): QoS 0 when paho's onSuccess says the packet was written to the socket,
 * QoS 1 on PUBACK, QoS 2 on PUBCOMP. Why onSuccess for QoS 0 too rather than "sendMessage
 * returned": a relay killed right after sendMessage would otherwise lose what paho still had
 * queued, and one accounting path for every QoS keeps the outstanding bound exact.
 *
 * Flow control: at most runtime.relay.outstanding (default 256) publishes are handed to paho and
 * not yet finished (BASELINES pitfall 1: paho's QoS>0 publish cost grows with its queue; measured
 * here, relay CPU per QoS 1 message was ~32 us at 64-256 outstanding, 35 at 512, 43-46 at
 * 1024, for the same throughput), and at most
 * PUMP_WINDOW records per ring are read ahead of the ring's release point. When either is
 * exhausted the pump stops reading rings; the workers then feel backpressure from the full
 * ring.
 *
 * A target that is down (store-and-forward, relay/sfwd.h): its records go to its disk spool
 * (runtime.spool_dir/<client_id>/) and are marked done once the spool's batch is durable, so
 * the ring moves on and the other targets' records behind them keep flowing. Until the spool
 * is drained again, the target's new records go to the spool too; once the target is up the
 * spool is published in batches of runtime.relay.drain_batch (default 128; at most half the
 * outstanding bound, so live traffic keeps the rest), each batch acknowledged in the spool only
 * when all of it is done. A spool that is full (runtime.spool_max_bytes) or cannot be opened leaves
 * the records in the ring (backpressure, logged). Publishes lost with a connection or failed by
 * paho are published again after reconnect, in ring order (or spooled, in ring order, if the target
 * stays down). On stop, the records for a down target are spooled before the exit.
 * Stats: the common counters, and the relay's extras (stats.h STATS_RL_*: records spooled now,
 * REC_DEAD records received, dead letters stored).
 *
 * Dead letters (relay/dlq.h): a REC_DEAD record becomes one JSON line in
 * runtime.dead_letter_dir/dead-letters.jsonl and is released once the line is durable; when
 * runtime.dead_letter_topic is set, the line is first published (QoS 1) to that topic on
 * runtime.dead_letter_client (the source client when unset), through the same path as any
 * record (spooled if that target is down), and released on its PUBACK.
 *
 * Records that can never be published (corrupt, unknown target, invalid topic, refused by
 * paho) are counted as errors, logged and released. Poison records: reading and
 * handing a record to paho is bracketed by ring_begin/ring_end, so a record that killed
 * runtime.max_attempts relays is skipped (logged, counted in stats `dead`) by the next one.
 *
 * Ready: stage_ready once every connection has connected or failed its first attempt, so a
 * pipeline starts even with a target broker down (until its first attempt has finished, a
 * target's records wait in the ring rather than being spooled at once). Stop
 * (stage_stop_flag): keeps reading until every ring is empty and every record published or
 * spooled, at most PUMP_STOP_MS, then disconnects; no new spool drain batch is started.
 *
 * Waiting: the loop never waits while it has work. Idle, it parks in ring_wait_any on the rings
 * whose windows are empty (ring_wait_any releases what was read, which is only right when
 * everything read has completed) plus the completion queue's word, so a ring record, a paho
 * completion or a connection event wakes it; at most 200 ms, earlier when a spool append or a
 * dead-letter write is to be tried again. A loop that made progress since its last wait at a
 * high rate (ring_pace_nap: two or more per nap) naps first instead (ring_wait_paced, without
 * cq_prepare_wait): records and completions arriving during the nap cost the workers and
 * paho's threads no wake-up and are taken by the next turn. At a lower rate it parks on every
 * readable ring without releasing what is in flight (ring_wait_held, at most PUMP_HELD_MS,
 * no completion word), so the next record is published as it arrives. Only a turn without
 * progress leads to the park above. An io_uring
 * connection gets the turn's publishes at the end of the turn (conn_flush: one wake-up of its
 * I/O thread per turn at most) and reads acknowledgements once per turn or after a pause
 * rather than as each arrives; before parking, the pump asks the connections with
 * acknowledgements due to stop pausing (conn_park), so a park never waits on a paused read.
 * With the io_uring connections on the pump's own thread (conn_uring.h one-thread mode, chosen
 * at start where the kernel has IORING_OP_FUTEX_WAITV) the nap and the park are io_uring
 * waits instead (conn_nap, conn_wait): the park arms a futex wait over every ring's word and
 * the cq word with ring_park_begin's protocol and sleeps until that or a completion of the
 * connection comes, and the turn's publishes leave with that same io_uring_enter.
 */
#ifndef MF_RELAY_PUMP_H
#define MF_RELAY_PUMP_H

#include <stddef.h>

#include "cfg.h"
#include "ring.h"
#include "stats.h"

#define PUMP_WINDOW  4096
#define PUMP_STOP_MS 5000

typedef struct pump pump;

/* Builds the pump over every worker's output ring of c (attached as their consumer, detached
 * by pump_destroy) and one connection per client of c (created, not yet connected). slot is
 * the relay's stats slot (may be NULL). 0, -ENOMEM, -EINVAL (a client the MQTT library
 * refuses, logged), or ring_attach's -errno (a ring the supervisor did not create, logged). */
int pump_create(const cfg *c, stats_slot *slot, pump **out);
/* Lets `mqttflow tap --at out` attach (tap.h): seg is the stats segment (not owned). */
void pump_watch_taps(pump *p, stats *seg);
/* Runs until stage_stop_flag and the drain (see above); returns an MF_EXIT_* code. */
int pump_run(pump *p);
/* Destroys connections and windows and detaches the rings. Accepts NULL. */
void pump_destroy(pump *p);

#endif
