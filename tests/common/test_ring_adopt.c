/* Tests of ring_adopt (common/ring.c): a supervisor restarted after a crash takes back the
 * rings a dead instance left. The dead instance is a forked child that creates the ring,
 * queues records, half-consumes them and exits (a segment is adopted only when its owner is
 * dead). Checked: records and positions kept, the new consumer re-reads from the released
 * tail, the attempt mark and the tag survive, parked flags are cleared; another geometry or
 * damaged positions/records start empty; a live owner is refused. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ring.h"
#include "ring_layout.h"
#include "shm.h"

#include "ringrec.h"

static char g_names[2][128];
#define g_name g_names[0]

static int setup(void **state)
{
    static int n;
    (void)state;
    for (int i = 0; i < 2; i++) {
        snprintf(g_names[i], sizeof(g_names[i]), "mqttflow.testadopt%d.ring%d", (int)getpid(), n++);
        ring_unlink(g_names[i]);
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < 2; i++)
        ring_unlink(g_names[i]);
    return 0;
}

/* ---- ring_adopt: a supervisor restarted after a crash takes the rings back ---- */

/* In a child that then exits (the segment's owner must be dead for an adoption): creates the
 * ring, pushes n records (sequence numbers 0..n-1) and, as consumer, releases the first
 * `released`, advances past `advanced` more without releasing them, then begins the next
 * one and dies running it, parked flags left set as a killed side would leave them. */
static void dead_instance_ring(const char *name, size_t cap, size_t max_rec, uint64_t n,
                               uint64_t released, uint64_t advanced)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ring *o = NULL, *p = NULL, *c = NULL;
        if (ring_create(name, cap, max_rec, &o) || ring_attach(name, RING_PRODUCER, &p) ||
            ring_attach(name, RING_CONSUMER, &c))
            _exit(1);
        ring_set_tag(o, 0xfeed);
        for (uint64_t i = 0; i < n; i++) {
            void *buf;
            if (ring_reserve(p, 64, &buf))
                _exit(2);
            fill_rec(buf, 64, i);
            ring_commit(p, 64);
        }
        ring_flush(p);
        for (uint64_t i = 0; i < released + advanced; i++) {
            const void *buf;
            size_t len;
            if (ring_peek(c, &buf, &len) || check_rec(buf, len, i) != REC_OK)
                _exit(3);
            ring_advance(c);
            if (i + 1 == released)
                ring_release(c);
        }
        if (released + advanced < n && ring_begin(c) != 1)
            _exit(4);
        shm *seg;
        if (shm_attach(name, SHM_KIND_RING, RING_LAYOUT_VERSION, &seg))
            _exit(5);
        ring_ctl *ctl = shm_base(seg);
        ctl->prod_waiting = 1;
        ctl->cons_waiting = 1;
        _exit(0);
    }
    expect_exit(pid, 0); /* reaped: the owner is dead, not a zombie */
}

static void test_ring_adopt_keeps_records_and_consumer_rereads_from_tail(void **state)
{
    (void)state;
    dead_instance_ring(g_name, 8192, 1024, 40, 10, 5);
    ring *o = NULL;
    assert_int_equal(ring_adopt(g_name, 8192, 1024, &o), 1);
    ring_stats st;
    ring_get_stats(o, &st);
    assert_int_equal(st.records_in - st.records_out, 30);
    assert_int_equal(ring_used(o), 30 * (64 + 8));
    shm *seg;
    ring_ctl *ctl = map_ctl(g_name, &seg);
    assert_int_equal(ctl->prod_waiting, 0);
    assert_int_equal(ctl->cons_waiting, 0);
    assert_int_equal(ctl->hdr.owner_pid, (uint64_t)getpid());
    shm_detach(seg);

    /* the creator's tag came along with the records */
    assert_int_equal(ring_tag(o), 0xfeedull);

    /* the new consumer starts at the released tail: the 5 advanced but unreleased records
     * come again, then the rest; the one being run when the old consumer died counts a
     * second attempt */
    ring *c = attach(g_name, RING_CONSUMER);
    for (uint64_t i = 10; i < 40; i++) {
        if (i == 15)
            assert_int_equal(ring_begin(c), 2);
        pop_rec(c, i);
    }
    assert_int_equal(ring_peek(c, &(const void *){NULL}, &(size_t){0}), -EAGAIN);
    /* and the producer side goes on from the old head */
    ring *p = attach(g_name, RING_PRODUCER);
    push_rec(p, 40, 64);
    ring_flush(p);
    pop_rec(c, 40);
    ring_detach(p);
    ring_detach(c);
    ring_detach(o);
}

static void test_ring_adopt_other_geometry_starts_empty(void **state)
{
    (void)state;
    ring *o = NULL;
    /* same capacity (same segment size), another record limit */
    dead_instance_ring(g_name, 8192, 1024, 20, 0, 0);
    assert_int_equal(ring_adopt(g_name, 8192, 512, &o), 0);
    assert_int_equal(ring_used(o), 0);
    assert_int_equal(ring_tag(o), 0); /* a new ring */
    assert_int_equal(ring_max_record(o), 512);
    ring_detach(o);
    /* another capacity */
    dead_instance_ring(g_names[1], 8192, 1024, 20, 0, 0);
    assert_int_equal(ring_adopt(g_names[1], 16384, 1024, &o), 0);
    assert_int_equal(ring_used(o), 0);
    assert_int_equal(ring_capacity(o), 16384);
    ring *c = attach(g_names[1], RING_CONSUMER);
    assert_int_equal(ring_peek(c, &(const void *){NULL}, &(size_t){0}), -EAGAIN);
    ring_detach(c);
    ring_detach(o);
}

static void test_ring_adopt_damaged_ring_starts_empty(void **state)
{
    (void)state;
    dead_instance_ring(g_name, 8192, 1024, 20, 2, 0);
    shm *seg;
    ring_ctl *ctl = map_ctl(g_name, &seg);
    ring_rec_hdr *h = (ring_rec_hdr *)((unsigned char *)ctl + RING_DATA_OFFSET + 5 * 72);
    h->len = 5000; /* beyond max_record */
    shm_detach(seg);
    ring *o = NULL;
    assert_int_equal(ring_adopt(g_name, 8192, 1024, &o), 0);
    assert_int_equal(ring_used(o), 0);
    ring_detach(o);
    /* positions out of order are damage too */
    dead_instance_ring(g_names[1], 8192, 1024, 4, 0, 0);
    ctl = map_ctl(g_names[1], &seg);
    ctl->tail = ctl->head + 8;
    shm_detach(seg);
    assert_int_equal(ring_adopt(g_names[1], 8192, 1024, &o), 0);
    assert_int_equal(ring_used(o), 0);
    ring_detach(o);
}

static void test_ring_adopt_creates_when_absent_and_refuses_a_live_owner(void **state)
{
    (void)state;
    ring *o = NULL, *o2 = NULL;
    assert_int_equal(ring_adopt(g_name, 8192, 1024, &o), 0);
    assert_int_equal(ring_capacity(o), 8192);
    /* this process owns it now and lives */
    assert_int_equal(ring_adopt(g_name, 8192, 1024, &o2), -EEXIST);
    assert_null(o2);
    assert_int_equal(ring_adopt(g_names[1], 8192, 8192, &o2), -EINVAL);
    ring_detach(o);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_ring_adopt_keeps_records_and_consumer_rereads_from_tail),
        T(test_ring_adopt_other_geometry_starts_empty),
        T(test_ring_adopt_damaged_ring_starts_empty),
        T(test_ring_adopt_creates_when_absent_and_refuses_a_live_owner),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
