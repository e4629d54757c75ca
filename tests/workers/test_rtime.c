/* workers/rtime: per-rule processing times timed per group of records. Fast groups count
 * every record in the first bucket with the exact sum; a slow group of several records
 * counts one record at the group's time and shrinks the groups to one record, which are then
 * timed exactly; groups grow back by doubling up to RTIME_GROUP; a change of rule or a full
 * group is due; errors are counted whatever the group. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "workers/rtime.h"

#define US 1000ull

static uint64_t hist_sum(const stats_rule_row *r)
{
    uint64_t s = 0;
    for (int b = 0; b < STATS_HIST_N; b++)
        s += r->hist[b];
    return s;
}

/* bucket of ns, as stats_rule_done counts it */
static int bucket(uint64_t ns)
{
    stats_rule_row r;
    memset(&r, 0, sizeof(r));
    stats_rule_done(&r, 0, ns);
    for (int b = 0; b < STATS_HIST_N; b++)
        if (r.hist[b])
            return b;
    return -1;
}

/* A timer opened at now with an empty row. */
static void fresh(rtime *t, stats_rule_row *row, uint64_t now)
{
    memset(t, 0, sizeof(*t));
    memset(row, 0, sizeof(*row));
    rtime_start(t, now);
}

/* Runs n records of rule 0, each dt_ns long except record slow_at (-1: none), slow_ns long,
 * the first `errors` of them failing, the way run.c drives rtime; closes at the end. */
static uint64_t run_records(rtime *t, stats_rule_row *row, uint64_t now, int n, uint64_t dt_ns,
                            int errors, int slow_at, uint64_t slow_ns)
{
    for (int i = 0; i < n; i++) {
        if (rtime_due(t, 0))
            rtime_close(t, now, row);
        now += i == slow_at ? slow_ns : dt_ns;
        rtime_add(t, 0, i < errors);
    }
    rtime_close(t, now, row);
    return now;
}

static void test_rtime_fast_records_grow_groups_and_count_exactly(void **state)
{
    (void)state;
    rtime t;
    stats_rule_row row;
    fresh(&t, &row, 1000);
    assert_int_equal(t.size, 1);
    run_records(&t, &row, 1000, 100, 100, 3, -1, 0);
    assert_int_equal(row.processed, 100);
    assert_int_equal(row.errors, 3);
    assert_int_equal(row.sum_ns, 100 * 100);
    assert_int_equal(row.hist[0], 100);
    assert_int_equal(t.size, RTIME_GROUP); /* 1, 2, 4, 8, 16, 16, ... */
}

static void test_rtime_slow_record_in_a_group_then_exact_per_record(void **state)
{
    (void)state;
    rtime t;
    stats_rule_row row;
    fresh(&t, &row, 0);
    uint64_t now = run_records(&t, &row, 0, 64, 100, 0, -1, 0);
    assert_int_equal(t.size, RTIME_GROUP);
    /* a group of RTIME_GROUP in which one record takes 1 ms */
    now = run_records(&t, &row, now, RTIME_GROUP, 100, 0, 5, 1000 * US);
    assert_int_equal(row.processed, 64 + RTIME_GROUP);
    assert_int_equal(hist_sum(&row), row.processed);
    assert_int_equal(row.hist[bucket(1000 * US + (RTIME_GROUP - 1) * 100)], 1);
    assert_int_equal(row.hist[0], 64 + RTIME_GROUP - 1);
    assert_int_equal(row.sum_ns, 64 * 100 + 1000 * US + (RTIME_GROUP - 1) * 100);
    assert_int_equal(t.size, 1);
    /* now every slow record is timed on its own, exactly */
    memset(&row, 0, sizeof(row));
    run_records(&t, &row, now, 3, 50 * US, 1, -1, 0);
    assert_int_equal(row.processed, 3);
    assert_int_equal(row.errors, 1);
    assert_int_equal(row.hist[bucket(50 * US)], 3);
    assert_int_equal(t.size, 1);
}

static void test_rtime_rule_change_is_due_and_empty_close_counts_nothing(void **state)
{
    (void)state;
    rtime t;
    stats_rule_row row;
    fresh(&t, &row, 0);
    assert_false(rtime_due(&t, 7)); /* empty */
    rtime_close(&t, 5 * US, &row);
    assert_int_equal(row.processed, 0);
    assert_int_equal(t.mark_ns, 5 * US);
    rtime_add(&t, 7, false);
    t.size = 4;
    assert_false(rtime_due(&t, 7));
    assert_true(rtime_due(&t, 8));
    rtime_close(&t, 5 * US + 10, NULL); /* a rule without a row: nothing counted, no crash */
    assert_int_equal(t.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rtime_fast_records_grow_groups_and_count_exactly),
        cmocka_unit_test(test_rtime_slow_record_in_a_group_then_exact_per_record),
        cmocka_unit_test(test_rtime_rule_change_is_due_and_empty_close_counts_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
