/* Tests of common/ring: single-process semantics (FIFO, wrap at every pad offset, full/empty,
 * limits, short commits, batching, release_to/rewind), then real processes: a two-process
 * stress run with sequence numbers and checksums, producers and consumers killed with SIGKILL
 * mid-record, attempt counting across consumer crashes, parking (CPU use of an idle consumer,
 * wake-ups, EINTR) and ring_wait_any. Segments are named after the test process's pid and
 * unlinked in teardown. Waits for a peer to park poll the segment's waiting flag and the
 * peer's /proc state: that is the event, not a sleep. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "atom.h"
#include "clock.h"
#include "ring.h"
#include "ring_layout.h"
#include "shm.h"
#include "tests/tools/testlib.h"

#include "ringrec.h"

#define NRINGS 3
static char g_names[NRINGS][128];
#define g_name g_names[0]

static int setup(void **state)
{
    static int n;
    (void)state;
    for (int i = 0; i < NRINGS; i++) {
        snprintf(g_names[i], sizeof(g_names[i]), "mqttflow.test%d.ring%d", (int)getpid(), n++);
        ring_unlink(g_names[i]);
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < NRINGS; i++)
        ring_unlink(g_names[i]);
    return 0;
}

/* ---- helpers ---- */

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

/* Length of record seq: mostly small, now and then up to max. */
static size_t len_of(uint64_t seq, size_t max)
{
    uint64_t h = mix(seq + 1);
    size_t len = (h & 63) == 0 ? 16 + (h >> 8) % (max - 15) : 16 + (h >> 8) % 300;
    return len > max ? max : len;
}

static void expect_killed(pid_t pid, int sig)
{
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), sig);
}

static char proc_state(pid_t pid)
{
    char buf[512];
    const char *s = testlib_proc_stat(pid, buf, sizeof(buf));
    return s ? *s : '?';
}

/* Waits (bounded, 10 s) until every flag is 1 and the process sleeps: it is parked. */
static void wait_parked(pid_t pid, uint32_t *const *flags, size_t n)
{
    uint64_t end = clock_mono_ns() + 10000000000ull;
    for (;;) {
        int all = 1;
        for (size_t i = 0; i < n; i++)
            all &= atom_load_acquire(flags[i]) == 1;
        if (all && proc_state(pid) == 'S')
            return;
        if (clock_mono_ns() > end)
            fail_msg("process %d never parked", (int)pid);
        sched_yield();
    }
}

/* Reads one byte from fd within timeout_ms; fails the test when none comes. */
static int read_byte(int fd, int timeout_ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    unsigned char b;
    if (poll(&pfd, 1, timeout_ms) != 1)
        fail_msg("no report from the child within %d ms", timeout_ms);
    assert_int_equal(read(fd, &b, 1), 1);
    return b;
}

static void write_byte(int fd, int v)
{
    unsigned char b = (unsigned char)v;
    if (write(fd, &b, 1) != 1)
        _exit(99);
}

/* ---- single process ---- */

static void test_ring_create_rejects_bad_geometry(void **state)
{
    (void)state;
    ring *r = NULL;
    assert_int_equal(ring_create(g_name, 5000, 100, &r), -EINVAL);
    assert_int_equal(ring_create(g_name, 2048, 100, &r), -EINVAL);
    assert_int_equal(ring_create(g_name, 4096, 1025, &r), -EINVAL);
    assert_int_equal(ring_create(g_name, 4096, 0, &r), -EINVAL);
    assert_null(r);
    assert_int_equal(ring_create(g_name, 4096, 1024, &r), 0);
    assert_int_equal(ring_capacity(r), 4096);
    assert_int_equal(ring_max_record(r), 1024);
    ring *r2 = NULL;
    assert_int_equal(ring_create(g_name, 4096, 1024, &r2), -EEXIST);
    ring_detach(r);
    /* a segment of another kind is no ring */
    shm *s;
    assert_int_equal(shm_create(g_names[1], SHM_KIND_STATS, 1, 8192, &s), 0);
    assert_int_equal(ring_attach(g_names[1], RING_CONSUMER, &r2), -EPROTO);
    shm_detach(s);
    assert_int_equal(ring_attach(g_names[2], RING_CONSUMER, &r2), -ENOENT);
}

static void test_ring_single_process_fifo(void **state)
{
    (void)state;
    ring *o, *p, *c;
    const void *buf;
    size_t len;
    open_ring3(g_name, 65536, 4096, &o, &p, &c);

    assert_true(ring_is_empty(c));
    assert_int_equal(ring_peek(c, &buf, &len), -EAGAIN);
    for (uint64_t s = 0; s < 100; s++) {
        char msg[64];
        int n = snprintf(msg, sizeof(msg), "record %llu", (unsigned long long)s);
        assert_int_equal(ring_push(p, msg, (size_t)n + 1), 0);
    }
    ring_flush(p);
    assert_false(ring_is_empty(c));
    for (uint64_t s = 0; s < 100; s++) {
        char msg[64];
        snprintf(msg, sizeof(msg), "record %llu", (unsigned long long)s);
        assert_int_equal(ring_peek(c, &buf, &len), 0);
        assert_int_equal(len, strlen(msg) + 1);
        assert_string_equal(buf, msg);
        /* peeking again gives the same record until it is advanced past */
        const void *again;
        assert_int_equal(ring_peek(c, &again, &len), 0);
        assert_ptr_equal(again, buf);
        ring_advance(c);
    }
    assert_int_equal(ring_peek(c, &buf, &len), -EAGAIN);
    ring_stats st;
    ring_get_stats(o, &st);
    assert_int_equal(st.records_in, 100);
    assert_int_equal(st.records_out, 0); /* nothing released yet */
    assert_true(ring_used(o) > 0);
    ring_release(c);
    ring_get_stats(o, &st);
    assert_int_equal(st.records_out, 100);
    assert_int_equal(st.head, st.tail);
    assert_int_equal(ring_used(o), 0);
    detach_ring3(o, p, c);
}

static void test_ring_publishes_per_batch_or_flush(void **state)
{
    (void)state;
    ring *o, *p, *c;
    const void *buf;
    size_t len;
    open_ring3(g_name, 65536, 1024, &o, &p, &c);
    for (uint64_t s = 0; s < RING_BATCH - 1; s++)
        push_rec(p, s, 32);
    assert_int_equal(ring_peek(c, &buf, &len), -EAGAIN); /* committed, not published */
    push_rec(p, RING_BATCH - 1, 32);                     /* the batch boundary publishes */
    for (uint64_t s = 0; s < RING_BATCH; s++)
        pop_rec(c, s);
    push_rec(p, RING_BATCH, 32);
    assert_int_equal(ring_peek(c, &buf, &len), -EAGAIN);
    ring_flush(p);
    pop_rec(c, RING_BATCH);
    detach_ring3(o, p, c);
}

/* Moves an empty ring's producer and consumer (same process) to data offset target with
 * filler records; returns how many fillers it used. */
static uint64_t advance_to(ring *p, ring *c, uint64_t target)
{
    ring_stats st;
    ring_get_stats(p, &st);
    uint64_t cap = ring_capacity(p), n = 0;
    uint64_t d = (target - (st.head & (cap - 1))) & (cap - 1);
    while (d > 0) {
        uint64_t step = d > 1032 ? 1032 : d;
        if (d - step == 8)
            step -= 16;
        void *buf;
        const void *rbuf;
        size_t len;
        assert_int_equal(ring_reserve(p, step - 8, &buf), 0);
        memset(buf, 0x5a, step - 8);
        ring_commit(p, step - 8);
        ring_flush(p);
        assert_int_equal(ring_peek(c, &rbuf, &len), 0);
        assert_int_equal(len, step - 8);
        ring_advance(c);
        ring_release(c);
        d -= step;
        n++;
    }
    ring_get_stats(p, &st);
    assert_int_equal(st.head & (cap - 1), target);
    return n;
}

/* Fresh 4 KiB ring whose producer and consumer stand at offset cap - o. */
static void ring_at_offset(size_t o, ring **ro, ring **rp, ring **rc)
{
    char name[160];
    snprintf(name, sizeof(name), "%s.o%zu", g_name, o);
    ring_unlink(name);
    assert_int_equal(ring_create(name, 4096, 1024, ro), 0);
    *rp = attach(name, RING_PRODUCER);
    *rc = attach(name, RING_CONSUMER);
    ring_unlink(name); /* mappings stay valid; nothing left behind on a failure */
    advance_to(*rp, *rc, 4096 - o);
}

static void test_ring_wrap_pad_at_every_offset(void **state)
{
    (void)state;
    ring *o, *p, *c;
    ring_stats st;
    for (size_t off = 8; off <= 1024; off += 8) {
        /* a record one byte too big for the space left: a pad of off bytes before it */
        ring_at_offset(off, &o, &p, &c);
        size_t len = off - 7 < 16 ? 16 : off - 7;
        push_rec(p, 1, len);
        push_rec(p, 2, 100);
        ring_flush(p);
        assert_int_equal(ring_used(o), off + 8 + ((len + 7) & ~7u) + 8 + 104);
        pop_rec(c, 1);
        pop_rec(c, 2);
        ring_get_stats(o, &st);
        assert_int_equal(st.records_out, st.records_in);
        assert_int_equal(ring_used(o), 0);
        ring_detach(c);
        ring_detach(p);
        ring_detach(o);

        /* a record that ends exactly at the end: no pad, the next one starts at 0 */
        if (off < 16 + 8)
            continue;
        ring_at_offset(off, &o, &p, &c);
        push_rec(p, 1, off - 8);
        push_rec(p, 2, 100);
        ring_flush(p);
        assert_int_equal(ring_used(o), off + 8 + 104);
        pop_rec(c, 1);
        pop_rec(c, 2);
        ring_detach(c);
        ring_detach(p);
        ring_detach(o);
    }
}

static void test_ring_full_and_empty(void **state)
{
    (void)state;
    ring *o, *p, *c;
    void *buf;
    const void *rbuf;
    size_t len;
    open_ring3(g_name, 4096, 1024, &o, &p, &c);
    assert_int_equal(ring_wait_data(c, 0), -ETIMEDOUT);
    assert_int_equal(ring_wait_data(c, 20), -ETIMEDOUT);

    uint64_t n = 0;
    while (ring_reserve(p, 56, &buf) == 0) {
        fill_rec(buf, 56, n++);
        ring_commit(p, 56);
    }
    assert_int_equal(n, 4096 / 64); /* 64-byte slots fill the ring exactly */
    /* the full ring published what it held back, so the consumer can drain it */
    assert_int_equal(ring_used(o), 4096);
    assert_int_equal(ring_reserve(p, 8, &buf), -EAGAIN);
    assert_int_equal(ring_wait_space(p, 8, 0), -ETIMEDOUT);
    assert_int_equal(ring_wait_space(p, 8, 20), -ETIMEDOUT);
    assert_int_equal(ring_wait_data(c, 0), 0);

    /* one record read but not released: still full */
    assert_int_equal(ring_peek(c, &rbuf, &len), 0);
    ring_advance(c);
    assert_int_equal(ring_reserve(p, 8, &buf), -EAGAIN);
    ring_release(c);
    assert_int_equal(ring_wait_space(p, 56, 0), 0);
    push_rec(p, n, 56);
    assert_int_equal(ring_reserve(p, 8, &buf), -EAGAIN);
    ring_flush(p);
    for (uint64_t s = 1; s <= n; s++)
        pop_rec(c, s);
    assert_int_equal(ring_peek(c, &rbuf, &len), -EAGAIN);
    assert_true(ring_is_empty(c));
    assert_int_equal(ring_used(o), 0);
    detach_ring3(o, p, c);
}

static void test_ring_largest_record_and_emsgsize(void **state)
{
    (void)state;
    ring *o, *p, *c;
    void *buf = NULL;
    open_ring3(g_name, 16384, 4096, &o, &p, &c);
    assert_int_equal(ring_reserve(p, 0, &buf), -EMSGSIZE);
    assert_int_equal(ring_reserve(p, 4097, &buf), -EMSGSIZE);
    assert_int_equal(ring_wait_space(p, 4097, 0), -EMSGSIZE);
    assert_null(buf);
    /* enough of the largest records to wrap several times */
    for (uint64_t s = 0; s < 20; s++) {
        push_rec(p, s, 4096);
        ring_flush(p);
        pop_rec(c, s);
    }
    detach_ring3(o, p, c);
}

static void test_ring_commit_shorter_than_reserved(void **state)
{
    (void)state;
    ring *o, *p, *c;
    void *buf;
    open_ring3(g_name, 4096, 1024, &o, &p, &c);
    assert_int_equal(ring_reserve(p, 1000, &buf), 0);
    fill_rec(buf, 100, 7);
    ring_commit(p, 100);
    push_rec(p, 8, 40);
    ring_flush(p);
    /* only the final length takes room: 8+104 and 8+40 */
    assert_int_equal(ring_used(o), 112 + 48);
    pop_rec(c, 7);
    pop_rec(c, 8);
    detach_ring3(o, p, c);
}

static void test_ring_release_to_and_rewind(void **state)
{
    (void)state;
    ring *o, *p, *c;
    ring_stats st;
    open_ring3(g_name, 4096, 1024, &o, &p, &c);
    push_recs(p, 0, 4, 24);
    uint64_t after[4];
    for (int i = 0; i < 4; i++) {
        read_rec(c, (uint64_t)i);
        after[i] = ring_read_pos(c);
    }
    ring_release_to(c, after[1]); /* two acknowledged */
    ring_get_stats(o, &st);
    assert_int_equal(st.records_out, 2);
    assert_int_equal(st.tail, after[1]);
    ring_rewind(c); /* the unacknowledged two are read again */
    read_rec(c, 2);
    pop_rec(c, 3);
    ring_get_stats(o, &st);
    assert_int_equal(st.records_out, 4);
    assert_int_equal(ring_used(o), 0);
    detach_ring3(o, p, c);
}

/* Pushes one record of payload, overwrites its header with bad and expects ring_peek to
 * refuse it (-EBADMSG, read position unmoved); then puts the header back and reads the record
 * whole: the error left nothing behind. */
static void expect_bad_header(ring_rec_hdr bad, const void *payload, size_t n)
{
    ring *o, *p, *c;
    const void *buf;
    size_t len;
    shm *seg;
    open_ring3(g_name, 4096, 1024, &o, &p, &c);
    assert_int_equal(ring_push(p, payload, n), 0);
    ring_flush(p);
    ring_ctl *ctl = map_ctl(g_name, &seg);
    ring_rec_hdr *h = (ring_rec_hdr *)((char *)ctl + RING_DATA_OFFSET);
    const ring_rec_hdr good = *h;
    *h = bad;
    assert_int_equal(ring_peek(c, &buf, &len), -EBADMSG);
    assert_int_equal(ring_read_pos(c), 0);
    *h = good;
    assert_int_equal(ring_peek(c, &buf, &len), 0);
    assert_int_equal(len, n);
    assert_memory_equal(buf, payload, n);
    shm_detach(seg);
    detach_ring3(o, p, c);
}

/* expect_bad_header for a data record of 24 bytes whose header claims bad_len. */
static void expect_bad_length(uint32_t bad_len)
{
    unsigned char rec[24];
    fill_rec(rec, sizeof(rec), 0);
    expect_bad_header((ring_rec_hdr){.len = bad_len, .kind = RING_REC_DATA}, rec, sizeof(rec));
}

static void test_ring_corrupt_length_gives_ebadmsg(void **state)
{
    (void)state;
    expect_bad_length(5000);
}

/* ---- processes ---- */

static int stress_producer(const char *name, uint64_t n)
{
    ring *p;
    if (ring_attach(name, RING_PRODUCER, &p) != 0)
        return 20;
    size_t max = ring_max_record(p);
    for (uint64_t s = 0; s < n; s++) {
        size_t len = len_of(s, max);
        void *buf;
        int rc;
        while ((rc = ring_reserve(p, len, &buf)) == -EAGAIN) {
            uint64_t t0 = clock_mono_ns();
            if ((rc = ring_wait_space(p, len, 10000)) != 0)
                return 21;
            if (clock_mono_ns() - t0 > 2000000000ull)
                return 23; /* a lost wake-up: only the timeout got us out */
        }
        if (rc != 0)
            return 22;
        fill_rec(buf, len, s);
        ring_commit(p, len);
    }
    ring_flush(p);
    ring_detach(p);
    return 0;
}

static int stress_consumer(const char *name, uint64_t n)
{
    ring *c;
    if (ring_attach(name, RING_CONSUMER, &c) != 0)
        return 30;
    size_t max = ring_max_record(c);
    for (uint64_t s = 0; s < n; s++) {
        const void *buf;
        size_t len;
        int rc;
        while ((rc = ring_peek(c, &buf, &len)) == -EAGAIN) {
            uint64_t t0 = clock_mono_ns();
            if ((rc = ring_wait_data(c, 10000)) != 0)
                return 31;
            if (clock_mono_ns() - t0 > 2000000000ull)
                return 33; /* a lost wake-up: only the timeout got us out */
        }
        if (rc != 0)
            return 32;
        if ((rc = check_rec(buf, len, s)) != REC_OK)
            return rc;
        if (len != len_of(s, max))
            return REC_CORRUPT;
        ring_advance(c);
        if (s % 16 == 15)
            ring_release(c);
    }
    ring_release(c);
    /* nothing beyond the last record: no duplicates at the end */
    const void *buf;
    size_t len;
    int rc = ring_peek(c, &buf, &len) == -EAGAIN ? 0 : REC_DUP;
    ring_detach(c);
    return rc;
}

static void run_stress(size_t cap, size_t max_record, uint64_t n)
{
    ring *o;
    assert_int_equal(ring_create(g_name, cap, max_record, &o), 0);
    uint64_t t0 = clock_mono_ns();
    pid_t cons = fork();
    assert_true(cons >= 0);
    if (cons == 0)
        _exit(stress_consumer(g_name, n));
    pid_t prod = fork();
    assert_true(prod >= 0);
    if (prod == 0)
        _exit(stress_producer(g_name, n));
    expect_exit(prod, 0);
    expect_exit(cons, 0);
    ring_stats st;
    ring_get_stats(o, &st);
    print_message("  %llu records through a %zu-byte ring in %.2f s; producer parked %llu, "
                  "consumer parked %llu times\n",
                  (unsigned long long)n, cap, (double)(clock_mono_ns() - t0) / 1e9,
                  (unsigned long long)st.producer_waits, (unsigned long long)st.consumer_waits);
    assert_int_equal(st.records_in, n);
    assert_int_equal(st.records_out, n);
    assert_int_equal(st.head, st.tail);
    ring_detach(o);
}

static void test_ring_two_process_stress(void **state)
{
    (void)state;
    run_stress(1u << 16, 2048, 2000000);
}

/* A ring of one page keeps both sides parking and waking all the time. */
static void test_ring_two_process_stress_tiny_ring_parks(void **state)
{
    (void)state;
    run_stress(4096, 1024, 300000);
}

static void test_ring_producer_killed_mid_write_leaves_nothing_partial(void **state)
{
    (void)state;
    ring *o, *c, *p0;
    const void *buf;
    size_t len;
    int pfd[2];
    assert_int_equal(ring_create(g_name, 4096, 1024, &o), 0);
    c = attach(g_name, RING_CONSUMER);
    p0 = attach(g_name, RING_PRODUCER);
    uint64_t fillers = advance_to(p0, c, 3000); /* so that the child's record needs a pad */
    ring_detach(p0);
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ring *p;
        void *w;
        if (ring_attach(g_name, RING_PRODUCER, &p) != 0)
            _exit(1);
        /* one published; two committed but never published; then half a record that needs
         * a pad at the end (3272 + 1008 > 4096) */
        push_rec(p, 0, 200);
        ring_flush(p);
        push_rec(p, 1, 24);
        push_rec(p, 2, 24);
        if (ring_reserve(p, 1000, &w) != 0)
            _exit(2);
        memset(w, 0xee, 500);
        write_byte(pfd[1], 1);
        for (;;)
            pause(); /* the parent kills us here */
    }
    close(pfd[1]);
    assert_int_equal(read_byte(pfd[0], 10000), 1);
    assert_int_equal(kill(pid, SIGKILL), 0);
    expect_killed(pid, SIGKILL);
    close(pfd[0]);

    pop_rec(c, 0);
    assert_int_equal(ring_peek(c, &buf, &len), -EAGAIN);
    assert_int_equal(ring_wait_data(c, 0), -ETIMEDOUT);
    assert_true(ring_is_empty(c));

    /* the next producer continues at the published head, across the wrap */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ring *p;
        if (ring_attach(g_name, RING_PRODUCER, &p) != 0)
            _exit(1);
        for (uint64_t s = 100; s < 110; s++) {
            if (ring_wait_space(p, 1000, 10000) != 0)
                _exit(2);
            push_rec(p, s, 1000);
        }
        ring_flush(p);
        _exit(0);
    }
    for (uint64_t s = 100; s < 110; s++) {
        assert_int_equal(ring_wait_data(c, 10000), 0);
        pop_rec(c, s);
    }
    expect_exit(pid, 0);
    assert_int_equal(ring_peek(c, &buf, &len), -EAGAIN);
    ring_stats st;
    ring_get_stats(o, &st);
    assert_int_equal(st.records_in, fillers + 11);
    assert_int_equal(st.records_out, fillers + 11);
    ring_detach(c);
    ring_detach(o);
}

/* A consumer that runs records 1..5 and reports ring_begin's count for each, finishing
 * (ring_end) the first four without releasing them, and dies in record `die_in` (0: none). */
static pid_t spawn_batching_consumer(int wfd, uint64_t die_in)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid != 0)
        return pid;
    ring *c;
    if (ring_attach(g_name, RING_CONSUMER, &c) != 0)
        _exit(1);
    for (uint64_t s = 1; s <= 5; s++) {
        const void *buf;
        size_t len;
        if (ring_peek(c, &buf, &len) != 0 || check_rec(buf, len, s) != REC_OK)
            _exit(2);
        write_byte(wfd, (int)ring_begin(c));
        if (s == die_in)
            raise(SIGKILL); /* the callback crashed */
        ring_end(c);
        ring_advance(c);
    }
    ring_release(c);
    _exit(0);
}

/* Ring g_name (4096 bytes) as its owner *o and its producer *p, holding the published records
 * 1..n of len bytes each, and a pipe pfd on which consumer children report. */
static void open_for_children(ring **o, ring **p, uint64_t n, size_t len, int pfd[2])
{
    assert_int_equal(ring_create(g_name, 4096, 1024, o), 0);
    *p = attach(g_name, RING_PRODUCER);
    push_recs(*p, 1, n, len);
    assert_int_equal(pipe(pfd), 0);
}

/* Closes what open_for_children opened, and the parent's own consumer c. */
static void close_for_children(ring *o, ring *p, ring *c, int pfd[2])
{
    close(pfd[0]);
    close(pfd[1]);
    detach_ring3(o, p, c);
}

static void test_ring_consumer_crash_counts_attempts_of_one_record(void **state)
{
    (void)state;
    ring *o, *p;
    int pfd[2];
    open_for_children(&o, &p, 5, 64, pfd);

    for (int run = 1; run <= 3; run++) {
        pid_t pid = spawn_batching_consumer(pfd[1], 5);
        /* records 1..4 were finished before the crash: re-read, never blamed */
        for (int i = 1; i <= 4; i++)
            assert_int_equal(read_byte(pfd[0], 10000), 1);
        assert_int_equal(read_byte(pfd[0], 10000), run); /* record 5: attempt 1, 2, 3 */
        expect_killed(pid, SIGKILL);
    }
    ring_stats st;
    ring_get_stats(o, &st);
    assert_int_equal(st.records_out, 0);
    assert_int_equal(st.tail, 0); /* nothing released by the dead consumers */

    /* a consumer that survives record 5 sees its 4th attempt and releases everything */
    pid_t pid = spawn_batching_consumer(pfd[1], 0);
    for (int i = 1; i <= 4; i++)
        assert_int_equal(read_byte(pfd[0], 10000), 1);
    assert_int_equal(read_byte(pfd[0], 10000), 4);
    expect_exit(pid, 0);
    ring_get_stats(o, &st);
    assert_int_equal(st.records_out, 5);
    assert_int_equal(ring_used(o), 0);

    /* a new record starts at 1 again */
    push_recs(p, 6, 1, 64);
    ring *c = attach(g_name, RING_CONSUMER);
    const void *buf;
    size_t len;
    assert_int_equal(ring_peek(c, &buf, &len), 0);
    assert_int_equal(check_rec(buf, len, 6), REC_OK);
    assert_int_equal(ring_begin(c), 1);
    ring_end(c);
    /* re-running a record that was finished (crash before its release) starts at 1 too */
    assert_int_equal(ring_begin(c), 1);
    ring_end(c);
    close_for_children(o, p, c, pfd);
}

static void test_ring_consumer_killed_before_release_rereads(void **state)
{
    (void)state;
    ring *o, *p;
    int pfd[2];
    open_for_children(&o, &p, 1, 200, pfd);
    for (int run = 1; run <= 3; run++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            ring *c;
            const void *buf;
            size_t len;
            if (ring_attach(g_name, RING_CONSUMER, &c) != 0 || ring_peek(c, &buf, &len) != 0 ||
                check_rec(buf, len, 1) != REC_OK)
                _exit(1);
            write_byte(pfd[1], (int)ring_begin(c));
            ring_advance(c); /* read, but killed before the release */
            raise(SIGKILL);
        }
        assert_int_equal(read_byte(pfd[0], 10000), run);
        expect_killed(pid, SIGKILL);
    }
    ring *c = attach(g_name, RING_CONSUMER);
    pop_rec(c, 1);
    close_for_children(o, p, c, pfd);
}

static void test_ring_idle_consumer_parks_without_cpu(void **state)
{
    (void)state;
    ring *o;
    assert_int_equal(ring_create(g_name, 1u << 20, 1024, &o), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ring *c;
        if (ring_attach(g_name, RING_CONSUMER, &c) != 0)
            _exit(1);
        uint64_t t0 = clock_mono_ns();
        int rc = ring_wait_data(c, 1000);
        uint64_t dt = clock_mono_ns() - t0;
        _exit(rc == -ETIMEDOUT && dt >= 990000000ull && dt < 3000000000ull ? 0 : 2);
    }
    int st;
    struct rusage ru;
    assert_int_equal(wait4(pid, &st, 0, &ru), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    long cpu_us = ru.ru_utime.tv_sec * 1000000L + ru.ru_utime.tv_usec +
                  ru.ru_stime.tv_sec * 1000000L + ru.ru_stime.tv_usec;
    print_message("  idle consumer used %ld us of CPU in one second\n", cpu_us);
    assert_true(cpu_us < 50000);
    ring_stats sst;
    ring_get_stats(o, &sst);
    assert_int_equal(sst.consumer_waits, 1);
    ring_detach(o);
}

static void test_ring_parked_consumer_woken_by_push(void **state)
{
    (void)state;
    ring *o, *p;
    shm *seg;
    int pfd[2];
    assert_int_equal(ring_create(g_name, 1u << 16, 1024, &o), 0);
    ring_ctl *ctl = map_ctl(g_name, &seg);
    p = attach(g_name, RING_PRODUCER);
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ring *c;
        const void *buf;
        size_t len;
        if (ring_attach(g_name, RING_CONSUMER, &c) != 0)
            _exit(1);
        for (uint64_t s = 0; s < 3; s++) {
            int rc = ring_wait_data(c, -1);
            if (rc != 0 || ring_peek(c, &buf, &len) != 0 || check_rec(buf, len, s) != REC_OK)
                _exit(2);
            ring_advance(c);
            write_byte(pfd[1], (int)s);
        }
        _exit(0);
    }
    uint32_t *flag = &ctl->cons_waiting;
    for (uint64_t s = 0; s < 3; s++) {
        wait_parked(pid, &flag, 1);
        uint64_t t0 = clock_mono_ns();
        push_rec(p, s, 64);
        ring_flush(p);
        assert_int_equal(read_byte(pfd[0], 10000), (int)s);
        print_message("  parked consumer woke and answered in %.1f us\n",
                      (double)(clock_mono_ns() - t0) / 1e3);
    }
    expect_exit(pid, 0);
    ring_stats st;
    ring_get_stats(o, &st);
    assert_true(st.consumer_waits >= 3);
    close(pfd[0]);
    close(pfd[1]);
    shm_detach(seg);
    ring_detach(p);
    ring_detach(o);
}

static void test_ring_parked_producer_woken_by_release(void **state)
{
    (void)state;
    ring *o, *c;
    shm *seg;
    int pfd[2];
    assert_int_equal(ring_create(g_name, 4096, 1024, &o), 0);
    ring_ctl *ctl = map_ctl(g_name, &seg);
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ring *p;
        if (ring_attach(g_name, RING_PRODUCER, &p) != 0)
            _exit(1);
        for (uint64_t s = 0; s < 4; s++)
            push_rec(p, s, 1000); /* 4 x 1008 = 4032: full for another 1000 */
        int rc = ring_wait_space(p, 1000, -1);
        write_byte(pfd[1], rc == 0 ? 7 : 8);
        push_rec(p, 4, 1000);
        ring_flush(p);
        _exit(0);
    }
    uint32_t *flag = &ctl->prod_waiting;
    wait_parked(pid, &flag, 1);
    c = attach(g_name, RING_CONSUMER);
    pop_rec(c, 0); /* releases, sees the flag, wakes the producer */
    assert_int_equal(read_byte(pfd[0], 10000), 7);
    expect_exit(pid, 0);
    for (uint64_t s = 1; s < 5; s++)
        pop_rec(c, s);
    ring_stats st;
    ring_get_stats(o, &st);
    assert_true(st.producer_waits >= 1);
    close(pfd[0]);
    close(pfd[1]);
    ring_detach(c);
    shm_detach(seg);
    ring_detach(o);
}

static void on_usr1(int sig)
{
    (void)sig;
}

static void test_ring_wait_returns_eintr_on_signal(void **state)
{
    (void)state;
    ring *o;
    shm *seg;
    assert_int_equal(ring_create(g_name, 4096, 1024, &o), 0);
    ring_ctl *ctl = map_ctl(g_name, &seg);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_usr1; /* no SA_RESTART: the wait must come back */
        sigaction(SIGUSR1, &sa, NULL);
        ring *c;
        if (ring_attach(g_name, RING_CONSUMER, &c) != 0)
            _exit(1);
        _exit(ring_wait_data(c, -1) == -EINTR ? 0 : 2);
    }
    uint32_t *flag = &ctl->cons_waiting;
    wait_parked(pid, &flag, 1);
    assert_int_equal(kill(pid, SIGUSR1), 0);
    expect_exit(pid, 0);
    shm_detach(seg);
    ring_detach(o);
}

static void test_ring_wait_any_wakes_on_each_ring_and_extra(void **state)
{
    (void)state;
    ring *o[NRINGS], *p[NRINGS];
    shm *seg[NRINGS];
    uint32_t *flags[NRINGS];
    int pfd[2];
    /* the extra word in memory shared with the child, like a thread's of the same process */
    uint32_t *extra = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(extra != MAP_FAILED);
    for (int i = 0; i < NRINGS; i++) {
        assert_int_equal(ring_create(g_names[i], 4096, 1024, &o[i]), 0);
        flags[i] = &map_ctl(g_names[i], &seg[i])->cons_waiting;
        p[i] = attach(g_names[i], RING_PRODUCER);
    }
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ring *c[NRINGS];
        for (int i = 0; i < NRINGS; i++)
            if (ring_attach(g_names[i], RING_CONSUMER, &c[i]) != 0)
                _exit(1);
        uint32_t seen = *extra;
        for (int round = 0; round < 4; round++) {
            if (ring_wait_any(c, NRINGS, extra, seen, -1) != 0)
                _exit(2);
            int which = -1;
            for (int i = 0; i < NRINGS; i++) {
                const void *buf;
                size_t len;
                if (ring_peek(c[i], &buf, &len) == 0) {
                    which = i;
                    ring_advance(c[i]);
                }
            }
            if (which < 0 && atom_load_acquire(extra) != seen) {
                which = 9;
                seen = atom_load_acquire(extra);
            }
            write_byte(pfd[1], which);
        }
        write_byte(pfd[1], ring_wait_any(c, NRINGS, extra, seen, 30) == -ETIMEDOUT ? 20 : 21);
        _exit(0);
    }
    const int order[3] = {2, 0, 1};
    for (int k = 0; k < 3; k++) {
        wait_parked(pid, flags, NRINGS);
        push_rec(p[order[k]], (uint64_t)k, 64);
        ring_flush(p[order[k]]);
        assert_int_equal(read_byte(pfd[0], 10000), order[k]);
    }
    wait_parked(pid, flags, NRINGS);
    ring_wake_word(extra);
    assert_int_equal(read_byte(pfd[0], 10000), 9);
    assert_int_equal(read_byte(pfd[0], 10000), 20);
    expect_exit(pid, 0);
    close(pfd[0]);
    close(pfd[1]);
    for (int i = 0; i < NRINGS; i++) {
        ring_detach(p[i]);
        shm_detach(seg[i]);
        ring_detach(o[i]);
    }
    munmap(extra, 4096);
}

/* A pad must reach exactly the end of the data area. A short one (len 8 at offset 0) would
 * send the consumer into the middle of a record; the payload here is shaped like a valid
 * record header, so skipping the pad would return a record instead of the error. */
static void test_ring_short_pad_gives_ebadmsg(void **state)
{
    (void)state;
    const ring_rec_hdr inner[3] = {{.len = 8, .kind = RING_REC_DATA}};
    expect_bad_header((ring_rec_hdr){.len = 8, .kind = RING_REC_PAD}, inner, sizeof(inner));
}

/* Releasing up to the read cursor itself is the relay's normal call (everything it read is
 * acknowledged): it gives back every record read. */
static void test_ring_release_to_read_position(void **state)
{
    (void)state;
    ring *o, *p, *c;
    ring_stats st;
    open_ring3(g_name, 4096, 1024, &o, &p, &c);
    push_recs(p, 0, 3, 40);
    for (uint64_t s = 0; s < 3; s++)
        read_rec(c, s);
    ring_release_to(c, ring_read_pos(c));
    ring_get_stats(o, &st);
    assert_int_equal(st.records_out, 3);
    assert_int_equal(st.tail, ring_read_pos(c));
    assert_int_equal(ring_used(o), 0);
    ring_release_to(c, ring_read_pos(c)); /* again: nothing more to give back */
    ring_get_stats(o, &st);
    assert_int_equal(st.records_out, 3);
    detach_ring3(o, p, c);
}

/* A record length within max_record and within the data area, but past the published head,
 * is corrupt as well: the consumer must not read bytes the producer has not published. */
static void test_ring_length_past_head_gives_ebadmsg(void **state)
{
    (void)state;
    /* 500 <= max_record and fits before the end of the area, but head is at 32 */
    expect_bad_length(500);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_ring_create_rejects_bad_geometry),
        T(test_ring_single_process_fifo),
        T(test_ring_publishes_per_batch_or_flush),
        T(test_ring_wrap_pad_at_every_offset),
        T(test_ring_full_and_empty),
        T(test_ring_largest_record_and_emsgsize),
        T(test_ring_commit_shorter_than_reserved),
        T(test_ring_release_to_and_rewind),
        T(test_ring_corrupt_length_gives_ebadmsg),
        T(test_ring_two_process_stress),
        T(test_ring_two_process_stress_tiny_ring_parks),
        T(test_ring_producer_killed_mid_write_leaves_nothing_partial),
        T(test_ring_consumer_crash_counts_attempts_of_one_record),
        T(test_ring_consumer_killed_before_release_rereads),
        T(test_ring_idle_consumer_parks_without_cpu),
        T(test_ring_parked_consumer_woken_by_push),
        T(test_ring_parked_producer_woken_by_release),
        T(test_ring_wait_returns_eintr_on_signal),
        T(test_ring_wait_any_wakes_on_each_ring_and_extra),
        T(test_ring_short_pad_gives_ebadmsg),
        T(test_ring_release_to_read_position),
        T(test_ring_length_past_head_gives_ebadmsg),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
