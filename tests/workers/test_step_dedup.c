/* workers/step_dedup over the worker's state segment: a repeat within the window is dropped
 * and counted; the window starts at the first sighting and repeats do not extend it; a key
 * path compares one field (as JSON values); a message without the key passes unremembered;
 * the table is bounded (DEDUP_MAX_KEYS: a full bucket forgets its oldest key, logged); the
 * table survives a worker's SIGKILL, and a message re-read after it that had started a window
 * passes again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <time.h>

#include "clock.h"
#include "wsfx.h"
#include "tests/tools/testlib.h"

enum { R_WHOLE = 0, R_KEY = 1, R_SHORT = 2 };
#define SHORT_S 0.4 /* rule R_SHORT's window */

static const char *yaml_fmt =
    WT_ONE_CLIENT "rules:\n"
                  "  - {rule: whole, source_client_id: c1, topic: \"in/#\", action: whole}\n"
                  "  - {rule: key, source_client_id: c1, topic: \"in/#\", action: key}\n"
                  "  - {rule: short, source_client_id: c1, topic: \"in/#\", action: short}\n"
                  "processing_chains:\n"
                  "  whole: [{step: dedup, config: {window: 1h}}]\n"
                  "  key: [{step: dedup, config: {window: 600, key: payload.id}}]\n"
                  "  short: [{step: dedup, config: {window: 400ms}}]\n"
                  "runtime: {instance: \"%s\", workers: 1}\n";

static int setup(void **state)
{
    wsfx *f = wsfx_new("dd");
    return wsfx_setup(state, f, f ? wt_cfg(yaml_fmt, f->instance) : NULL);
}

static int teardown(void **state)
{
    return wsfx_free(*state);
}

/* Feeds one message; 1 when it came out of the chain, 0 when it was dropped. */
static int feed(wsfx *f, int rule, const char *payload, uint64_t pos)
{
    return (int)wsfx_feed(f, rule, "in/a", payload, pos);
}

static uint64_t dropped(const wsfx *f)
{
    return f->slot.dropped;
}

static void sleep_until(uint64_t mono_ns)
{
    struct timespec ts = {.tv_sec = (time_t)(mono_ns / 1000000000u),
                          .tv_nsec = (long)(mono_ns % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0)
        ;
}

static void test_step_dedup_drops_repeats_within_the_window(void **state)
{
    wsfx *f = *state;
    wsfx_build(f);
    assert_int_equal(feed(f, R_WHOLE, "a", 0), 1);
    assert_int_equal(feed(f, R_WHOLE, "a", 0), 0);
    assert_int_equal(feed(f, R_WHOLE, "b", 0), 1);
    assert_int_equal(feed(f, R_WHOLE, "a", 0), 0);
    assert_int_equal(dropped(f), 2);
    /* per rule: another rule's step has its own table */
    assert_int_equal(feed(f, R_SHORT, "a", 0), 1);
}

static void test_step_dedup_window_is_not_extended_by_repeats(void **state)
{
    wsfx *f = *state;
    wsfx_build(f);
    uint64_t t0 = clock_mono_ns(), win = (uint64_t)(SHORT_S * 1e9);
    assert_int_equal(feed(f, R_SHORT, "x", 0), 1);
    /* a repeat half-way: dropped, and, were it to extend the window, the next check would
     * drop too */
    sleep_until(t0 + win / 2);
    if (clock_mono_ns() < t0 + win - win / 8) /* a descheduled test cannot tell: skip the check */
        assert_int_equal(feed(f, R_SHORT, "x", 0), 0);
    sleep_until(t0 + win + win / 8);
    assert_int_equal(feed(f, R_SHORT, "x", 0), 1); /* the next window starts here */
    assert_int_equal(feed(f, R_SHORT, "x", 0), 0);
}

static void test_step_dedup_key_path(void **state)
{
    wsfx *f = *state;
    wsfx_build(f);
    assert_int_equal(feed(f, R_KEY, "{\"id\": 1, \"v\": 1}", 0), 1);
    assert_int_equal(feed(f, R_KEY, "{\"v\": 2, \"id\": 1}", 0), 0);
    assert_int_equal(feed(f, R_KEY, "{\"id\": 2, \"v\": 1}", 0), 1);
    assert_int_equal(feed(f, R_KEY, "{\"id\": \"1\"}", 0), 1); /* a string is not a number */
    /* JSON values compare as values */
    assert_int_equal(feed(f, R_KEY, "{\"id\": {\"a\": 1, \"b\": 2}}", 0), 1);
    assert_int_equal(feed(f, R_KEY, "{\"id\": { \"b\" : 2, \"a\" : 1 }}", 0), 0);
    assert_int_equal(dropped(f), 2);
}

static void test_step_dedup_missing_key_passes(void **state)
{
    wsfx *f = *state;
    wsfx_build(f);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(feed(f, R_KEY, "{\"other\": 1}", 0), 1);
        assert_int_equal(feed(f, R_KEY, "not json", 0), 1);
    }
    assert_int_equal(dropped(f), 0);
}

/* The documented capacity: DEDUP_MAX_KEYS = 8192 buckets x 8 keys, a region that does not
 * grow; twice as many keys as fit make every bucket forget its oldest (logged), keep its
 * newest. */
static void test_step_dedup_table_is_bounded(void **state)
{
    wsfx *f = *state;
    const size_t cap = 8192 * 8, n = 2 * cap;
    wsfx_build(f);
    size_t len = 0;
    assert_non_null(wstate_region(f->ws, R_WHOLE, 0, &len));
    assert_int_equal(len, chain_state_size(&f->c->chains[0].steps[0]));
    assert_true(len >= cap * 24 && len < cap * 24 + 4096); /* {key, first, pos} per key */

    wt_capture cap_log;
    char log[8192];
    char p[32];
    wt_capture_start(&cap_log);
    for (size_t i = 0; i < n; i++) {
        snprintf(p, sizeof(p), "k%zu", i);
        feed(f, R_WHOLE, p, 0);
    }
    wt_capture_end(&cap_log, log, sizeof(log));
    assert_int_equal(dropped(f), 0);
    assert_non_null(strstr(log, "the oldest forgotten"));

    /* the newest keys are all still known; nearly all of the first ones were forgotten (a
     * bucket that received 8 keys or fewer keeps them: about 2% of them) */
    size_t newest_kept = 0, oldest_passed = 0;
    for (size_t i = n - 1000; i < n; i++) {
        snprintf(p, sizeof(p), "k%zu", i);
        newest_kept += feed(f, R_WHOLE, p, 0) == 0;
    }
    for (size_t i = 0; i < 1000; i++) {
        snprintf(p, sizeof(p), "k%zu", i);
        oldest_passed += feed(f, R_WHOLE, p, 0) == 1;
    }
    assert_int_equal(newest_kept, 1000);
    assert_true(oldest_passed > 900);
}

/* A worker that sees "a" (position 1) and "b" (position 2), then dies of SIGKILL. */
static void first_steps(wsfx *f)
{
    if (feed(f, R_WHOLE, "a", 1) != 1 || feed(f, R_WHOLE, "b", 2) != 1)
        _exit(1);
}

static void test_step_dedup_survives_a_crash(void **state)
{
    wsfx *f = *state;
    wsfx_crash_after(f, first_steps);
    wsfx_build(f);
    assert_true(wstate_adopted(f->ws));
    /* position 2 is read again (it was not released): it started b's window, so it passes
     * again (its output may be lost with the dead worker); a new "b" and "a" are repeats */
    assert_int_equal(feed(f, R_WHOLE, "b", 2), 1);
    assert_int_equal(feed(f, R_WHOLE, "b", 3), 0);
    assert_int_equal(feed(f, R_WHOLE, "a", 4), 0);
    assert_int_equal(feed(f, R_WHOLE, "c", 5), 1);
    assert_int_equal(dropped(f), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST_ST(test_step_dedup_drops_repeats_within_the_window),
        TEST_ST(test_step_dedup_window_is_not_extended_by_repeats),
        TEST_ST(test_step_dedup_key_path),
        TEST_ST(test_step_dedup_missing_key_passes),
        TEST_ST(test_step_dedup_table_is_bounded),
        TEST_ST(test_step_dedup_survives_a_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
