/* stats: live counters of every stage of an instance, in one shared-memory segment.
 *
 * The supervisor creates the segment with one slot per stage (stats_slot_index says which);
 * each stage attaches and is the only writer of its own slot; the supervisor and `mqttflow
 * status` only read. Counters are single-writer, so the writer uses relaxed stores of
 * incremented values (no RMW needed) and readers take relaxed snapshots: a reader may see
 * counters of one slot from slightly different moments, which a status display tolerates.
 * The slot survives a crash of its stage; the supervisor resets pid/heartbeat fields on
 * respawn, never the counters (they count across restarts).
 */
#ifndef MF_STATS_H
#define MF_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "shm.h"

enum stats_stage { STATS_SUPERVISOR = 0, STATS_INGRESS, STATS_ROUTER, STATS_WORKER, STATS_RELAY };

/* One stage's counters: a *_layout exception to opacity (fixed width, 128 bytes). */
typedef struct stats_slot {
    uint64_t pid;           /* current process, 0 = not running */
    uint64_t in;            /* records/messages taken in */
    uint64_t out;           /* records/messages handed on / published */
    uint64_t errors;        /* callback errors, publish failures, bad records */
    uint64_t dropped;       /* dropped by policy (overflow: drop), unmatched (router) */
    uint64_t dead;          /* dead-lettered */
    uint64_t restarts;      /* written by the supervisor */
    uint64_t heartbeat_ns;  /* monotonic time of the stage's last loop turn */
    uint64_t busy_since_ns; /* worker: monotonic start of the running callback, 0 = idle */
    uint64_t connected;     /* ingress/relay: broker connections up (bitmask by target) */
    uint64_t extra[6]; /* stage-specific: router unmatched = extra[0]; relay spooled = extra[0];
                          worker: STATS_W_* below */
} stats_slot;
_Static_assert(sizeof(stats_slot) == 128, "stats_slot layout");

/* A worker slot's extra[]: why the last worker of the slot died, for its successor's dead
 * letters (rec.h REC_DEAD_AUX). Each field has one writer, the usual relaxed snapshots; the
 * successor reads them at its start, after the supervisor reaped the dead one (the reap and
 * the spawn order the writes before the reads).
 * - extra[STATS_W_DEATH], supervisor, at every reap of the worker, before the respawn: the
 *   terminating signal (STATS_W_DEATH_SIG bits; 0 = it exited), or'ed with
 *   STATS_W_DEATH_BACKSTOP when the supervisor's own callback watchdog (the backstop of the
 *   worker's) sent the kill.
 * - extra[STATS_W_BACKSTOP_NS], supervisor: monotonic time of its last backstop kill, so the
 *   reap can tell it from one of an earlier worker of the slot.
 * - extra[STATS_W_TIMEOUT_NS], worker: monotonic time at which its own watchdog killed it for
 *   a callback past runtime.callback_timeout_ms, written before the kill; the successor
 *   reads it and clears it (only one worker of a slot runs at a time). */
#define STATS_W_DEATH          0
#define STATS_W_TIMEOUT_NS     1
#define STATS_W_BACKSTOP_NS    2
#define STATS_W_DEATH_SIG      0xffu
#define STATS_W_DEATH_BACKSTOP 0x100u

typedef struct stats stats;

/* Supervisor: creates the segment with n_slots slots (shm_create semantics). */
int stats_create(const char *name, size_t n_slots, stats **out);
/* Any stage or the CLI: maps an existing segment. 0, -ENOENT, -EPROTO. */
int stats_attach(const char *name, stats **out);
void stats_detach(stats *s); /* accepts NULL */
size_t stats_slot_count(const stats *s);
/* The slot at idx (< stats_slot_count), valid until stats_detach. */
stats_slot *stats_slot_at(stats *s, size_t idx);

/* Slot layout: 0 supervisor, 1 router, 2 relay, then the ingresses, then the workers. idx is
 * the ingress or worker index (ignored for the singletons). */
size_t stats_slot_index(enum stats_stage kind, size_t idx, size_t n_ingress);
size_t stats_slot_total(size_t n_ingress, size_t n_workers);

/* Single-writer increment of a counter of one's own slot. */
static inline void stats_add(uint64_t *counter, uint64_t n)
{
    /* relaxed: only this process writes the counter; readers need no ordering */
    __atomic_store_n(counter, __atomic_load_n(counter, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}
static inline void stats_set(uint64_t *field, uint64_t v)
{
    __atomic_store_n(field, v, __ATOMIC_RELAXED); /* relaxed: a snapshot value */
}
static inline uint64_t stats_get(const uint64_t *field)
{
    return __atomic_load_n(field, __ATOMIC_RELAXED); /* relaxed: a snapshot value */
}

#endif
