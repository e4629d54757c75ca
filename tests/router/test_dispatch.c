/* Unit tests of router/dispatch: the worker choice per execution_mode. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cfg.h"
#include "router/dispatch.h"

#define NW 4

typedef struct fixture {
    cfg c;
    cfg_rule rules[8];
    size_t load[NW];
    size_t load_calls;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    f->c.rules = f->rules;
    f->c.n_rules = 8;
    for (int i = 0; i < 8; i++)
        f->rules[i].exec_mode = (enum cfg_exec_mode)(i % 3);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

static size_t load_of(void *ctx, size_t w)
{
    fixture *f = ctx;
    assert_true(w < NW);
    f->load_calls++;
    return f->load[w];
}

static size_t pick(fixture *f, dispatch *d, size_t rule, const char *topic)
{
    size_t w = dispatch_pick(d, rule, topic, strlen(topic), load_of, f);
    assert_true(w < NW);
    return w;
}

static void test_dispatch_rejects_zero_workers(void **state)
{
    fixture *f = *state;
    dispatch *d = (dispatch *)1;
    assert_int_equal(dispatch_create(&f->c, 0, &d), -EINVAL);
    assert_null(d);
}

static void test_dispatch_sequential_is_stable(void **state)
{
    fixture *f = *state;
    dispatch *d;
    assert_int_equal(dispatch_create(&f->c, NW, &d), 0);
    /* rules 0, 3, 6 are sequential: the same worker for every message, whatever the topic
     * and the load */
    for (size_t r = 0; r < 8; r += 3) {
        size_t w0 = pick(f, d, r, "a");
        for (int i = 0; i < 1000; i++) {
            char topic[32];
            snprintf(topic, sizeof(topic), "t/%d", i);
            f->load[i % NW] = (size_t)i * 100;
            assert_int_equal(pick(f, d, r, topic), w0);
        }
    }
    /* and the sequential rules (0, 3, 6 between rules of other modes) take one worker each */
    assert_int_equal(pick(f, d, 0, "a"), 0);
    assert_int_equal(pick(f, d, 3, "a"), 1);
    assert_int_equal(pick(f, d, 6, "a"), 2);
    assert_int_equal(f->load_calls, 0);
    dispatch_destroy(d);
}

static void test_dispatch_per_topic_stable_and_spread(void **state)
{
    fixture *f = *state;
    dispatch *d;
    size_t per_worker[NW] = {0};
    assert_int_equal(dispatch_create(&f->c, NW, &d), 0);
    for (int i = 0; i < 400; i++) {
        char topic[32];
        snprintf(topic, sizeof(topic), "home/room%d/temp", i);
        size_t w = pick(f, d, 2, topic); /* rule 2: per_topic */
        per_worker[w]++;
        for (int k = 0; k < 5; k++) {
            f->load[k % NW] = (size_t)(k * 1000 + i);
            assert_int_equal(pick(f, d, 2, topic), w); /* stable per topic */
            assert_int_equal(pick(f, d, 5, topic), w); /* and across per_topic rules */
        }
    }
    /* every worker gets a fair share of 400 topics (expected 100 each) */
    for (int w = 0; w < NW; w++)
        assert_true(per_worker[w] > 50);
    assert_int_equal(f->load_calls, 0);
    /* the hash is FNV-1a 64: fixed across processes and restarts */
    assert_true(dispatch_topic_hash("", 0) == 14695981039346656037ull);
    assert_true(dispatch_topic_hash("a", 1) == 0xaf63dc4c8601ec8cull);
    dispatch_destroy(d);
}

static void test_dispatch_parallel_picks_least_loaded(void **state)
{
    fixture *f = *state;
    dispatch *d;
    assert_int_equal(dispatch_create(&f->c, NW, &d), 0);
    f->load[0] = 500;
    f->load[1] = 100;
    f->load[2] = 50;
    f->load[3] = 900;
    assert_int_equal(pick(f, d, 1, "x"), 2); /* rule 1: parallel */
    f->load[2] = 1000;
    assert_int_equal(pick(f, d, 1, "x"), 1);
    f->load[0] = 0;
    assert_int_equal(pick(f, d, 4, "y"), 0);
    dispatch_destroy(d);
}

static void test_dispatch_parallel_ties_round_robin(void **state)
{
    fixture *f = *state;
    dispatch *d;
    size_t count[NW] = {0};
    assert_int_equal(dispatch_create(&f->c, NW, &d), 0);
    /* equal load: every worker is used, in turn */
    for (int i = 0; i < 400; i++)
        count[pick(f, d, 1, "x")]++;
    for (int w = 0; w < NW; w++)
        assert_int_equal(count[w], 100);
    /* simulated queues: a pick adds load, so the spread stays even */
    memset(count, 0, sizeof(count));
    for (int i = 0; i < 400; i++) {
        size_t w = pick(f, d, 1, "x");
        count[w]++;
        f->load[w] += 10;
    }
    for (int w = 0; w < NW; w++)
        assert_int_equal(count[w], 100);
    dispatch_destroy(d);
}

static void test_dispatch_one_worker(void **state)
{
    fixture *f = *state;
    dispatch *d;
    assert_int_equal(dispatch_create(&f->c, 1, &d), 0);
    for (size_t r = 0; r < 8; r++)
        assert_int_equal(dispatch_pick(d, r, "t", 1, load_of, f), 0);
    dispatch_destroy(d);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_dispatch_rejects_zero_workers),        T(test_dispatch_sequential_is_stable),
        T(test_dispatch_per_topic_stable_and_spread), T(test_dispatch_parallel_picks_least_loaded),
        T(test_dispatch_parallel_ties_round_robin),   T(test_dispatch_one_worker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
