/* ring: SPSC ring of variable-length records in a shared-memory segment; see ring.h for the
 * contract and the ordering diagram, ring_layout.h for the bytes.
 *
 * Each side keeps its own position and a cached copy of the peer's, in the process-local
 * handle; the shared indices are touched only when the cache says full/empty (re-read) or at
 * a batch boundary (publish). That is what keeps the cache lines holding head and tail from
 * bouncing on every record (IPC-LIMITS: 25 M/s when both are touched per record, 150+ M/s
 * when cached and batched).
 */
#include "ring.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atom.h"
#include "clock.h"
#include "futex.h"
#include "log.h"
#include "ring_layout.h"
#include "shm.h"

/* How long a side spins (with a pause per probe) before it parks: long enough to ride out a
 * peer that is busy for a moment, short against the ~30-50 us of a cross-core wake-up. */
#define SPIN_NS 4000

struct ring {
    shm *seg;
    ring_ctl *ctl;
    unsigned char *data;
    uint64_t cap, mask, max_rec;
    enum ring_role role;

    /* producer */
    uint64_t p_head;       /* end of committed records (published or not) */
    uint64_t p_pub;        /* last head published */
    uint64_t p_tail;       /* cached tail */
    uint64_t p_res_pos;    /* reservation: position of its header */
    uint64_t p_res_pad;    /* reservation: pad bytes before it (0: none) */
    size_t p_res_len;      /* reservation: reserved length, 0 when none outstanding */
    unsigned p_pending;    /* commits since the last publication */
    uint64_t p_records_in; /* records committed, counting from the segment's value */

    /* consumer */
    uint64_t c_read;       /* read cursor: records before it are finished */
    uint64_t c_head;       /* cached head */
    uint64_t c_tail;       /* last tail published */
    uint64_t c_cur;        /* position of the record ring_peek returned */
    uint64_t c_cur_end;    /* position just after it */
    int c_peeked;          /* a ring_peek result is outstanding */
    uint64_t c_unreleased; /* records advanced past but not yet released */
    uint64_t c_records_out;
    uint64_t c_begun; /* position ring_begin marked last (for ring_end) */
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static inline uint64_t slot_size(uint64_t len)
{
    return sizeof(ring_rec_hdr) + ((len + RING_ALIGN - 1) & ~(uint64_t)(RING_ALIGN - 1));
}

static inline ring_rec_hdr *hdr_at(const ring *r, uint64_t pos)
{
    return (ring_rec_hdr *)(r->data + (pos & r->mask));
}

static int64_t deadline_of(int timeout_ms)
{
    if (timeout_ms < 0)
        return -1;
    return (int64_t)clock_mono_ns() + (int64_t)timeout_ms * 1000000;
}

/* ---- lifecycle ---- */

static int is_pow2(uint64_t v)
{
    return v && !(v & (v - 1));
}

static int geometry_ok(size_t capacity, size_t max_record)
{
    /* record headers hold 32-bit lengths */
    return is_pow2(capacity) && capacity >= RING_MIN_SIZE && capacity <= ((size_t)1 << 40) &&
           max_record > 0 && max_record <= capacity / 4 && max_record <= UINT32_MAX / 2;
}

/* Fills in the geometry of a freshly created (zeroed) segment and maps it as an observer. */
static int init_created(const char *name, shm *seg, size_t capacity, size_t max_record, ring **out)
{
    ring_ctl *ctl = shm_base(seg);
    /* written before anybody attaches: the supervisor creates rings before it starts the
     * stages, and the exec of a stage orders these plain stores before its loads */
    ctl->capacity = capacity;
    ctl->max_record = max_record;
    ctl->data_offset = RING_DATA_OFFSET;
    shm_detach(seg);
    int rc = ring_attach(name, RING_OBSERVER, out);
    if (rc < 0)
        shm_unlink_name(name);
    return rc;
}

int ring_create(const char *name, size_t capacity, size_t max_record, ring **out)
{
    shm *seg;
    int rc;

    *out = NULL;
    if (!geometry_ok(capacity, max_record))
        return -EINVAL;
    rc = shm_create(name, SHM_KIND_RING, RING_LAYOUT_VERSION, RING_DATA_OFFSET + capacity, &seg);
    if (rc < 0)
        return rc;
    return init_created(name, seg, capacity, max_record, out);
}

/* Whether the published records of an adopted ring can be read back: positions in order and
 * within one capacity, every header between tail and head a valid DATA or PAD record that
 * ends exactly at head. Anything else means the segment was damaged (it is then reclaimed,
 * not fed to a consumer). Nobody else maps the segment while this runs. */
static int adopted_ring_sane(const ring_ctl *ctl, const unsigned char *data, uint64_t cap,
                             uint64_t max_rec)
{
    uint64_t head = ctl->head, tail = ctl->tail, mask = cap - 1;
    if (tail > head || head - tail > cap || head % RING_ALIGN || tail % RING_ALIGN)
        return 0;
    for (uint64_t pos = tail; pos != head;) {
        const ring_rec_hdr *h = (const ring_rec_hdr *)(data + (pos & mask));
        uint64_t to_end = cap - (pos & mask), step;
        if (h->kind == RING_REC_PAD && h->len == to_end)
            step = to_end;
        else if (h->kind == RING_REC_DATA && h->len >= 1 && h->len <= max_rec &&
                 slot_size(h->len) <= to_end)
            step = slot_size(h->len);
        else
            return 0;
        if (head - pos < step)
            return 0;
        pos += step;
    }
    return 1;
}

int ring_adopt(const char *name, size_t capacity, size_t max_record, ring **out)
{
    shm *seg;
    int rc;

    *out = NULL;
    if (!geometry_ok(capacity, max_record))
        return -EINVAL;
    rc = shm_adopt(name, SHM_KIND_RING, RING_LAYOUT_VERSION, RING_DATA_OFFSET + capacity, &seg);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return init_created(name, seg, capacity, max_record, out);

    /* Adopted: its owner and both of its sides are dead, this process alone maps it now. */
    ring_ctl *ctl = shm_base(seg);
    const unsigned char *data = (const unsigned char *)ctl + RING_DATA_OFFSET;
    const char *why = NULL;
    if (ctl->capacity != capacity || ctl->max_record != max_record ||
        ctl->data_offset != RING_DATA_OFFSET)
        why = "of another geometry";
    else if (!adopted_ring_sane(ctl, data, capacity, max_record))
        why = "with damaged positions or records";
    if (why) {
        /* a size match with another record limit, or a damaged ring: start it empty. We own
         * it now, so shm_create would see a live owner; remove the name first. */
        log_warn("ring", "ring %s %s: reclaimed empty", name, why);
        shm_detach(seg);
        shm_unlink_name(name);
        rc = ring_create(name, capacity, max_record, out);
        return rc < 0 ? rc : 0;
    }
    /* Parked flags of the dead sides: the next producer and consumer clear their own on
     * attach too, but an observer or a side attaching later must not see a parked peer that
     * no longer exists and make a useless FUTEX_WAKE for it. The futex words keep their values
     * (a waiter compares against what it reads). Relaxed: no other process maps the ring yet,
     * and the stages it starts are exec'ed after this store. The attempt mark stays: a record
     * that was killing consumers keeps its count across the restart. */
    atom_store_relaxed(&ctl->prod_waiting, 0);
    atom_store_relaxed(&ctl->cons_waiting, 0);
    shm_detach(seg);
    rc = ring_attach(name, RING_OBSERVER, out);
    return rc < 0 ? rc : 1;
}

int ring_attach(const char *name, enum ring_role role, ring **out)
{
    shm *seg;
    int rc;

    *out = NULL;
    if (role != RING_PRODUCER && role != RING_CONSUMER && role != RING_OBSERVER)
        return -EINVAL;
    rc = shm_attach(name, SHM_KIND_RING, RING_LAYOUT_VERSION, &seg);
    if (rc < 0)
        return rc;
    ring_ctl *ctl = shm_base(seg);
    uint64_t cap = ctl->capacity;
    if (!is_pow2(cap) || cap < RING_MIN_SIZE || ctl->max_record == 0 || ctl->max_record > cap / 4 ||
        ctl->data_offset != RING_DATA_OFFSET || shm_size(seg) < RING_DATA_OFFSET + cap) {
        shm_detach(seg);
        return -EPROTO;
    }
    ring *r = calloc(1, sizeof(*r));
    if (!r) {
        shm_detach(seg);
        return -ENOMEM;
    }
    r->seg = seg;
    r->ctl = ctl;
    r->data = (unsigned char *)ctl + RING_DATA_OFFSET;
    r->cap = cap;
    r->mask = cap - 1;
    r->max_rec = ctl->max_record;
    r->role = role;
    /* Issue 8 item 4: only the producer writes record bytes; every other process maps them
     * read-only, so a callback that writes past its (const) payload faults at once (a crash:
     * the poison-record path) instead of silently corrupting the records queued behind it.
     * The control block (positions, attempt mark) stays writable. */
    if (role != RING_PRODUCER && mprotect(r->data, cap, PROT_READ) != 0) {
        rc = -errno;
        free(r);
        shm_detach(seg);
        return rc;
    }

    /* A previous holder of this role may have died: its published positions are the truth,
     * anything it wrote beyond them is discarded (producer) or re-read (consumer). */
    if (role == RING_PRODUCER) {
        /* relaxed: the dead producer wrote head itself; this process is its only writer now */
        r->p_head = r->p_pub = atom_load_relaxed(&ctl->head);
        /* P3 pairs with C2: the consumer's reads of released bytes precede our reuse */
        r->p_tail = atom_load_acquire(&ctl->tail);
        r->p_records_in = atom_load_relaxed(&ctl->records_in);
        /* a producer that died parked leaves its flag set: harmless, but clear it */
        atom_store_relaxed(&ctl->prod_waiting, 0);
    } else if (role == RING_CONSUMER) {
        r->c_read = r->c_tail = atom_load_relaxed(&ctl->tail); /* relaxed: we are its writer */
        /* C1 pairs with P1 */
        r->c_head = atom_load_acquire(&ctl->head);
        r->c_records_out = atom_load_relaxed(&ctl->records_out);
        r->c_begun = UINT64_MAX;
        atom_store_relaxed(&ctl->cons_waiting, 0);
    }
    *out = r;
    return 0;
}

void ring_detach(ring *r)
{
    if (!r)
        return;
    shm_detach(r->seg);
    free(r);
}

int ring_unlink(const char *name)
{
    return shm_unlink_name(name);
}

void ring_set_tag(ring *r, uint64_t tag)
{
    /* relaxed: written by the supervisor before it starts the stages that may read it */
    atom_store_relaxed(&r->ctl->tag, tag);
}

uint64_t ring_tag(const ring *r)
{
    return atom_load_relaxed(&r->ctl->tag); /* relaxed: see ring_set_tag */
}

size_t ring_capacity(const ring *r)
{
    return (size_t)r->cap;
}

size_t ring_max_record(const ring *r)
{
    return (size_t)r->max_rec;
}

size_t ring_used(const ring *r)
{
    /* tail first, acquire, so the head read after it is at least as new: head >= tail */
    uint64_t tail = atom_load_acquire(&r->ctl->tail);
    uint64_t head = atom_load_acquire(&r->ctl->head);
    return head > tail ? (size_t)(head - tail) : 0;
}

int ring_is_empty(const ring *r)
{
    /* C1 pairs with P1 */
    return atom_load_acquire(&r->ctl->head) == r->c_read;
}

/* ---- producer ---- */

/* Bytes a record of len needs at the producer's head: the slot, plus a pad to the end when
 * the slot would cross it. */
static uint64_t need_at(const ring *r, uint64_t pos, uint64_t len, uint64_t *pad)
{
    uint64_t slot = slot_size(len);
    uint64_t to_end = r->cap - (pos & r->mask);
    *pad = slot > to_end ? to_end : 0;
    return *pad + slot;
}

static int fits(ring *r, uint64_t need)
{
    if (r->cap - (r->p_head - r->p_tail) >= need)
        return 1;
    /* P3 pairs with C2: bytes before the tail have been read; we may overwrite them */
    r->p_tail = atom_load_acquire(&r->ctl->tail);
    return r->cap - (r->p_head - r->p_tail) >= need;
}

/* Wakes the side parked on word if its flag says it is parked. The caller stored its index
 * before (P1 or C2); the fence makes this "store index, full fence, load flag" (P2 pairs with
 * C3, C4 with P4). The waker takes the flag (exchange to 0): later publications before the
 * sleeper runs again see 0 and make no FUTEX_WAKE of their own, so one park costs at most
 * one wake-up however many batches are published meanwhile. */
static void wake_side(uint32_t *waiting, uint32_t *word)
{
    atom_fence_full();
    /* relaxed load: the fence above orders it. K1, the exchange, pairs with the sleeper's
     * flag store (C3/P4 in wait_ready): it takes exactly the 1 stored there, once, so a
     * sleeper that set its flag again after an earlier wake-up is woken again, and a stale 1
     * left by a dead sleeper costs one wake at most */
    if (atom_load_relaxed(waiting) && atom_xchg_acq_rel(waiting, 0)) {
        /* the bump after the fence makes a FUTEX_WAIT that has not slept yet fail; relaxed:
         * the fence above already orders our index store before it */
        atom_add_relaxed(word, 1);
        futex_wake(word, 1);
    }
}

static void wake_consumer(ring *r)
{
    wake_side(&r->ctl->cons_waiting, &r->ctl->cons_wake); /* P2 */
}

static void publish(ring *r)
{
    ring_ctl *c = r->ctl;
    /* relaxed: counters for observers; the head release below orders them for readers that
     * acquire head */
    r->p_records_in += r->p_pending;
    atom_store_relaxed(&c->records_in, r->p_records_in);
    /* P1 pairs with C1: record bytes and headers written before are visible with head */
    atom_store_release(&c->head, r->p_head);
    r->p_pub = r->p_head;
    r->p_pending = 0;
    wake_consumer(r);
}

int ring_reserve(ring *r, size_t len, void **buf)
{
    uint64_t pad;

    if ((uint64_t)len - 1 >= r->max_rec) /* 0 wraps to the maximum: one compare for both */
        return -EMSGSIZE;
    uint64_t need = need_at(r, r->p_head, len, &pad);
    if (!fits(r, need)) {
        /* full: whatever we hold back must reach the consumer or the ring never drains (a
         * producer in drop mode may never call ring_wait_space) */
        if (r->p_head != r->p_pub)
            publish(r);
        return -EAGAIN;
    }
    r->p_res_pad = pad;
    r->p_res_pos = r->p_head + pad;
    r->p_res_len = len;
    *buf = (unsigned char *)hdr_at(r, r->p_res_pos) + sizeof(ring_rec_hdr);
    return 0;
}

void ring_commit(ring *r, size_t len)
{
    if ((uint64_t)len - 1 >= r->p_res_len)
        abort(); /* caller bug: no reservation, a length of 0 or beyond the reservation */
    if (r->p_res_pad) {
        ring_rec_hdr *pad = hdr_at(r, r->p_head);
        pad->len = (uint32_t)r->p_res_pad;
        pad->kind = RING_REC_PAD;
    }
    /* plain stores: nothing is visible before the P1 release in publish() */
    *hdr_at(r, r->p_res_pos) = (ring_rec_hdr){.len = (uint32_t)len, .kind = RING_REC_DATA};
    r->p_head = r->p_res_pos + slot_size(len);
    r->p_res_len = 0;
    if (++r->p_pending >= RING_BATCH)
        publish(r);
}

void ring_flush(ring *r)
{
    if (r->p_head != r->p_pub)
        publish(r);
}

int ring_push(ring *r, const void *data, size_t len)
{
    void *buf;
    int rc = ring_reserve(r, len, &buf);
    if (rc < 0)
        return rc;
    memcpy(buf, data, len);
    ring_commit(r, len);
    return 0;
}

void ring_count_drop(ring *r)
{
    /* relaxed: a counter; this producer is its only writer */
    atom_store_relaxed(&r->ctl->drops, atom_load_relaxed(&r->ctl->drops) + 1);
}

/* ---- consumer ---- */

static int have_data(ring *r)
{
    if (r->c_read != r->c_head)
        return 1;
    /* C1 pairs with P1: the record bytes before head are complete once we see head */
    r->c_head = atom_load_acquire(&r->ctl->head);
    return r->c_read != r->c_head;
}

uint64_t ring_skip_damaged(ring *r, const void **first, size_t *first_len)
{
    uint64_t pos = r->c_read;
    r->c_head = atom_load_acquire(&r->ctl->head); /* C1 pairs with P1 */
    uint64_t bytes = r->c_head - pos, to_end = r->cap - (pos & r->mask);
    if (first)
        *first = hdr_at(r, pos);
    if (first_len)
        *first_len = (size_t)(bytes < to_end ? bytes : to_end);
    r->c_read = r->c_head;
    r->c_peeked = 0;
    return bytes;
}

int ring_peek(ring *r, const void **buf, size_t *len)
{
    uint64_t pos = r->c_read;

    for (;;) {
        if (pos == r->c_head) {
            r->c_head = atom_load_acquire(&r->ctl->head); /* C1 pairs with P1 */
            if (pos == r->c_head)
                return -EAGAIN;
        }
        const ring_rec_hdr *h = hdr_at(r, pos);
        uint64_t avail = r->c_head - pos, to_end = r->cap - (pos & r->mask);
        ring_rec_hdr hv = *h; /* one load: the producer wrote it once, before P1 */
        if (hv.kind == RING_REC_DATA) {
            uint64_t slot = slot_size(hv.len);
            /* a corrupt length must not send us past the data area or the published head */
            if ((uint64_t)hv.len - 1 >= r->max_rec || slot > avail || slot > to_end)
                return -EBADMSG;
            r->c_cur = pos;
            r->c_cur_end = pos + slot;
            r->c_peeked = 1;
            *buf = h + 1;
            *len = hv.len;
            return 0;
        }
        if (hv.kind != RING_REC_PAD || hv.len != to_end || hv.len > avail)
            return -EBADMSG;
        /* a pad is no record: skip it for good (ring_read_pos never points at one) */
        pos += hv.len;
        r->c_read = pos;
    }
}

void ring_advance(ring *r)
{
    if (!r->c_peeked)
        abort(); /* caller bug: advance without a peeked record */
    r->c_read = r->c_cur_end;
    r->c_peeked = 0;
    r->c_unreleased++;
}

uint64_t ring_read_pos(const ring *r)
{
    return r->c_read;
}

/* C4. With gate, a parked producer is woken only once a RING_WAKE_FREE_DIV-th of the ring
 * is free (hysteresis): a producer that parked on a full ring would otherwise be woken by
 * every batch the consumer releases, write that batch's worth and park again, a futex round
 * trip per batch. Without gate (a partial release on acknowledgement, or a consumer about to
 * wait: nothing more will be released until it runs again) any parked producer is woken. */
static void wake_producer(ring *r, int gate)
{
    ring_ctl *c = r->ctl;
    if (gate) {
        atom_fence_full(); /* C4: tail stored, fence, load the flag */
        if (!atom_load_relaxed(&c->prod_waiting))
            return;
        /* relaxed: a size estimate; a parked producer does not move head, and a stale head
         * only makes us wake it early */
        uint64_t head = atom_load_relaxed(&c->head);
        if (r->cap - (head - r->c_tail) < r->cap / RING_WAKE_FREE_DIV)
            return;
    }
    wake_side(&c->prod_waiting, &c->prod_wake);
}

static void publish_tail(ring *r, uint64_t pos, uint64_t nrecords, int gate)
{
    ring_ctl *c = r->ctl;
    r->c_records_out += nrecords;
    atom_store_relaxed(&c->records_out, r->c_records_out); /* relaxed: a counter */
    /* C2 pairs with P3: our reads of the released records are done before the producer
     * may overwrite them */
    atom_store_release(&c->tail, pos);
    r->c_tail = pos;
    wake_producer(r, gate);
}

void ring_release(ring *r)
{
    if (r->c_read == r->c_tail)
        return;
    publish_tail(r, r->c_read, r->c_unreleased, 1);
    r->c_unreleased = 0;
}

void ring_release_to(ring *r, uint64_t pos)
{
    if (pos < r->c_tail || pos > r->c_read)
        abort(); /* caller bug: outside [tail, read cursor] */
    if (pos == r->c_tail)
        return;
    /* count the records given back; their headers are still ours to read (not released) */
    uint64_t n = 0;
    for (uint64_t p = r->c_tail; p < pos;) {
        const ring_rec_hdr *h = hdr_at(r, p);
        if (h->kind == RING_REC_DATA) {
            n++;
            p += slot_size(h->len);
        } else {
            p += h->len;
        }
    }
    if (n > r->c_unreleased)
        n = r->c_unreleased;
    publish_tail(r, pos, n, 0);
    r->c_unreleased -= n;
}

void ring_rewind(ring *r)
{
    r->c_read = r->c_tail;
    r->c_peeked = 0;
    r->c_unreleased = 0;
}

/* The attempt mark is written so that a SIGKILL between any two stores is read correctly by
 * the next consumer: a new record first clears the state (count 0), then stores the
 * position, then count 1. A kill after the position but before the count leaves "this
 * position, run 0 times, unfinished", and the next begin counts 1: right, it never ran. */
unsigned ring_begin(ring *r)
{
    ring_ctl *c = r->ctl;
    uint64_t pos = r->c_peeked ? r->c_cur : r->c_read;
    /* relaxed: only consumers write the mark, one at a time; a previous consumer's stores
     * are visible to us because we were started after it died */
    uint64_t mark = atom_load_relaxed(&c->att_pos);
    uint32_t state = atom_load_relaxed(&c->att_state);
    unsigned count;

    r->c_begun = pos;
    if (pos == mark && !(state & 1)) {
        count = (state >> 1) + 1;
        atom_store_release(&c->att_state, (uint32_t)count << 1);
    } else if (pos > mark || state == 0 || pos == mark) {
        /* a new record, a first run, or a re-run of a record that was finished before */
        atom_store_relaxed(&c->att_state, 0);
        /* M2: release orders the cleared state before the new position */
        atom_store_release(&c->att_pos, pos);
        count = 1;
        atom_store_release(&c->att_state, 2u); /* M3: count 1 after the position */
    } else {
        /* pos < mark: a record finished before the crash of a later one, re-read; it is not
         * to blame, and the later record's count must survive */
        r->c_begun = UINT64_MAX;
        return 1;
    }
    /* the mark must be in memory before the caller runs the record: a crash is a signal in
     * this thread, which the signal fence orders against */
    atom_barrier();
    return count;
}

void ring_end(ring *r)
{
    ring_ctl *c = r->ctl;
    if (r->c_begun == UINT64_MAX)
        return;
    if (atom_load_relaxed(&c->att_pos) == r->c_begun) {
        uint32_t state = atom_load_relaxed(&c->att_state);
        atom_store_release(&c->att_state, state | 1u); /* relaxed would do; release is free */
    }
    r->c_begun = UINT64_MAX;
    atom_barrier();
}

/* ---- waiting ---- */

/* What a wait is for, so that one routine does the spin and the park for every kind of wait: data
 * in any of the consumer rings rs (or a change of *extra), or room for need bytes in the producer
 * ring prod. */
typedef struct waitfor {
    ring *const *rs;
    size_t n;
    const uint32_t *extra;
    uint32_t extra_seen;
    ring *prod;
    uint64_t need;
} waitfor;

static int ready(const waitfor *w)
{
    if (w->prod)
        return fits(w->prod, w->need);
    /* acquire pairs with W1, the fence before the increment in ring_wake_word */
    if (w->extra && atom_load_acquire(w->extra) != w->extra_seen)
        return 1;
    for (size_t i = 0; i < w->n; i++)
        if (have_data(w->rs[i]))
            return 1;
    return 0;
}

/* The parked flags of this wait: the producer's of prod, or the consumer's of every rs. A
 * waker clears the flag it acts on (wake_side), so the flags are set again on every round.
 * Relaxed: ordered against the re-check by the full fence in wait_ready. */
static void set_waiting(const waitfor *w, uint32_t v)
{
    if (w->prod) {
        atom_store_relaxed(&w->prod->ctl->prod_waiting, v);
        return;
    }
    for (size_t i = 0; i < w->n; i++)
        atom_store_relaxed(&w->rs[i]->ctl->cons_waiting, v);
}

/* Sleeps until the deadline (absolute, monotonic) without a parked flag: no peer will wake
 * us, so a producer that publishes meanwhile makes no system call for it. -EINTR on a
 * signal (the caller's stop flag may have changed). */
static int nap_until(uint64_t deadline_ns)
{
    struct timespec ts = {.tv_sec = (time_t)(deadline_ns / 1000000000),
                          .tv_nsec = (long)(deadline_ns % 1000000000)};
    int rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
    return rc == EINTR ? -EINTR : 0;
}

/* One round of a park, C3 (consumer rings, pairs with each producer's P2) or P4 (producer,
 * pairs with the consumer's C4): flags, read the futex words, fence, re-check. The words are
 * read relaxed before the fence: a waker bumps one only after its own fence, so a bump we miss
 * here makes the FUTEX_WAIT on vals return at once. Fills words/vals with the producer's word
 * (prod), the consumer words of watch[0..n_watch) (for a consumer wait: w's rings, or a
 * superset of them, ring_park_begin) and extra; *k says how many. 1: ready, do not sleep. */
static int park_round(const waitfor *w, ring *const *watch, size_t n_watch, const uint32_t **words,
                      uint32_t *vals, size_t *k)
{
    set_waiting(w, 1);
    size_t j = 0;
    if (w->prod) {
        words[j] = &w->prod->ctl->prod_wake;
        vals[j++] = atom_load_relaxed(&w->prod->ctl->prod_wake);
    }
    for (size_t i = 0; i < n_watch; i++) {
        words[j] = &watch[i]->ctl->cons_wake;
        vals[j++] = atom_load_relaxed(&watch[i]->ctl->cons_wake);
    }
    if (w->extra) {
        words[j] = w->extra;
        vals[j++] = w->extra_seen;
    }
    *k = j;
    atom_fence_full();
    return ready(w);
}

/* The one spin-then-park routine behind every wait (the protocol is ring.h's C3/P4 side):
 *  1. spin up to spin_ns (0: no spin), a probe and a pause at a time: a peer that is busy for
 *     a moment (a producer in the middle of a batch) is caught without any system call;
 *  2. park: set the parked flag(s), full fence, re-check, FUTEX_WAIT (futex_waitv over several
 *     words), until ready, the deadline (-ETIMEDOUT) or a signal (-EINTR).
 * Returns 0 when ready. ring_wait_paced's nap is the other way to wait (no flag, no waker). */
static int wait_ready(const waitfor *w, int64_t deadline, uint64_t spin_ns)
{
    const uint32_t *words[FUTEX_WAITV_MAX_WORDS];
    uint32_t vals[FUTEX_WAITV_MAX_WORDS];

    if (ready(w))
        return 0;
    if (spin_ns) {
        uint64_t spin_end = clock_mono_ns() + spin_ns;
        for (unsigned i = 1;; i++) {
            cpu_relax();
            if (ready(w))
                return 0;
            if (i % 16 == 0 && clock_mono_ns() >= spin_end)
                break;
        }
    }

    /* relaxed: counters */
    if (w->prod)
        atom_add_relaxed(&w->prod->ctl->producer_waits, 1);
    for (size_t i = 0; i < w->n; i++)
        atom_add_relaxed(&w->rs[i]->ctl->consumer_waits, 1);
    int rc;
    for (;;) {
        size_t k;
        if (park_round(w, w->rs, w->n, words, vals, &k)) {
            rc = 0;
            break;
        }
        if (deadline >= 0 && (int64_t)clock_mono_ns() >= deadline) {
            rc = -ETIMEDOUT;
            break;
        }
        rc = k == 1 ? futex_wait(words[0], vals[0], deadline)
                    : futex_wait_any(words, vals, k, deadline);
        if (rc < 0) { /* -EINTR, -ETIMEDOUT (or a futex error: never spin on it) */
            if (ready(w))
                rc = 0;
            break;
        }
    }
    /* relaxed: only this side gives its flag a meaning; a stale 1 costs the peer one wake */
    set_waiting(w, 0);
    return rc;
}

int ring_wait_space(ring *r, size_t len, int timeout_ms)
{
    uint64_t pad;

    if (len == 0 || len > r->max_rec)
        return -EMSGSIZE;
    ring_flush(r);
    waitfor w = {.prod = r, .need = need_at(r, r->p_head, len, &pad)};
    if (timeout_ms == 0)
        return ready(&w) ? 0 : -ETIMEDOUT;
    /* no spin: the consumer wakes us once a good part of the ring is free (wake_producer),
     * and a producer that spun for the first few bytes released would write them and stop
     * again, bouncing the ring's lines, while taking a CPU the consumer may need */
    return wait_ready(&w, deadline_of(timeout_ms), 0);
}

int ring_wait_data(ring *r, int timeout_ms)
{
    return ring_wait_any(&r, 1, NULL, 0, timeout_ms);
}

/* A consumer about to wait releases everything and wakes a parked producer whatever the
 * hysteresis says: it will release nothing more until it runs again. */
static void release_all(ring *const *rs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ring_release(rs[i]);
        wake_producer(rs[i], 0);
    }
}

static int wait_consumers(ring *const *rs, size_t n, const uint32_t *extra, uint32_t extra_seen,
                          int timeout_ms, uint64_t spin_ns, bool release)
{
    if (n + (extra != NULL) == 0 || n + (extra != NULL) > FUTEX_WAITV_MAX_WORDS)
        return -EINVAL;
    if (release)
        release_all(rs, n);
    waitfor w = {.rs = rs, .n = n, .extra = extra, .extra_seen = extra_seen};
    if (timeout_ms == 0)
        return ready(&w) ? 0 : -ETIMEDOUT;
    return wait_ready(&w, deadline_of(timeout_ms), spin_ns);
}

int ring_wait_any(ring *const *rs, size_t n, const uint32_t *extra, uint32_t extra_seen,
                  int timeout_ms)
{
    return wait_consumers(rs, n, extra, extra_seen, timeout_ms, SPIN_NS, true);
}

int ring_wait_held(ring *const *rs, size_t n, int timeout_ms)
{
    /* no spin: like a paced park, this follows work and the next record is a while away */
    return wait_consumers(rs, n, NULL, 0, timeout_ms, 0, false);
}

static int park_begin(ring *const *rs, size_t n, const uint32_t *extra, uint32_t extra_seen,
                      ring *const *watch, size_t n_watch, const uint32_t **words, uint32_t *vals,
                      bool release)
{
    if (n > n_watch || n_watch + (extra != NULL) == 0 ||
        n_watch + (extra != NULL) > FUTEX_WAITV_MAX_WORDS)
        return -EINVAL;
    if (release)
        release_all(rs, n);
    waitfor w = {.rs = rs, .n = n, .extra = extra, .extra_seen = extra_seen};
    if (ready(&w))
        return 1;
    for (size_t i = 0; i < n; i++) /* relaxed: counters */
        atom_add_relaxed(&rs[i]->ctl->consumer_waits, 1);
    size_t k;
    if (park_round(&w, watch, n_watch, words, vals, &k)) {
        set_waiting(&w, 0); /* as wait_ready's end: only this side gives the flag a meaning */
        return 1;
    }
    return 0;
}

int ring_park_begin(ring *const *rs, size_t n, const uint32_t *extra, uint32_t extra_seen,
                    ring *const *watch, size_t n_watch, const uint32_t **words, uint32_t *vals)
{
    return park_begin(rs, n, extra, extra_seen, watch, n_watch, words, vals, true);
}

int ring_park_begin_held(ring *const *rs, size_t n, const uint32_t *extra, uint32_t extra_seen,
                         ring *const *watch, size_t n_watch, const uint32_t **words, uint32_t *vals)
{
    return park_begin(rs, n, extra, extra_seen, watch, n_watch, words, vals, false);
}

void ring_park_end(ring *const *rs, size_t n)
{
    waitfor w = {.rs = rs, .n = n};
    /* relaxed: only this side gives its flag a meaning; a stale 1 costs the peer one wake */
    set_waiting(&w, 0);
}

static uint64_t nap_ns_setting(void)
{
    static uint64_t nap = UINT64_MAX; /* per process; set once, by the one waiting thread */
    if (nap == UINT64_MAX) {
        const char *env = getenv("MQTTFLOW_RING_NAP_US");
        char *end;
        unsigned long v = env ? strtoul(env, &end, 10) : 0;
        nap =
            env && *env && !*end && v <= 100000 ? (uint64_t)v * 1000 : (uint64_t)RING_NAP_US * 1000;
    }
    return nap;
}

int ring_nap_begin(ring *const *rs, size_t n, uint64_t *nap_ns)
{
    if (n > FUTEX_WAITV_MAX_WORDS)
        return -EINVAL;
    release_all(rs, n);
    waitfor w = {.rs = rs, .n = n};
    *nap_ns = nap_ns_setting();
    return ready(&w);
}

int ring_wait_paced(ring *const *rs, size_t n, const uint32_t *extra, uint32_t extra_seen,
                    int timeout_ms, int busy)
{
    if (!busy)
        /* traffic stopped at least a nap ago: a spin would not pay either, park at once */
        return wait_consumers(rs, n, extra, extra_seen, timeout_ms, 0, true);
    /* busy: a nap instead of a spin, since a nap catches what a spin would, and a spin per
     * record is what a lightly loaded stage must not pay. The extra word is not watched (its
     * waker is not asked to wake us: see ring.h) */
    uint64_t nap;
    int rc = ring_nap_begin(rs, n, &nap); /* n == 0: a plain nap */
    if (rc != 0)
        return rc < 0 ? rc : 0;
    waitfor w = {.rs = rs, .n = n};
    uint64_t now = clock_mono_ns(), end = now + nap;
    if (timeout_ms >= 0 && end > now + (uint64_t)timeout_ms * 1000000)
        end = now + (uint64_t)timeout_ms * 1000000;
    rc = end > now ? nap_until(end) : 0;
    if (ready(&w))
        return 0;
    return rc < 0 ? rc : -ETIMEDOUT;
}

int ring_pace_nap(ring_pace *p, size_t taken)
{
    uint64_t now = clock_mono_ns(), nap = nap_ns_setting(), span = now - p->last_ns;
    p->last_ns = now;
    if (!nap)
        return taken != 0;
    /* taken / span >= RING_PACE_MIN / nap, without a division; a first call (last_ns 0) has
     * a span of the whole uptime and parks */
    return taken && (uint64_t)taken * nap >= RING_PACE_MIN * span;
}

void ring_wake_word(uint32_t *word)
{
    /* W1 pairs with the acquire in ready(): what the waker wrote before is visible to the
     * woken thread once it sees the new value */
    atom_fence_full();
    atom_add_relaxed(word, 1);
    /* every waiter: besides the thread that waits now, an io_uring futex wait armed by an
     * earlier park may still be queued on the word (the relay's one-thread path), and waking
     * only the oldest would wake that one */
    futex_wake(word, INT_MAX);
}

/* ---- counters ---- */

void ring_get_stats(const ring *r, ring_stats *st)
{
    const ring_ctl *c = r->ctl;
    /* relaxed snapshots (tail before head, so head >= tail): observers tolerate skew */
    st->tail = atom_load_acquire(&c->tail);
    st->head = atom_load_acquire(&c->head);
    st->records_in = atom_load_relaxed(&c->records_in);
    st->records_out = atom_load_relaxed(&c->records_out);
    st->producer_waits = atom_load_relaxed(&c->producer_waits);
    st->consumer_waits = atom_load_relaxed(&c->consumer_waits);
    st->drops = atom_load_relaxed(&c->drops);
}
