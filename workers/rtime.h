/* rtime: the per-rule processing times of a worker (`status --rules`, stats.h), timed per
 * group of consecutive records of one rule.
 *
 * Why groups: a fine clock read costs 22 ns here (vDSO), a fifth of a forwarding record's
 * whole cost in the worker; one read per group of up to RTIME_GROUP records makes it about
 * 1 ns per record. What it keeps: processed, errors and sum_ns are exact; the histogram is
 * exact while a group takes under STATS_HIST_BASE_NS (4 us), since then each of its records
 * did and all are counted in the first bucket. A group of several records that took longer
 * is counted as one record of the group's time and the others in the first bucket (the split
 * is unknown: one slow record among fast ones is the likely case), and the next groups hold
 * one record each, so a slow rule is timed record by record; each fast group doubles the
 * group size again, up to RTIME_GROUP. A group's time runs from the end of the one before
 * (or the start of the batch): the worker's own handling of a record (decoding, and for a
 * rare skipped one a log line and a dead letter) counts in it, tens of ns.
 *
 * One thread; the caller reads the clock and finds the stats row, so this is pure.
 */
#ifndef MF_WORKERS_RTIME_H
#define MF_WORKERS_RTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stats.h"

#define RTIME_GROUP 16

typedef struct rtime {
    uint64_t mark_ns; /* start of the open group (the end of the one before) */
    size_t rule;      /* of the open group's records */
    unsigned n;       /* records in the open group */
    unsigned errors;  /* of them, those whose processing failed */
    unsigned size;    /* records the open group may hold, 1..RTIME_GROUP */
} rtime;

/* Opens an empty group at now (the start of a batch); keeps the group size learnt so far. */
void rtime_start(rtime *t, uint64_t now_ns);

/* Whether the open group must be closed before a record of rule runs: it holds records and
 * they are of another rule, or it is full. */
static inline bool rtime_due(const rtime *t, size_t rule)
{
    return t->n && (t->rule != rule || t->n >= t->size);
}

/* Adds a record of rule that has just run (err: its processing failed) to the open group. */
static inline void rtime_add(rtime *t, size_t rule, bool err)
{
    t->rule = rule;
    t->n++;
    t->errors += err;
}

/* Counts the open group in row (its rule's row, NULL: not counted) with the time up to
 * now_ns, and opens the next group at now_ns. An empty group counts nothing. */
void rtime_close(rtime *t, uint64_t now_ns, stats_rule_row *row);

#endif
