/* topo: the shared-memory topology of one instance, created and removed by the supervisor.
 *
 * From the loaded cfg: one ring per ingress (names_ingress_ring), an input and an output ring
 * per worker (names_worker_in/out), all of runtime.ring_size bytes, and the stats segment
 * with stats_slot_total slots. A segment owned by a live supervisor fails the whole creation
 * with -EEXIST and the message "instance X is already running (pid N)".
 *
 * Whole-tree crash (DESIGN §5): the stages die with a killed supervisor (PR_SET_PDEATHSIG),
 * the segments stay. The next run of the instance adopts every ring of its topology that it
 * finds with the same ring_size and record limit (ring_adopt), so the records that were
 * queued are processed after all (logged: "resuming N queued record(s) ... in <ring>"); the
 * consumers re-read what they had not released, at-least-once. A ring of another geometry or
 * layout version is reclaimed empty (logged), and so is one whose records were queued under
 * a config with other clients or rules (records carry their indices; the ring's tag holds a
 * fingerprint of them): those records are dropped with an error in the log rather than run
 * by the wrong rule. The stats segment is created anew: its
 * counters describe this run's processes (a dead instance's is reclaimed). The workers' state
 * segments (names_worker_state) are left alone: each worker adopts its own. Anything else
 * with the instance's name (rings of stages a bigger configuration had) is removed, with the
 * number of records lost that way in the log.
 *
 * The supervisor keeps every ring attached as RING_OBSERVER only, to read fill levels (it
 * never touches records). topo_destroy removes the segments of the instance but the rings
 * that still hold records (a stop that could not deliver everything, a failed start), kept
 * for the next run to adopt; the workers' state segments only after a clean stop.
 * Single-threaded (the supervisor).
 */
#ifndef MF_SUPERVISOR_TOPO_H
#define MF_SUPERVISOR_TOPO_H

#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "stats.h"

typedef struct topo topo;

/* Creates every segment of c's instance. 0 and *out; -EEXIST (a live instance owns them) or
 * another -errno with a one-line explanation in err. On failure every segment this call
 * created is unlinked again; a live instance's segments are never touched. */
int topo_create(const cfg *c, topo **out, char *err, size_t errlen);
/* Whether the rings of c fit the free space of /dev/shm (plus what this instance's existing
 * segments hold, which a run adopts or replaces): 0, or -ENOSPC with the sizes and the fix in
 * err (issue 8 item 6; `check` and `run` both ask it). The workers' state segments are
 * small and made later, so not counted. Cannot fail otherwise (no /dev/shm: 0). */
int topo_check_shm(const cfg *c, char *err, size_t errlen);
/* Unlinks the segments of the instance, whoever created them, and frees t. Rings that still
 * hold records are kept (logged) for the next run to adopt, and so are the workers' state
 * segments unless clean (every stage stopped by request with exit 0). Accepts NULL; cannot
 * fail. */
void topo_destroy(topo *t, int clean);
/* Queued records found in the rings adopted at creation (0: a fresh start). */
uint64_t topo_resumed_records(const topo *t);
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
