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

#include "atom.h"
#include "shm.h"

enum stats_stage { STATS_SUPERVISOR = 0, STATS_INGRESS, STATS_ROUTER, STATS_WORKER, STATS_RELAY };

#define STATS_EXTRA_MAX 6 /* stats_slot.extra[]: room for every kind's extras */

/* One stage's counters: a *_layout exception to opacity (fixed width, 128 bytes). */
typedef struct stats_slot {
    uint64_t pid;                    /* current process, 0 = not running */
    uint64_t in;                     /* records/messages taken in */
    uint64_t out;                    /* records/messages handed on / published */
    uint64_t errors;                 /* callback errors, publish failures, bad records */
    uint64_t dropped;                /* dropped by policy (overflow: drop), unmatched (router) */
    uint64_t dead;                   /* dead-lettered */
    uint64_t restarts;               /* written by the supervisor */
    uint64_t heartbeat_ns;           /* monotonic time of the stage's last loop turn */
    uint64_t busy_since_ns;          /* worker: monotonic start of the running callback, 0 = idle */
    uint64_t connected;              /* ingress/relay: broker connections up (bitmask by target) */
    uint64_t extra[STATS_EXTRA_MAX]; /* stage-specific: the stage kind's enum and table below */
} stats_slot;
_Static_assert(sizeof(stats_slot) == 128, "stats_slot layout");

/* Extra counters: stats_slot.extra[] of each stage kind, one enum per kind (its index into
 * extra[]) and one table (stats_extra_defs: name, counter or gauge, Prometheus family, help).
 * The stage writes them by their enum name, never a bare index; `mqttflow status --json`
 * ("extra" of a stage) and `--prom` / /metrics read them through the table, so adding one is
 * a new enum value and one table row in common/stats.c (ARCHITECTURE.md says where else).
 * A counter only grows (stats_add) and counts across restarts like the common ones; a gauge
 * is a value of now (stats_set); an internal field is a hand-over between processes, not
 * shown. The supervisor (STATS_SUPERVISOR) has none. */
enum stats_extra_type { STATS_EXTRA_COUNTER, STATS_EXTRA_GAUGE, STATS_EXTRA_INTERNAL };

typedef struct stats_extra_def {
    const char *name; /* key in a stage's "extra" object of status --json */
    enum stats_extra_type type;
    /* Prometheus family (labels instance, stage, id; samples only for stages of this kind);
     * rows of several kinds may share one family with one type and help. NULL: internal. */
    const char *metric;
    const char *help;
} stats_extra_def;

/* The ingress: messages that went through its disk spool because the ring was full (a
 * counter), and messages in the spool now (a gauge), written by ingress/intake.c; the hash of
 * broker URI and client id of the persistent session it had (internal, 0 = none) and the
 * sessions the broker no longer had on a reconnect (a counter), written by
 * ingress/subscriber.c (subscriber_session_check: a lost session across ingress restarts). */
enum stats_ingress_extra {
    STATS_I_SPOOLED,
    STATS_I_SPOOL_NOW,
    STATS_I_SESSION,
    STATS_I_SESSIONS_LOST,
    STATS_I_N
};
/* The router: messages that matched no rule (also counted in dropped). router/route.c. */
enum stats_router_extra { STATS_RT_UNMATCHED, STATS_RT_N };
/* The relay (relay/pump.c): records in its disk spools now, stored and not yet published (a
 * gauge); REC_DEAD records received from the workers, and dead letters stored (durable in
 * the dead-letter file), both counters. */
enum stats_relay_extra { STATS_RL_SPOOL_NOW, STATS_RL_DEAD_IN, STATS_RL_DEAD_STORED, STATS_RL_N };

/* The worker: internal fields, why the last worker of the slot died, for its successor's dead
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
enum stats_worker_extra { STATS_W_DEATH, STATS_W_TIMEOUT_NS, STATS_W_BACKSTOP_NS, STATS_W_N };
#define STATS_W_DEATH_SIG      0xffu
#define STATS_W_DEATH_BACKSTOP 0x100u

/* The table of kind's extras: entry i describes extra[i]; *n of them (0: none). Static
 * storage; never fails. */
const stats_extra_def *stats_extra_defs(enum stats_stage kind, size_t *n);

/* Per-rule counters (`mqttflow status --rules`, /metrics), after the slots. The router is the
 * one writer of each rule's matched counter; each worker has its own row per rule (a worker
 * writes only its own, so every counter stays single-writer) and readers sum the rows. The
 * histogram counts processing times (chain_run of one message, callbacks and steps) in
 * power-of-two buckets: bucket b holds times below STATS_HIST_BASE_NS << b, the last one
 * everything longer. Only the first STATS_MAX_RULES rules are counted (the stage totals
 * still count every rule): the segment stays below 64 workers x 1024 rules x 192 bytes. */
#define STATS_MAX_RULES    1024
#define STATS_HIST_N       20
#define STATS_HIST_BASE_NS 4000ull /* 4 us .. 2 s doubling, then "longer" */

typedef struct stats_rule_row {
    uint64_t processed; /* messages run through the rule's callback or chain */
    uint64_t errors;    /* runs that returned an error */
    uint64_t dead;      /* messages of the rule dead-lettered by the worker */
    uint64_t sum_ns;    /* total processing time */
    uint64_t hist[STATS_HIST_N];
} stats_rule_row;
_Static_assert(sizeof(stats_rule_row) == 192, "stats_rule_row layout");

/* The router's per-rule counts of messages a rule could not judge (router/rule.h
 * rule_counters), after the worker rows; the router is their one writer (it adds what its
 * rule set counted since it last published, so they count across its restarts). */
typedef struct stats_rule_router {
    uint64_t match_limit;  /* the regex stopped at PCRE2's match or depth limit */
    uint64_t json_invalid; /* the condition met a payload that is not JSON */
} stats_rule_router;
_Static_assert(sizeof(stats_rule_router) == 16, "stats_rule_router layout");

typedef struct stats stats;

/* Supervisor: creates the segment with n_slots slots (shm_create semantics). */
int stats_create(const char *name, size_t n_slots, stats **out);
/* The same with room for the per-rule counters of n_rules rules (capped at STATS_MAX_RULES)
 * and n_workers workers; 0 rules: none. */
int stats_create_rules(const char *name, size_t n_slots, size_t n_rules, size_t n_workers,
                       stats **out);
/* Any stage or the CLI: maps an existing segment. 0, -ENOENT, -EPROTO. */
int stats_attach(const char *name, stats **out);
void stats_detach(stats *s); /* accepts NULL */
size_t stats_slot_count(const stats *s);
/* The slot at idx (< stats_slot_count), valid until stats_detach. */
stats_slot *stats_slot_at(stats *s, size_t idx);

/* Generation of the tap at point (tap.h enum tap_point, < 3): 0 = none, else the tap
 * segment of that point exists and changes with every new tap. Written by the supervisor with
 * a release store after creating the segment; stages read it with an acquire load
 * (tap_port_sync). */
uint64_t *stats_tap_gen(stats *s, int point);

/* Rules counted (min(config's, STATS_MAX_RULES)) and worker rows per rule. */
size_t stats_rule_count(const stats *s);
size_t stats_rule_workers(const stats *s);
/* The router's matched counter of rule, NULL when the rule is not counted. */
uint64_t *stats_rule_matched(stats *s, size_t rule);
/* Worker w's row of rule, NULL when not counted. Valid until stats_detach. */
stats_rule_row *stats_rule_row_at(stats *s, size_t w, size_t rule);
/* The router's counters of rule, NULL when the rule is not counted. */
stats_rule_router *stats_rule_router_at(stats *s, size_t rule);
/* Quantile q (0..1) of the summed histogram h, in ns: the upper bound of the bucket that
 * holds it (the last bucket: its lower bound). -1 when h is empty. */
double stats_hist_quantile(const uint64_t *h, double q);

/* Slot layout: 0 supervisor, 1 router, 2 relay, then the ingresses, then the workers. idx is
 * the ingress or worker index (ignored for the singletons). */
size_t stats_slot_index(enum stats_stage kind, size_t idx, size_t n_ingress);
size_t stats_slot_total(size_t n_ingress, size_t n_workers);

/* Single-writer increment of a counter of one's own slot. */
static inline void stats_add(uint64_t *counter, uint64_t n)
{
    /* relaxed load and store, no RMW: only this process writes the counter (a plain load of
     * one's own value is exact), readers take snapshots and need no ordering */
    atom_store_relaxed(counter, atom_load_relaxed(counter) + n);
}
static inline void stats_set(uint64_t *field, uint64_t v)
{
    atom_store_relaxed(field, v); /* relaxed: a snapshot value, orders nothing else */
}
static inline uint64_t stats_get(const uint64_t *field)
{
    return atom_load_relaxed(field); /* relaxed: a snapshot value, orders nothing else */
}

/* A worker's single-writer count of n messages of a rule, of which errors failed, that took
 * ns together, each one counted in the histogram bucket of ns_each (workers/run.c times
 * groups of records: it knows each one's bucket, not each one's time). Accepts NULL (rule
 * not counted). */
static inline void stats_rule_done_n(stats_rule_row *row, uint64_t n, uint64_t errors, uint64_t ns,
                                     uint64_t ns_each)
{
    if (!row || !n)
        return;
    unsigned b = 0;
    while (b < STATS_HIST_N - 1 && ns_each >= (STATS_HIST_BASE_NS << b))
        b++;
    stats_add(&row->processed, n);
    if (errors)
        stats_add(&row->errors, errors);
    stats_add(&row->sum_ns, ns);
    stats_add(&row->hist[b], n);
}

/* One message of a rule: err nonzero when it failed, ns its processing time. */
static inline void stats_rule_done(stats_rule_row *row, int err, uint64_t ns)
{
    stats_rule_done_n(row, 1, err != 0, ns, ns);
}

#endif
