#include "rtime.h"

void rtime_start(rtime *t, uint64_t now_ns)
{
    t->mark_ns = now_ns;
    t->n = 0;
    t->errors = 0;
    if (!t->size)
        t->size = 1;
}

void rtime_close(rtime *t, uint64_t now_ns, stats_rule_row *row)
{
    uint64_t ns = now_ns - t->mark_ns;

    t->mark_ns = now_ns;
    if (!t->n)
        return;
    if (t->n == 1 || ns < STATS_HIST_BASE_NS) {
        /* exact: one record, or each under the first bucket's bound */
        stats_rule_done_n(row, t->n, t->errors, ns, ns / t->n);
    } else {
        stats_rule_done_n(row, t->n - 1, 0, 0, 0);
        stats_rule_done_n(row, 1, t->errors, ns, ns);
    }
    if (ns < STATS_HIST_BASE_NS)
        t->size = t->size * 2 <= RTIME_GROUP ? t->size * 2 : RTIME_GROUP;
    else
        t->size = 1;
    t->n = 0;
    t->errors = 0;
}
