/* test_cq: the relay's completion queue between paho's threads and the main loop
 * (relay/cq.h): bounded slots, completion order, stale tokens, connection events, wake-up. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "clock.h"
#include "relay/cq.h"
#include "ring.h"

static cq *make(size_t slots, size_t conns)
{
    cq *q = NULL;
    assert_int_equal(cq_create(slots, conns, &q), 0);
    assert_non_null(q);
    return q;
}

static void test_cq_bounds_outstanding(void **state)
{
    (void)state;
    cq *q = make(3, 1);
    void *ctx[4];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cq_acquire(q, 0, (uint64_t)i, 0, &ctx[i]), 0);
        assert_non_null(ctx[i]);
    }
    assert_int_equal(cq_free_slots(q), 0);
    assert_int_equal(cq_acquire(q, 0, 3, 0, &ctx[3]), -EAGAIN);
    cq_cancel(q, ctx[1]);
    assert_int_equal(cq_free_slots(q), 1);
    /* a callback for the cancelled publish is ignored */
    cq_complete(ctx[1], 1);
    cq_done d[4];
    assert_int_equal(cq_drain(q, d, 4), 0);
    cq_destroy(q);
}

static void test_cq_drain_in_completion_order(void **state)
{
    (void)state;
    cq *q = make(8, 2);
    void *ctx[3];
    assert_int_equal(cq_acquire(q, 1, 10, 0, &ctx[0]), 0);
    assert_int_equal(cq_acquire(q, 2, 20, 1, &ctx[1]), 0);
    assert_int_equal(cq_acquire(q, 1, 11, 0, &ctx[2]), 0);
    cq_complete(ctx[2], 1);
    cq_complete(ctx[0], 0);
    cq_complete(ctx[1], 1);
    cq_complete(ctx[1], 1); /* a second callback for the same publish is ignored */
    cq_done d[8];
    assert_int_equal(cq_drain(q, d, 2), 2); /* bounded by max */
    assert_int_equal(d[0].seq, 11);
    assert_int_equal(d[0].ring, 1);
    assert_int_equal(d[0].result, CQ_OK);
    assert_int_equal(d[1].seq, 10);
    assert_int_equal(d[1].result, CQ_FAIL);
    assert_int_equal(cq_drain(q, d, 8), 1);
    assert_int_equal(d[0].seq, 20);
    assert_int_equal(d[0].ring, 2);
    assert_int_equal(d[0].conn, 1);
    assert_int_equal(cq_free_slots(q), 8);
    cq_destroy(q);
}

static void test_cq_fail_conn_makes_late_callbacks_stale(void **state)
{
    (void)state;
    cq *q = make(2, 2);
    void *a, *b, *c;
    assert_int_equal(cq_acquire(q, 0, 1, 0, &a), 0);
    assert_int_equal(cq_acquire(q, 0, 2, 1, &b), 0);
    cq_fail_conn(q, 0); /* connection 0 lost: only its publish is given up */
    cq_done d[4];
    assert_int_equal(cq_drain(q, d, 4), 1);
    assert_int_equal(d[0].seq, 1);
    assert_int_equal(d[0].result, CQ_LOST);
    /* the slot is reused for another record; paho's late callback for the old one must not
     * complete the new one */
    assert_int_equal(cq_acquire(q, 0, 3, 0, &c), 0);
    assert_ptr_not_equal(a, c);
    cq_complete(a, 1);
    assert_int_equal(cq_drain(q, d, 4), 0);
    cq_complete(c, 1);
    cq_complete(b, 1);
    assert_int_equal(cq_drain(q, d, 4), 2);
    assert_int_equal(d[0].seq, 3);
    assert_int_equal(d[1].seq, 2);
    cq_destroy(q);
}

static void test_cq_conn_events_and_epochs(void **state)
{
    (void)state;
    cq *q = make(1, 3);
    unsigned ev[3];
    assert_int_equal(cq_take_events(q, ev), 0);
    void *old = cq_conn_ctx(q, 2);
    cq_conn_event(old, CQ_EV_UP, 0);
    cq_conn_event(cq_conn_ctx(q, 0), CQ_EV_CONNFAIL, -1);
    assert_int_equal(cq_take_events(q, ev), 2);
    assert_int_equal(ev[0], CQ_EV_CONNFAIL);
    assert_int_equal(ev[1], 0);
    assert_int_equal(ev[2], CQ_EV_UP);
    assert_int_equal(cq_conn_code(q, 0), -1);
    assert_int_equal(cq_take_events(q, ev), 0);
    /* the handle of connection 2 is replaced: its late events are ignored */
    cq_conn_next_epoch(q, 2);
    cq_conn_event(old, CQ_EV_LOST, 0);
    assert_int_equal(cq_take_events(q, ev), 0);
    cq_conn_event(cq_conn_ctx(q, 2), CQ_EV_LOST, 0);
    assert_int_equal(cq_take_events(q, ev), 1);
    assert_int_equal(ev[2], CQ_EV_LOST);
    cq_destroy(q);
}

/* why a connection failed travels beside its event; a replaced handle's account is ignored */
static void test_cq_conn_why(void **state)
{
    (void)state;
    cq *q = make(1, 2);
    mqtt_why_fail f = {.code = 135, .reason = 0x87, .message = "CONNACK return code"}, got;
    void *old = cq_conn_ctx(q, 1);
    cq_conn_why(old, &f);
    cq_conn_why_take(q, 1, &got);
    assert_int_equal(got.reason, 0x87);
    assert_string_equal(got.message, "CONNACK return code");
    cq_conn_why_take(q, 1, &got); /* taken: cleared */
    assert_int_equal(got.code, 0);
    assert_int_equal(got.reason, 0);
    cq_conn_why(old, &f);
    cq_conn_next_epoch(q, 1); /* the new handle starts without the old account */
    cq_conn_why_take(q, 1, &got);
    assert_int_equal(got.code, 0);
    cq_conn_why(old, &f); /* late, through the replaced handle */
    cq_conn_why_take(q, 1, &got);
    assert_int_equal(got.code, 0);
    cq_conn_why_take(q, 7, &got); /* no such connection */
    assert_int_equal(got.code, 0);
    cq_destroy(q);
}

static void test_cq_tokens_of_two_queues_do_not_mix(void **state)
{
    (void)state;
    cq *q1 = make(1, 1), *q2 = make(1, 1);
    void *a, *b;
    assert_int_equal(cq_acquire(q1, 0, 5, 0, &a), 0);
    assert_int_equal(cq_acquire(q2, 0, 6, 0, &b), 0);
    assert_ptr_not_equal(a, b);
    cq_complete(b, 1);
    cq_done d[1];
    assert_int_equal(cq_drain(q1, d, 1), 0);
    assert_int_equal(cq_drain(q2, d, 1), 1);
    assert_int_equal(d[0].seq, 6);
    cq_complete(NULL, 1); /* not a token: ignored */
    cq_destroy(q1);
    cq_destroy(q2);
}

typedef struct waker {
    void *ctx;
    int delay_ms;
} waker;

static void *wake_later(void *arg)
{
    waker *w = arg;
    uint64_t end = clock_mono_ns() + (uint64_t)w->delay_ms * 1000000ull;
    while (clock_mono_ns() < end)
        ;
    cq_complete(w->ctx, 1);
    return NULL;
}

static void test_cq_completion_wakes_sleeping_loop(void **state)
{
    (void)state;
    cq *q = make(4, 1);
    void *ctx;
    uint32_t seen;
    assert_int_equal(cq_acquire(q, 0, 1, 0, &ctx), 0);
    assert_int_equal(cq_prepare_wait(q, &seen), 0);
    waker w = {ctx, 50};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, wake_later, &w), 0);
    uint64_t t0 = clock_mono_ns();
    /* 10 s timeout: returning within 2 s can only be the wake-up */
    int rc = ring_wait_any(NULL, 0, cq_word(q), seen, 10000);
    uint64_t took = clock_mono_ns() - t0;
    cq_end_wait(q);
    pthread_join(t, NULL);
    assert_int_equal(rc, 0);
    assert_true(took < 2000000000ull);
    /* something queued: the loop must not sleep */
    assert_int_equal(cq_prepare_wait(q, &seen), -EAGAIN);
    cq_done d[4];
    assert_int_equal(cq_drain(q, d, 4), 1);
    assert_int_equal(cq_prepare_wait(q, &seen), 0);
    cq_end_wait(q);
    cq_destroy(q);
}

static void test_cq_create_limits(void **state)
{
    (void)state;
    cq *q = (cq *)1;
    assert_int_equal(cq_create(0, 1, &q), -EINVAL);
    assert_null(q);
    assert_int_equal(cq_create(CQ_MAX_SLOTS + 1, 1, &q), -EINVAL);
    /* at most 15 queues per process (the token's registry) */
    cq *qs[16];
    size_t n = 0;
    while (n < 16 && cq_create(1, 1, &qs[n]) == 0)
        n++;
    assert_int_equal(n, 15);
    assert_int_equal(cq_create(1, 1, &q), -EMFILE);
    while (n > 0)
        cq_destroy(qs[--n]);
    cq_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cq_bounds_outstanding),
        cmocka_unit_test(test_cq_drain_in_completion_order),
        cmocka_unit_test(test_cq_fail_conn_makes_late_callbacks_stale),
        cmocka_unit_test(test_cq_conn_events_and_epochs),
        cmocka_unit_test(test_cq_conn_why),
        cmocka_unit_test(test_cq_tokens_of_two_queues_do_not_mix),
        cmocka_unit_test(test_cq_completion_wakes_sleeping_loop),
        cmocka_unit_test(test_cq_create_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
