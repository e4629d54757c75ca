/* pump: the relay's main loop (DESIGN §1, §5).
 *
 * Reads every worker's output ring, publishes each REC_PUBLISH record on its target client's
 * connection (conn.h) and releases ring records only once their publish completed, in ring
 * order (inflight.h): QoS 0 when paho's onSuccess says the packet was written to the socket,
 * QoS 1 on PUBACK, QoS 2 on PUBCOMP. Why onSuccess for QoS 0 too rather than "sendMessage
 * returned": a relay killed right after sendMessage would otherwise lose what paho still had
 * queued, and one accounting path for every QoS keeps the outstanding bound exact.
 *
 * Flow control: at most PUMP_MAX_OUTSTANDING publishes are handed to paho and not yet
 * finished (BASELINES pitfall 1: paho's QoS>0 publish cost grows with its queue; measured
 * here, relay CPU per QoS 1 message was ~32 us at 64-256 outstanding, 35 at 512, 43-46 at
 * 1024, for the same throughput), and at most
 * PUMP_WINDOW records per ring are read ahead of the ring's release point. When either is
 * exhausted the pump stops reading rings; the workers then feel backpressure from the full
 * ring. MQTTFLOW_RELAY_OUTSTANDING in the environment overrides the bound (benchmarks).
 *
 * A target that is down: the first record for it stops its ring at that record (unreleased:
 * nothing is lost, the ring gives backpressure) until the connection is back; records of the
 * ring already handed to paho for other targets complete normally. Publishes lost with a
 * connection or failed by paho are published again after reconnect, in ring order. (Where a
 * disk spool will slot in: instead of stopping the ring at a record for a down target, hand
 * the record to the spool and mark it done once the spool has it.)
 *
 * Records that can never be published (corrupt, unknown target, invalid topic, refused by
 * paho) are counted as errors, logged and released; REC_DEAD records are counted (stats
 * extra[1]) and released until the dead-letter store exists. Poison records: reading and
 * handing a record to paho is bracketed by ring_begin/ring_end, so a record that killed
 * runtime.max_attempts relays is skipped (logged, counted in stats `dead`) by the next one.
 *
 * Ready: stage_ready once every connection has connected or failed its first attempt, so a
 * pipeline starts even with a target broker down. Stop (stage_stop_flag): keeps reading until
 * every ring is empty and every publish completed, at most PUMP_STOP_MS, then disconnects.
 *
 * Waiting: the loop never waits while it has work. Idle, it parks in ring_wait_any on the rings
 * whose windows are empty (ring_wait_any releases what was read, which is only right when
 * everything read has completed) plus the completion queue's word, so a ring record, a paho
 * completion or a connection event wakes it; at most 200 ms.
 */
#ifndef MF_RELAY_PUMP_H
#define MF_RELAY_PUMP_H

#include <stddef.h>

#include "cfg.h"
#include "ring.h"
#include "stats.h"

#define PUMP_MAX_OUTSTANDING 256
#define PUMP_WINDOW          4096
#define PUMP_STOP_MS         5000

typedef struct pump pump;

/* Builds the pump over n_rings consumer-attached rings (borrowed; they must outlive the pump)
 * and one connection per client of c (paho handles created, not yet connected). slot is the
 * relay's stats slot (may be NULL). 0, -ENOMEM, -EINVAL (a client paho refuses, logged). */
int pump_create(const cfg *c, ring *const *rings, size_t n_rings, stats_slot *slot, pump **out);
/* Runs until stage_stop_flag and the drain (see above); returns an MF_EXIT_* code. */
int pump_run(pump *p);
/* Destroys connections and windows; the rings are the caller's. Accepts NULL. */
void pump_destroy(pump *p);

#endif
