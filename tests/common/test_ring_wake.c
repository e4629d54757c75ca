/* Tests of common/ring's wake-up economy, read off the segment (ring_layout.h) in one process:
 * a parked side is stood in for by setting its parked flag by hand, and a wake-up shows as a
 * bump of its futex word (the waker bumps the word before FUTEX_WAKE, with or without a
 * sleeper). Covered: one park costs at most one wake-up however many batches are published
 * (the waker takes the flag); a producer parked on a full ring is woken only once
 * 1/RING_WAKE_FREE_DIV of the ring is free, at once by a consumer about to wait and by
 * ring_release_to; ring_wait_paced naps a busy consumer without a parked flag (nothing for the
 * producer to wake, no park counted) and parks a quiet one. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "atom.h"
#include "ring.h"
#include "ring_layout.h"
#include "shm.h"

#define CAP 65536u

typedef struct fx {
    char name[128];
    ring *o, *p, *c;
    shm *seg;
    ring_ctl *ctl;
} fx;

static int setup(void **state)
{
    static int n;
    fx *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->name, sizeof(f->name), "mqttflow.test%d.wake%d", (int)getpid(), n++);
    ring_unlink(f->name);
    if (ring_create(f->name, CAP, 1024, &f->o) < 0 ||
        ring_attach(f->name, RING_PRODUCER, &f->p) < 0 ||
        ring_attach(f->name, RING_CONSUMER, &f->c) < 0 ||
        shm_attach(f->name, SHM_KIND_RING, RING_LAYOUT_VERSION, &f->seg) < 0)
        return -1;
    f->ctl = shm_base(f->seg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    ring_detach(f->p);
    ring_detach(f->c);
    ring_detach(f->o);
    shm_detach(f->seg);
    ring_unlink(f->name);
    free(f);
    return 0;
}

static void push(fx *f, size_t len)
{
    void *buf;
    assert_int_equal(ring_reserve(f->p, len, &buf), 0);
    memset(buf, 0x5a, len);
    ring_commit(f->p, len);
}

/* Reads and releases up to n records; returns how many there were. */
static size_t drain(fx *f, size_t n)
{
    const void *buf;
    size_t len, k = 0;
    while (k < n && ring_peek(f->c, &buf, &len) == 0) {
        ring_advance(f->c);
        k++;
    }
    ring_release(f->c);
    return k;
}

static void test_ring_wake_one_park_costs_one_wake(void **state)
{
    fx *f = *state;
    atom_store_relaxed(&f->ctl->cons_waiting, 1); /* the consumer parked */
    uint32_t w0 = atom_load_relaxed(&f->ctl->cons_wake);
    push(f, 100);
    ring_flush(f->p);
    assert_int_equal(atom_load_relaxed(&f->ctl->cons_wake), w0 + 1);
    assert_int_equal(atom_load_relaxed(&f->ctl->cons_waiting), 0); /* taken by the waker */
    /* more batches before the consumer runs again: no more wake-ups */
    for (int i = 0; i < 5; i++) {
        push(f, 100);
        ring_flush(f->p);
    }
    assert_int_equal(atom_load_relaxed(&f->ctl->cons_wake), w0 + 1);
    assert_int_equal(drain(f, 100), 6);
}

static void test_ring_wake_full_ring_producer_woken_once_an_eighth_is_free(void **state)
{
    fx *f = *state;
    size_t n = 0;
    void *buf;
    while (ring_reserve(f->p, 120, &buf) == 0) { /* 128-byte slots */
        ring_commit(f->p, 120);
        n++;
    }
    assert_int_equal(n, CAP / 128);
    atom_store_relaxed(&f->ctl->prod_waiting, 1); /* the producer parked on the full ring */
    uint32_t w0 = atom_load_relaxed(&f->ctl->prod_wake);
    size_t eighth = CAP / RING_WAKE_FREE_DIV / 128, freed = 0;
    /* batches of 16 records: not enough free for a wake-up until an eighth */
    while (freed + 16 < eighth) {
        freed += drain(f, 16);
        assert_int_equal(atom_load_relaxed(&f->ctl->prod_wake), w0);
        assert_int_equal(atom_load_relaxed(&f->ctl->prod_waiting), 1);
    }
    freed += drain(f, eighth - freed);
    assert_int_equal(freed, eighth);
    assert_int_equal(atom_load_relaxed(&f->ctl->prod_wake), w0 + 1);
    assert_int_equal(atom_load_relaxed(&f->ctl->prod_waiting), 0);
}

static void test_ring_wake_waiting_consumer_wakes_producer_whatever_is_free(void **state)
{
    fx *f = *state;
    void *wbuf;
    while (ring_reserve(f->p, 120, &wbuf) == 0) /* full */
        ring_commit(f->p, 120);
    atom_store_relaxed(&f->ctl->prod_waiting, 1);
    uint32_t w0 = atom_load_relaxed(&f->ctl->prod_wake);
    assert_int_equal(drain(f, 1), 1); /* a little freed: the gate holds it back */
    assert_int_equal(atom_load_relaxed(&f->ctl->prod_wake), w0);
    /* the consumer about to wait: nothing more will be released until it runs again */
    assert_int_equal(ring_wait_data(f->c, 0), 0);
    assert_int_equal(atom_load_relaxed(&f->ctl->prod_wake), w0 + 1);

    /* ring_release_to (the relay's release on acknowledgement) wakes at once */
    atom_store_relaxed(&f->ctl->prod_waiting, 1);
    const void *buf;
    size_t len;
    assert_int_equal(ring_peek(f->c, &buf, &len), 0);
    ring_advance(f->c);
    ring_release_to(f->c, ring_read_pos(f->c));
    assert_int_equal(atom_load_relaxed(&f->ctl->prod_wake), w0 + 2);
}

static void test_ring_wake_paced_naps_busy_and_parks_quiet(void **state)
{
    fx *f = *state;
    ring_stats st;
    /* data already there: no wait at all, busy or not */
    push(f, 64);
    ring_flush(f->p);
    assert_int_equal(ring_wait_paced(&f->c, 1, NULL, 0, 1000, 1), 0);
    assert_int_equal(drain(f, 10), 1);
    /* busy, nothing comes: a nap, no park, and the producer saw no parked flag */
    ring_get_stats(f->o, &st);
    uint64_t parks = st.consumer_waits;
    assert_int_equal(ring_wait_paced(&f->c, 1, NULL, 0, 1000, 1), -ETIMEDOUT);
    ring_get_stats(f->o, &st);
    assert_int_equal(st.consumer_waits, parks);
    assert_int_equal(atom_load_relaxed(&f->ctl->cons_waiting), 0);
    /* quiet: parks (counted) until the timeout */
    assert_int_equal(ring_wait_paced(&f->c, 1, NULL, 0, 5, 0), -ETIMEDOUT);
    ring_get_stats(f->o, &st);
    assert_int_equal(st.consumer_waits, parks + 1);
    assert_int_equal(atom_load_relaxed(&f->ctl->cons_waiting), 0);
    /* a nap bounded by a zero timeout returns at once */
    assert_int_equal(ring_wait_paced(&f->c, 1, NULL, 0, 0, 1), -ETIMEDOUT);
}

/* ring_pace_nap: a nap only while records come at least RING_PACE_MIN per nap */
static void test_ring_wake_pace_naps_only_at_a_high_rate(void **state)
{
    (void)state;
    ring_pace p = {0};
    /* the first call has no rate yet: park */
    assert_int_equal(ring_pace_nap(&p, 5), 0);
    /* many records in far less than a nap: nap */
    assert_int_equal(ring_pace_nap(&p, 1000), 1);
    /* nothing taken (the nap found nothing): park */
    assert_int_equal(ring_pace_nap(&p, 0), 0);
    /* one record in 2 ms (500 a second, under one per nap): park */
    struct timespec ts = {.tv_nsec = 2000000};
    while (nanosleep(&ts, &ts) != 0) /* the whole 2 ms, a signal or not */
        ;
    assert_int_equal(ring_pace_nap(&p, 1), 0);
    /* the same record count over 2 ms at RING_PACE_MIN per nap: nap */
    while (nanosleep(&(struct timespec){.tv_nsec = 2000000}, NULL) != 0)
        ;
    assert_int_equal(ring_pace_nap(&p, (size_t)RING_PACE_MIN * 2000 / RING_NAP_US + 1000), 1);
}

/* ring_park_begin/ring_park_end, the park of a loop that sleeps elsewhere (the relay's
 * io_uring FUTEX_WAITV): the flag is set and the words read as ring_wait_any does, so the
 * producer's publication bumps exactly the word whose value was handed out; a ring already
 * holding data, or a changed extra word, says "do not sleep" and leaves no flag behind. */
static void test_ring_wake_split_park(void **state)
{
    fx *f = *state;
    const uint32_t *words[2];
    uint32_t vals[2], extra = 7;
    assert_int_equal(ring_park_begin(&f->c, 1, &extra, 7, &f->c, 1, words, vals), 0);
    /* the consumer's own mapping of cons_wake (f->ctl is another mapping of the segment) */
    assert_int_equal(vals[0], atom_load_relaxed(&f->ctl->cons_wake));
    assert_ptr_equal(words[1], &extra);
    assert_int_equal(vals[1], 7);
    assert_int_equal(atom_load_relaxed(&f->ctl->cons_waiting), 1);
    push(f, 64);
    ring_flush(f->p); /* the producer sees the flag: bump (and FUTEX_WAKE) */
    assert_int_not_equal(atom_load_relaxed(words[0]), vals[0]);
    ring_park_end(&f->c, 1);
    assert_int_equal(atom_load_relaxed(&f->ctl->cons_waiting), 0);
    /* data there: no sleep, no flag */
    assert_int_equal(ring_park_begin(&f->c, 1, &extra, 7, &f->c, 1, words, vals), 1);
    assert_int_equal(atom_load_relaxed(&f->ctl->cons_waiting), 0);
    assert_int_equal(drain(f, 10), 1);
    /* extra moved on: no sleep */
    assert_int_equal(ring_park_begin(&f->c, 1, &extra, 6, &f->c, 1, words, vals), 1);
    assert_int_equal(atom_load_relaxed(&f->ctl->cons_waiting), 0);
    /* a ring watched but not parked on (its window busy): its word is read, its flag not set */
    assert_int_equal(ring_park_begin(NULL, 0, &extra, 7, &f->c, 1, words, vals), 0);
    assert_int_equal(atom_load_relaxed(&f->ctl->cons_waiting), 0);
    assert_int_equal(vals[0], atom_load_relaxed(&f->ctl->cons_wake));
    ring_park_end(NULL, 0);
    /* rs must be among watch */
    assert_int_equal(ring_park_begin(&f->c, 1, NULL, 0, NULL, 0, words, vals), -EINVAL);
    /* the nap's half: data says no nap; none says nap, with no flag */
    uint64_t ns;
    assert_int_equal(ring_nap_begin(&f->c, 1, &ns), 0);
    assert_true(ns > 0);
    assert_int_equal(atom_load_relaxed(&f->ctl->cons_waiting), 0);
    push(f, 64);
    ring_flush(f->p);
    assert_int_equal(ring_nap_begin(&f->c, 1, &ns), 1);
}

/* The held waits (the relay's low-rate park): a record read but not released stays
 * unreleased across the wait, and the parked flag is set so the producer's next record wakes
 * the consumer. */
static void test_ring_wake_held_park_keeps_read_records(void **state)
{
    fx *f = *state;
    ring_stats st;
    const void *buf;
    size_t len;
    push(f, 64);
    ring_flush(f->p);
    assert_int_equal(ring_peek(f->c, &buf, &len), 0);
    ring_advance(f->c); /* in flight: read, not released */
    assert_int_equal(ring_wait_held(&f->c, 1, 1), -ETIMEDOUT);
    ring_get_stats(f->o, &st);
    assert_int_equal(st.tail, 0);
    const uint32_t *words[1];
    uint32_t vals[1];
    assert_int_equal(ring_park_begin_held(&f->c, 1, NULL, 0, &f->c, 1, words, vals), 0);
    assert_int_equal(atom_load_relaxed(&f->ctl->cons_waiting), 1);
    push(f, 64);
    ring_flush(f->p); /* the producer sees the flag: bump */
    assert_int_not_equal(atom_load_relaxed(words[0]), vals[0]);
    ring_park_end(&f->c, 1);
    ring_get_stats(f->o, &st);
    assert_int_equal(st.tail, 0);
    /* the ring wait that releases does release it */
    assert_int_equal(ring_wait_data(f->c, 0), 0);
    ring_get_stats(f->o, &st);
    assert_int_not_equal(st.tail, 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_ring_wake_one_park_costs_one_wake),
        T(test_ring_wake_full_ring_producer_woken_once_an_eighth_is_free),
        T(test_ring_wake_waiting_consumer_wakes_producer_whatever_is_free),
        T(test_ring_wake_paced_naps_busy_and_parks_quiet),
        T(test_ring_wake_pace_naps_only_at_a_high_rate),
        T(test_ring_wake_split_park),
        T(test_ring_wake_held_park_keeps_read_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
