/* topo: the shared-memory topology of one instance, created and removed by the supervisor.
 *
 * From the loaded cfg: one ring per ingress (names_ingress_ring), an input and an output ring
 * per worker (names_worker_in/out), all of runtime.ring_size bytes, and the stats segment
 * with stats_slot_total slots. Creation follows shm_create: a segment left by a dead instance
 * is reclaimed, one owned by a live supervisor fails the whole creation with -EEXIST and the
 * message "instance X is already running (pid N)". Once the stats segment is ours, any other
 * segment with the instance's name is a dead instance's and is removed first (the workers'
 * state segments included: a new instance starts empty). The supervisor keeps every ring
 * attached as RING_OBSERVER only, to read fill levels (it never touches records).
 *
 * Workers' state segments (names_worker_state) are the workers' own: a worker should attach
 * an existing one and create it only when absent (shm_create would reclaim it, since its
 * creator, a previous worker process, is dead), so that it survives the worker's restarts.
 *
 * topo_destroy unlinks every segment of the instance (whoever created it) and detaches.
 * Single-threaded (the supervisor).
 */
#ifndef MF_SUPERVISOR_TOPO_H
#define MF_SUPERVISOR_TOPO_H

#include <stddef.h>

#include "cfg.h"
#include "stats.h"

typedef struct topo topo;

/* Creates every segment of c's instance. 0 and *out; -EEXIST (a live instance owns them) or
 * another -errno with a one-line explanation in err. On failure every segment this call
 * created is unlinked again; a live instance's segments are never touched. */
int topo_create(const cfg *c, topo **out, char *err, size_t errlen);
/* Unlinks every segment of the instance and frees t. Accepts NULL; cannot fail. */
void topo_destroy(topo *t);
/* The stats segment, valid until topo_destroy. */
stats *topo_stats(topo *t);
/* Fill (used / capacity, 0..100) of the ring(s) a stage consumes; for an ingress, the ring it
 * produces into. -1 when the stage has no ring. kind is an enum stats_stage. */
int topo_fill_pct(const topo *t, enum stats_stage kind, size_t idx);
/* Bytes still in any ring (a stop that left records behind logs this). */
size_t topo_bytes_queued(const topo *t);
/* The largest record the rings accept: min(ring_size / 4, rec_size(CFG_MAX_TOPIC,
 * max_payload)) rounded down to RING_ALIGN. */
size_t topo_max_record(size_t ring_size, size_t max_payload);

#endif
