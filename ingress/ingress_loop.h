/* ingress_loop: one ingress's life, from the attached ring to the drain on stop (the
 * mqttflow-ingress process; its main.c only wires it into stage_main, common/stage.h).
 *
 * create attaches the ingress ring as producer, prepares intake (ingress/intake.h) with the
 * ingress's spool (runtime.spool_dir/ingress<i>.<instance>/, for messages that find the ring
 * full; without it, a disk or io_uring problem, the ingress still runs and a full ring blocks
 * the broker connection as before), its dead-letter store and its stall limit, and creates
 * the broker connection of the client's kind (sub_ops.h: paho or io_uring), not yet started.
 *
 * run connects and subscribes, reports ready once subscribed (or once connecting has failed
 * for READY_UNCONNECTED_MS: the stage is up and retries by itself), then until
 * stage_stop_flag keeps the heartbeat and the connection state in the stats slot, resumes a
 * paused subscription once the ring has room, and drains the spool into the ring. On stop it
 * disconnects first (nothing more arrives), lets the spool drain into the ring for a bounded
 * time (what is left stays on disk for the next start) and flushes the ring.
 *
 * One thread calls these; the connection's own thread (paho) or the loop's poll (io_uring)
 * delivers messages into intake.
 */
#ifndef MF_INGRESS_LOOP_H
#define MF_INGRESS_LOOP_H

#include <stddef.h>

#include "cfg.h"
#include "stats.h"

typedef struct ingress_loop ingress_loop;

/* Ingress `index` (the index-th client with topics) of c; slot is its stats slot. c and slot
 * must outlive it. 0 and *out, or -errno (logged): -EINVAL when the MQTT library refuses the
 * client (a configuration error), -ENOENT when the ring is missing, -ENOMEM. Nothing is left
 * attached on failure. */
int ingress_loop_create(const cfg *c, size_t index, stats_slot *slot, ingress_loop **out);
/* Runs until stage_stop_flag, then disconnects and drains (see above). Returns 0. */
int ingress_loop_run(ingress_loop *l);
/* Destroys the connection, intake and spool, detaches the ring; accepts NULL. */
void ingress_loop_destroy(ingress_loop *l);

#endif
