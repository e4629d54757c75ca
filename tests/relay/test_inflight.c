/* test_inflight: the relay's in-order in-flight window (relay/inflight.h). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "relay/inflight.h"

static inflight *make(size_t cap)
{
    inflight *w = NULL;
    assert_int_equal(inflight_create(cap, &w), 0);
    assert_non_null(w);
    return w;
}

static uint64_t push(inflight *w, uint64_t end, uint16_t conn, uint8_t state)
{
    inflight_entry e;
    memset(&e, 0, sizeof(e));
    e.end_pos = end;
    e.conn = conn;
    e.state = state;
    return inflight_push(w, &e);
}

static void test_inflight_create_rejects_bad_capacity(void **state)
{
    (void)state;
    inflight *w = (inflight *)1;
    assert_int_equal(inflight_create(0, &w), -EINVAL);
    assert_null(w);
    assert_int_equal(inflight_create(3, &w), -EINVAL);
    assert_int_equal(inflight_create(1, &w), -EINVAL);
    inflight_destroy(NULL);
}

static void test_inflight_out_of_order_completion_releases_in_order(void **state)
{
    (void)state;
    inflight *w = make(8);
    uint64_t s[4];
    for (int i = 0; i < 4; i++) {
        s[i] = push(w, 100 * (uint64_t)(i + 1), 0, INFLIGHT_PENDING);
        assert_int_equal(s[i], (uint64_t)i);
        inflight_sent(w, s[i]);
    }
    uint64_t pos = 7;
    /* the 3rd and 4th finish first: nothing may be released past the unfinished 1st */
    inflight_done(w, s[2]);
    inflight_done(w, s[3]);
    assert_int_equal(inflight_release(w, &pos), 0);
    assert_int_equal(pos, 7);
    assert_int_equal(inflight_count(w), 4);
    /* the 1st finishes: exactly it is released */
    inflight_done(w, s[0]);
    assert_int_equal(inflight_release(w, &pos), 1);
    assert_int_equal(pos, 100);
    /* the 2nd finishes: it and the two done behind it go, up to the 4th's end */
    inflight_done(w, s[1]);
    assert_int_equal(inflight_release(w, &pos), 3);
    assert_int_equal(pos, 400);
    assert_true(inflight_is_empty(w));
    assert_null(inflight_at(w, s[3]));
    inflight_destroy(w);
}

static void test_inflight_retry_goes_out_before_later_entries(void **state)
{
    (void)state;
    inflight *w = make(8);
    uint64_t seq;
    for (int i = 0; i < 3; i++)
        push(w, (uint64_t)(i + 1) * 16, 0, INFLIGHT_PENDING);
    /* send all three in order */
    for (uint64_t want = 0; want < 3; want++) {
        inflight_entry *e = inflight_next_pending(w, &seq);
        assert_non_null(e);
        assert_int_equal(seq, want);
        inflight_sent(w, seq);
    }
    assert_null(inflight_next_pending(w, &seq));
    /* the 2nd fails, a 4th is read: the retry comes before the new one */
    inflight_retry(w, 1);
    push(w, 64, 0, INFLIGHT_PENDING);
    assert_non_null(inflight_next_pending(w, &seq));
    assert_int_equal(seq, 1);
    inflight_sent(w, seq);
    assert_non_null(inflight_next_pending(w, &seq));
    assert_int_equal(seq, 3);
    inflight_destroy(w);
}

static void test_inflight_done_on_push_is_released_with_neighbours(void **state)
{
    (void)state;
    inflight *w = make(4);
    uint64_t pos = 0, seq;
    push(w, 8, 0, INFLIGHT_DONE); /* e.g. a corrupt record: released as it is */
    uint64_t a = push(w, 24, 1, INFLIGHT_PENDING);
    push(w, 40, 0, INFLIGHT_DONE);
    /* the DONE entries are skipped by the send cursor */
    assert_non_null(inflight_next_pending(w, &seq));
    assert_int_equal(seq, a);
    inflight_sent(w, a);
    assert_null(inflight_next_pending(w, &seq));
    assert_int_equal(inflight_release(w, &pos), 1);
    assert_int_equal(pos, 8);
    inflight_done(w, a);
    assert_int_equal(inflight_release(w, &pos), 2);
    assert_int_equal(pos, 40);
    inflight_destroy(w);
}

static void test_inflight_full_and_wraps(void **state)
{
    (void)state;
    inflight *w = make(4);
    uint64_t pos = 0, end = 0;
    /* 100 rounds through a 4-entry window: sequence numbers and positions keep growing */
    for (uint64_t round = 0; round < 100; round++) {
        uint64_t first = round * 4;
        for (int i = 0; i < 4; i++) {
            assert_false(inflight_is_full(w));
            end += 8;
            assert_int_equal(push(w, end, 0, INFLIGHT_PENDING), first + (uint64_t)i);
        }
        assert_true(inflight_is_full(w));
        for (int i = 3; i >= 0; i--) {
            inflight_sent(w, first + (uint64_t)i);
            inflight_done(w, first + (uint64_t)i);
        }
        assert_int_equal(inflight_release(w, &pos), 4);
        assert_int_equal(pos, end);
        assert_true(inflight_is_empty(w));
    }
    inflight_destroy(w);
}

static void test_inflight_at_bounds(void **state)
{
    (void)state;
    inflight *w = make(4);
    assert_null(inflight_at(w, 0));
    uint64_t s = push(w, 8, 3, INFLIGHT_PENDING);
    inflight_entry *e = inflight_at(w, s);
    assert_non_null(e);
    assert_int_equal(e->conn, 3);
    assert_int_equal(e->end_pos, 8);
    assert_null(inflight_at(w, s + 1));
    inflight_destroy(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inflight_create_rejects_bad_capacity),
        cmocka_unit_test(test_inflight_out_of_order_completion_releases_in_order),
        cmocka_unit_test(test_inflight_retry_goes_out_before_later_entries),
        cmocka_unit_test(test_inflight_done_on_push_is_released_with_neighbours),
        cmocka_unit_test(test_inflight_full_and_wraps),
        cmocka_unit_test(test_inflight_at_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
