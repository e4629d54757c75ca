/* ringrec: the test records of the ring tests (test_ring, test_ring_adopt): a record carries
 * its sequence number, a checksum and its length, so a reader tells a lost, duplicated,
 * reordered or torn record from a good one; and the ring handles both tests open and close.
 * Header-only; include cmocka.h first. */
#ifndef MF_TESTS_RINGREC_H
#define MF_TESTS_RINGREC_H

#include <stdint.h>
#include <string.h>
#include <sys/wait.h>

#include "ring.h"
#include "ring_layout.h"
#include "shm.h"

static inline uint32_t byte_sum(const unsigned char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

/* A record: seq (8), checksum of the rest (4), len (4), then bytes derived from seq. */
static inline void fill_rec(unsigned char *buf, size_t len, uint64_t seq)
{
    for (size_t i = 16; i < len; i++)
        buf[i] = (unsigned char)(seq * 31 + i);
    uint32_t sum = byte_sum(buf + 16, len - 16), l = (uint32_t)len;
    memcpy(buf, &seq, 8);
    memcpy(buf + 8, &sum, 4);
    memcpy(buf + 12, &l, 4);
}

/* 0 when buf is record seq intact; else what is wrong (lost, duplicate/reordered, corrupt) */
enum { REC_OK = 0, REC_LOST = 10, REC_DUP = 11, REC_CORRUPT = 12 };
static inline int check_rec(const unsigned char *buf, size_t len, uint64_t seq)
{
    uint64_t got;
    uint32_t sum, l;
    if (len < 16)
        return REC_CORRUPT;
    memcpy(&got, buf, 8);
    memcpy(&sum, buf + 8, 4);
    memcpy(&l, buf + 12, 4);
    if (got > seq)
        return REC_LOST;
    if (got < seq)
        return REC_DUP;
    if (l != len || sum != byte_sum(buf + 16, len - 16))
        return REC_CORRUPT;
    return REC_OK;
}

static inline void push_rec(ring *p, uint64_t seq, size_t len)
{
    void *buf;
    assert_int_equal(ring_reserve(p, len, &buf), 0);
    fill_rec(buf, len, seq);
    ring_commit(p, len);
}

/* Pushes the records seq first..first+n-1 of len bytes each, then publishes them. */
static inline void push_recs(ring *p, uint64_t first, uint64_t n, size_t len)
{
    for (uint64_t s = first; s < first + n; s++)
        push_rec(p, s, len);
    ring_flush(p);
}

/* Reads one record and checks it is seq; advances past it, releases nothing. */
static inline void read_rec(ring *c, uint64_t seq)
{
    const void *buf;
    size_t len;
    assert_int_equal(ring_peek(c, &buf, &len), 0);
    assert_int_equal(check_rec(buf, len, seq), REC_OK);
    ring_advance(c);
}

/* Reads one record and checks it is seq; advances and releases. */
static inline void pop_rec(ring *c, uint64_t seq)
{
    read_rec(c, seq);
    ring_release(c);
}

static inline ring *attach(const char *name, enum ring_role role)
{
    ring *r = NULL;
    int rc = ring_attach(name, role, &r);
    if (rc != 0)
        fail_msg("ring_attach(%s, %d): %d", name, (int)role, rc);
    return r;
}

/* Creates ring name (size, max_record) as its owner *o, and attaches its producer *p and its
 * consumer *c. */
static inline void open_ring3(const char *name, size_t size, size_t max_record, ring **o, ring **p,
                              ring **c)
{
    assert_int_equal(ring_create(name, size, max_record, o), 0);
    *p = attach(name, RING_PRODUCER);
    *c = attach(name, RING_CONSUMER);
}

/* Detaches the three handles of open_ring3, consumer first. */
static inline void detach_ring3(ring *o, ring *p, ring *c)
{
    ring_detach(c);
    ring_detach(p);
    ring_detach(o);
}

/* The ring's control block, mapped through shm the way a stray writer would reach it. */
static inline ring_ctl *map_ctl(const char *name, shm **seg)
{
    assert_int_equal(shm_attach(name, SHM_KIND_RING, RING_LAYOUT_VERSION, seg), 0);
    return shm_base(*seg);
}

static inline void expect_exit(pid_t pid, int code)
{
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st))
        fail_msg("child %d did not exit (signal %d)", (int)pid,
                 WIFSIGNALED(st) ? WTERMSIG(st) : -1);
    assert_int_equal(WEXITSTATUS(st), code);
}

#endif
