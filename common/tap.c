/* tap: message copies for `mqttflow tap` (see tap.h). */
#include "tap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atom.h"
#include "names.h"
#include "shm.h"

#define TAP_VERSION 1
#define TAP_PAD     0x80000000u /* slot flag: filler up to the end of the data, skip it */

/* Segment: shm_hdr, the fixed part, then the producer's and the consumer's cache lines, then
 * the data. Ordering: the producer writes a slot, then P1 stores head (release); the reader
 * C1 loads head (acquire), reads the slot, then C2 stores tail (release); the producer P2
 * loads tail (acquire) before reusing those bytes. */
typedef struct tap_layout {
    shm_hdr hdr;
    uint64_t cap;   /* data bytes, a power of two */
    uint32_t rule;  /* filter: TAP_RULE_ANY or a rule index */
    uint32_t point; /* enum tap_point */
    uint64_t pad0[6];
    uint64_t head;    /* producer: bytes written */
    uint64_t written; /* producer: messages copied */
    uint64_t dropped; /* producer: messages not copied (ring full, too large) */
    uint64_t pad1[5];
    uint64_t tail; /* reader: bytes released */
    uint64_t pad2[7];
    unsigned char data[];
} tap_layout;
_Static_assert(sizeof(tap_layout) == 256, "tap_layout");

/* In front of every record in the data. */
typedef struct tap_slot {
    uint32_t len;         /* bytes of slot + record, a multiple of 8; TAP_PAD: filler */
    uint32_t payload_len; /* the whole payload's length */
    uint64_t at_ns;
} tap_slot;

struct tap {
    shm *seg;
    tap_layout *l;
    uint64_t cap;
    uint64_t taken;     /* reader: bytes of the record tap_take returned, 0 = none */
    uint64_t tail_seen; /* producer: the reader's tail at the last look (a stale value only
                         * underestimates the room: safe) */
};

static const char *const point_names[TAP_N] = {"ingress", "rule", "out"};

int tap_point_parse(const char *name)
{
    for (int i = 0; i < TAP_N; i++)
        if (!strcmp(name, point_names[i]))
            return i;
    return -1;
}

const char *tap_point_name(int point)
{
    return point >= 0 && point < TAP_N ? point_names[point] : "?";
}

int tap_create(const char *name, int point, uint32_t rule, tap **out)
{
    tap *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    int rc =
        shm_create(name, SHM_KIND_TAP, TAP_VERSION, sizeof(tap_layout) + TAP_RING_BYTES, &t->seg);
    if (rc < 0) {
        free(t);
        return rc;
    }
    t->l = shm_base(t->seg);
    t->cap = TAP_RING_BYTES;
    /* plain stores: the stages see the segment only after the release store of its
     * generation (stats_tap_gen), which orders these */
    t->l->cap = TAP_RING_BYTES;
    t->l->rule = rule;
    t->l->point = (uint32_t)point;
    *out = t;
    return 0;
}

void tap_destroy(tap *t)
{
    if (!t)
        return;
    (void)shm_unlink_name(shm_name(t->seg));
    tap_detach(t);
}

int tap_attach(const char *name, tap **out)
{
    tap *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    int rc = shm_attach(name, SHM_KIND_TAP, TAP_VERSION, &t->seg);
    if (rc < 0) {
        free(t);
        return rc;
    }
    t->l = shm_base(t->seg);
    t->cap = t->l->cap;
    /* the capacity comes from shared memory: trust it only if it is what the segment holds */
    if (t->cap == 0 || (t->cap & (t->cap - 1)) || sizeof(tap_layout) + t->cap > shm_size(t->seg)) {
        tap_detach(t);
        return -EPROTO;
    }
    /* P2 as well: the room is known from here on (tap_put keeps head - tail_seen <= cap) */
    t->tail_seen = atom_load_acquire(&t->l->tail);
    *out = t;
    return 0;
}

void tap_detach(tap *t)
{
    if (!t)
        return;
    shm_detach(t->seg);
    free(t);
}

static uint64_t now_realtime(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void count_drop(tap_layout *l)
{
    /* relaxed: a single-writer counter the reader only displays */
    atom_store_relaxed(&l->dropped, atom_load_relaxed(&l->dropped) + 1);
}

void tap_put(tap *t, const rec_view *v)
{
    tap_layout *l = t->l;
    if (l->rule != TAP_RULE_ANY && v->h.rule != l->rule)
        return;
    size_t pl = v->h.payload_len < TAP_MAX_PAYLOAD ? v->h.payload_len : TAP_MAX_PAYLOAD;
    /* rec_size inlined (this runs per message of the stage): header, topic, payload, 2 NULs */
    size_t need = (sizeof(tap_slot) + sizeof(rec_hdr) + v->h.topic_len + pl + 2 + 7) & ~(size_t)7;
    uint64_t cap = t->cap;
    if (need > cap / 4) { /* a very long topic: not worth a quarter of the ring */
        count_drop(l);
        return;
    }
    uint64_t head = atom_load_relaxed(&l->head); /* relaxed: our own field */
    uint64_t off = head & (cap - 1), to_end = cap - off;
    uint64_t total = need + (to_end < need ? to_end : 0);
    if (cap - (head - t->tail_seen) < total) {
        /* only when the room we knew of is used up do we look at the reader's line again */
        t->tail_seen = atom_load_acquire(&l->tail); /* P2, pairs with C2 */
        if (cap - (head - t->tail_seen) < total) {
            count_drop(l); /* the reader is behind: its loss, never the pipeline's wait */
            return;
        }
    }
    if (to_end < need) {
        tap_slot pad = {.len = (uint32_t)to_end | TAP_PAD};
        memcpy(l->data + off, &pad, sizeof(pad.len));
        head += to_end;
        off = 0;
    }
    tap_slot s = {.len = (uint32_t)need, .payload_len = v->h.payload_len, .at_ns = now_realtime()};
    memcpy(l->data + off, &s, sizeof(s));
    (void)rec_encode(l->data + off + sizeof(s), need - sizeof(s), &v->h, v->topic, v->h.topic_len,
                     v->payload, pl);
    atom_store_relaxed(&l->written, atom_load_relaxed(&l->written) + 1); /* display only */
    atom_store_release(&l->head, head + need);                           /* P1, pairs with C1 */
}

int tap_take(tap *t, tap_msg *m)
{
    tap_layout *l = t->l;
    uint64_t cap = t->cap;
    for (;;) {
        uint64_t tail = atom_load_relaxed(&l->tail); /* relaxed: our own field */
        uint64_t head = atom_load_acquire(&l->head); /* C1, pairs with P1 */
        if (head == tail)
            return 0;
        uint64_t off = tail & (cap - 1), avail = head - tail;
        tap_slot s;
        memcpy(&s, l->data + off, sizeof(s.len));
        uint32_t len = s.len & ~TAP_PAD;
        /* the producer is our own stage, but a reader checks what it is handed */
        if (len < sizeof(s.len) || (len & 7) || len > cap - off || len > avail)
            return -EBADMSG;
        if (s.len & TAP_PAD) {
            atom_store_release(&l->tail, tail + len); /* C2, pairs with P2 */
            continue;
        }
        if (len < sizeof(s))
            return -EBADMSG;
        memcpy(&s, l->data + off, sizeof(s));
        /* the slot rounds the record up to 8 bytes; rec_decode wants its exact length */
        const unsigned char *rec = l->data + off + sizeof(s);
        rec_hdr h;
        if (len < sizeof(s) + sizeof(h))
            return -EBADMSG;
        memcpy(&h, rec, sizeof(h));
        size_t rl = rec_size(h.topic_len, h.payload_len);
        if (rl > len - sizeof(s) || rec_decode(rec, rl, &m->v) != 0)
            return -EBADMSG;
        m->at_ns = s.at_ns;
        m->payload_len = s.payload_len;
        t->taken = len;
        return 1;
    }
}

void tap_next(tap *t)
{
    if (!t->taken)
        return;
    uint64_t tail = atom_load_relaxed(&t->l->tail);
    atom_store_release(&t->l->tail, tail + t->taken); /* C2, pairs with P2 */
    t->taken = 0;
}

uint64_t tap_dropped(const tap *t)
{
    return atom_load_relaxed(&t->l->dropped); /* relaxed: a displayed count */
}

uint64_t tap_written(const tap *t)
{
    return atom_load_relaxed(&t->l->written); /* relaxed: a displayed count */
}

void tap_port_sync(tap_port *p, stats *st, int point, const char *instance)
{
    uint64_t *genp = st ? stats_tap_gen(st, point) : NULL;
    uint64_t gen = genp ? atom_load_acquire(genp) : 0; /* T1, pairs with the supervisor's T0 */
    if (gen == p->gen)
        return;
    tap_detach(p->t);
    p->t = NULL;
    p->gen = gen; /* a failed attach is not retried until the next tap */
    char name[SHM_NAME_MAX];
    if (gen && names_tap(name, sizeof(name), instance, tap_point_name(point)) == 0 &&
        tap_attach(name, &p->t) < 0)
        p->t = NULL;
}

void tap_port_fini(tap_port *p)
{
    tap_detach(p->t);
    p->t = NULL;
    p->gen = 0;
}
