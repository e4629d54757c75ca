/* workers/step_aggregate, step_on_change, step_throttle, step_batch over the worker's state
 * segment: a chain set built by a child process that dies of SIGKILL leaves its state to the
 * next one (the test process), which carries on: sums and counts continue, known values stay
 * known, the bucket stays spent, a pending batch is completed; records the child applied
 * and the parent reads again (same input positions) are not counted twice. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "wsfx.h"

enum { R_AGG = 0, R_OC = 1, R_THR = 2, R_BATCH = 3 };

static const char *yaml_fmt =
    WT_ONE_CLIENT "rules:\n"
                  "  - {rule: agg, source_client_id: c1, topic: \"in/#\", action: agg}\n"
                  "  - {rule: oc, source_client_id: c1, topic: \"in/#\", action: oc}\n"
                  "  - {rule: thr, source_client_id: c1, topic: \"in/#\", action: thr}\n"
                  "  - {rule: bat, source_client_id: c1, topic: \"in/#\", action: bat}\n"
                  "processing_chains:\n"
                  "  agg: [{step: aggregate, config: {interval: %d, fn: sum, field: v}}]\n"
                  "  oc: [{step: on_change, config: {field: v}}]\n"
                  "  thr: [{step: throttle, config: {interval: 600}}]\n"
                  "  bat: [{step: batch, config: {count: 3}}]\n"
                  "runtime: {instance: \"%s\", workers: 1}\n";

static int setup(void **state)
{
    wsfx *f = wsfx_new("ss");
    return wsfx_setup(state, f, f ? wt_cfg(yaml_fmt, 600, f->instance) : NULL);
}

static int teardown(void **state)
{
    return wsfx_free(*state);
}

/* The first worker: positions 1..3 of every rule, then SIGKILL. */
static void first_steps(wsfx *f)
{
    wsfx_feed(f, R_AGG, "in/a", "{\"v\": 1}", 1);
    wsfx_feed(f, R_AGG, "in/a", "{\"v\": 2}", 2);
    wsfx_feed(f, R_OC, "in/a", "{\"v\": 7}", 3);
    wsfx_feed(f, R_THR, "in/a", "t1", 4);
    wsfx_feed(f, R_BATCH, "in/a", "1", 5);
    wsfx_feed(f, R_BATCH, "in/a", "2", 6);
}

static void test_state_steps_carry_on_after_a_crash(void **state)
{
    wsfx *f = *state;
    wsfx_crash_after(f, first_steps);
    wsfx_build(f);
    assert_true(wstate_adopted(f->ws));
    /* the records the first worker applied come again (not released): no effect twice */
    wsfx_feed(f, R_AGG, "in/a", "{\"v\": 1}", 1);
    wsfx_feed(f, R_AGG, "in/a", "{\"v\": 2}", 2);
    wsfx_feed(f, R_OC, "in/a", "{\"v\": 7}", 3);
    wsfx_feed(f, R_BATCH, "in/a", "1", 5);
    wsfx_feed(f, R_BATCH, "in/a", "2", 6);
    size_t before = f->sink.n;
    /* on_change: the first worker's output may have been lost, so its own record passes again
     * (at-least-once); a repeat from a new record is dropped, a change passes */
    assert_int_equal(before, 1);
    assert_string_equal(f->sink.recs[0].payload, "{\"v\": 7}");
    wsfx_feed(f, R_OC, "in/a", "{\"v\": 7}", 10);
    assert_int_equal(f->sink.n, before);
    wsfx_feed(f, R_OC, "in/a", "{\"v\": 8}", 11);
    assert_int_equal(f->sink.n, before + 1);
    /* throttle: one per 600 s, spent by the first worker */
    wsfx_feed(f, R_THR, "in/a", "t2", 12);
    assert_int_equal(f->sink.n, before + 1);
    /* batch of 3: two from the first worker, one new */
    wsfx_feed(f, R_BATCH, "in/a", "3", 13);
    assert_int_equal(f->sink.n, before + 2);
    assert_string_equal(f->sink.recs[before + 1].payload, "[1,2,3]");
    /* aggregate: 1 + 2 from the first worker, + 4 */
    wsfx_feed(f, R_AGG, "in/a", "{\"v\": 4}", 14);
    chain_close_all(f->cs);
    assert_int_equal(f->sink.n, before + 3);
    assert_string_equal(f->sink.recs[before + 2].payload,
                        "{\"fn\":\"sum\",\"field\":\"v\",\"value\":7,\"count\":3}");
}

static void test_state_steps_changed_config_starts_fresh(void **state)
{
    wsfx *f = *state;
    wsfx_crash_after(f, first_steps);
    cfg_destroy(f->c);
    f->c = wt_cfg(yaml_fmt, 300, f->instance); /* another interval: the sums start over */
    assert_non_null(f->c);
    wsfx_build(f);
    assert_false(wstate_adopted(f->ws));
    wsfx_feed(f, R_AGG, "in/a", "{\"v\": 4}", 1);
    chain_close_all(f->cs);
    assert_int_equal(f->sink.n, 1);
    assert_string_equal(f->sink.recs[0].payload,
                        "{\"fn\":\"sum\",\"field\":\"v\",\"value\":4,\"count\":1}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_state_steps_carry_on_after_a_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_steps_changed_config_starts_fresh, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
