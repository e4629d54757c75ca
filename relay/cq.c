/* cq: completion queue between paho's threads and the relay's main loop; see cq.h.
 *
 * Token layout (the void * paho hands back), never 0 so it cannot be mistaken for "no
 * context":
 *
 *   bits 63..60  registry id + 1 of the queue (1..15)
 *   bits 59..32  generation of the slot (publishes) or epoch of the connection (events)
 *   bits 31..0   slot index (publishes) or connection index (events)
 *
 * Every field of a slot is written and read under q->mu, by the main loop (acquire, cancel,
 * drain, fail_conn) and by paho's threads (complete). The queue of finished slots cannot
 * overflow: a slot is queued once per occupancy (on its way out of S_SENT) and becomes free
 * only when cq_drain takes it, so at most n_slots are ever queued.
 */
#include "cq.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "atom.h"
#include "ring.h"

#define REG_SIZE 16 /* id 0 unused: tokens are never NULL */
#define GEN_MASK 0x0fffffffu

enum slot_state { S_FREE = 0, S_SENT, S_OK, S_FAIL, S_LOST };

typedef struct slot {
    uint64_t seq;
    uint32_t gen;
    uint16_t ring, conn;
    uint8_t state;
} slot;

struct cq {
    pthread_mutex_t mu;
    unsigned id;
    slot *slots;
    size_t n_slots;
    uint32_t *free_stack; /* main loop only */
    size_t n_free;
    uint32_t *queue; /* finished slots, circular, n_slots entries */
    size_t q_head, q_len;
    size_t n_conns;
    uint32_t *conn_epoch;
    unsigned *conn_ev;
    int *conn_code;
    mqtt_why_fail *conn_why; /* cq_conn_why, under mu */
    uint32_t ev_pending;     /* written under mu; read unlocked as a hint (relaxed) */
    int sleeping;
    uint32_t word; /* futex word, bumped by ring_wake_word */
};

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static cq *registry[REG_SIZE];

static inline void *make_token(unsigned id, uint32_t gen, uint32_t idx)
{
    return (void *)(uintptr_t)(((uint64_t)id << 60) | ((uint64_t)(gen & GEN_MASK) << 32) | idx);
}

static inline cq *token_queue(void *ctx, uint32_t *gen, uint32_t *idx)
{
    uint64_t t = (uint64_t)(uintptr_t)ctx;
    unsigned id = (unsigned)(t >> 60);
    *gen = (uint32_t)(t >> 32) & GEN_MASK;
    *idx = (uint32_t)t;
    if (id == 0 || id >= REG_SIZE)
        return NULL;
    /* acquire pairs with the release store in cq_create: the queue is fully built */
    return atom_load_acquire(&registry[id]);
}

/* Frees q and its arrays (any may be NULL): the end of cq_destroy and of a failed cq_create. */
static void free_queue(cq *q)
{
    free(q->conn_why);
    free(q->conn_code);
    free(q->conn_ev);
    free(q->conn_epoch);
    free(q->queue);
    free(q->free_stack);
    free(q->slots);
    free(q);
}

int cq_create(size_t slots, size_t n_conns, cq **out)
{
    int rc = -ENOMEM;
    *out = NULL;
    if (slots == 0 || slots > CQ_MAX_SLOTS || n_conns > CQ_MAX_CONNS)
        return -EINVAL;
    cq *q = calloc(1, sizeof(*q));
    if (!q)
        return -ENOMEM;
    q->n_slots = slots;
    q->n_conns = n_conns;
    q->slots = calloc(slots, sizeof(*q->slots));
    q->free_stack = calloc(slots, sizeof(*q->free_stack));
    q->queue = calloc(slots, sizeof(*q->queue));
    q->conn_epoch = calloc(n_conns ? n_conns : 1, sizeof(*q->conn_epoch));
    q->conn_ev = calloc(n_conns ? n_conns : 1, sizeof(*q->conn_ev));
    q->conn_code = calloc(n_conns ? n_conns : 1, sizeof(*q->conn_code));
    q->conn_why = calloc(n_conns ? n_conns : 1, sizeof(*q->conn_why));
    if (!q->slots || !q->free_stack || !q->queue || !q->conn_epoch || !q->conn_ev ||
        !q->conn_code || !q->conn_why)
        goto err_free;
    if (pthread_mutex_init(&q->mu, NULL) != 0)
        goto err_free;
    /* LIFO free list: the slot used last is reused first (warm in cache) */
    for (size_t i = 0; i < slots; i++)
        q->free_stack[i] = (uint32_t)(slots - 1 - i);
    q->n_free = slots;

    rc = -EMFILE;
    pthread_mutex_lock(&reg_mu);
    for (unsigned id = 1; id < REG_SIZE; id++) {
        if (!registry[id]) {
            q->id = id;
            /* release pairs with the acquire in token_queue */
            atom_store_release(&registry[id], q);
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&reg_mu);
    if (rc)
        goto err_mutex;
    *out = q;
    return 0;

err_mutex:
    pthread_mutex_destroy(&q->mu);
err_free:
    free_queue(q);
    return rc;
}

void cq_destroy(cq *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&reg_mu);
    atom_store_release(&registry[q->id], NULL); /* release: pairs with token_queue */
    pthread_mutex_unlock(&reg_mu);
    pthread_mutex_destroy(&q->mu);
    free_queue(q);
}

size_t cq_capacity(const cq *q)
{
    return q->n_slots;
}

size_t cq_free_slots(const cq *q)
{
    return q->n_free;
}

int cq_acquire(cq *q, uint16_t ring_idx, uint64_t seq, uint16_t conn, void **ctx)
{
    if (q->n_free == 0)
        return -EAGAIN;
    uint32_t idx = q->free_stack[--q->n_free];
    pthread_mutex_lock(&q->mu);
    slot *s = &q->slots[idx];
    s->gen = (s->gen + 1) & GEN_MASK; /* stale callbacks of earlier occupancies no longer match */
    s->seq = seq;
    s->ring = ring_idx;
    s->conn = conn;
    s->state = S_SENT;
    pthread_mutex_unlock(&q->mu);
    *ctx = make_token(q->id, s->gen, idx);
    return 0;
}

void cq_cancel(cq *q, void *ctx)
{
    uint32_t gen, idx;
    if (token_queue(ctx, &gen, &idx) != q || idx >= q->n_slots)
        return;
    pthread_mutex_lock(&q->mu);
    slot *s = &q->slots[idx];
    int mine = s->gen == gen && s->state == S_SENT;
    if (mine)
        s->state = S_FREE;
    pthread_mutex_unlock(&q->mu);
    if (mine)
        q->free_stack[q->n_free++] = idx;
}

/* Called with q->mu held: queues slot idx and says whether the sleeping main loop must be
 * woken (after unlocking). */
static int push_locked(cq *q, uint32_t idx)
{
    q->queue[(q->q_head + q->q_len) % q->n_slots] = idx;
    q->q_len++;
    if (q->sleeping) {
        q->sleeping = 0;
        return 1;
    }
    return 0;
}

void cq_fail_conn(cq *q, uint16_t conn)
{
    pthread_mutex_lock(&q->mu);
    for (size_t i = 0; i < q->n_slots; i++) {
        slot *s = &q->slots[i];
        if (s->state == S_SENT && s->conn == conn) {
            s->state = S_LOST;
            push_locked(q, (uint32_t)i); /* the main loop itself: nobody to wake */
        }
    }
    pthread_mutex_unlock(&q->mu);
}

void cq_complete(void *ctx, int ok)
{
    uint32_t gen, idx;
    cq *q = token_queue(ctx, &gen, &idx);
    if (!q || idx >= q->n_slots)
        return;
    int wake = 0;
    pthread_mutex_lock(&q->mu);
    slot *s = &q->slots[idx];
    if (s->gen == gen && s->state == S_SENT) {
        s->state = ok ? S_OK : S_FAIL;
        wake = push_locked(q, idx);
    }
    pthread_mutex_unlock(&q->mu);
    if (wake)
        ring_wake_word(&q->word);
}

void *cq_conn_ctx(cq *q, uint16_t conn)
{
    pthread_mutex_lock(&q->mu);
    uint32_t epoch = conn < q->n_conns ? q->conn_epoch[conn] : 0;
    pthread_mutex_unlock(&q->mu);
    return make_token(q->id, epoch, conn);
}

void cq_conn_next_epoch(cq *q, uint16_t conn)
{
    if (conn >= q->n_conns)
        return;
    pthread_mutex_lock(&q->mu);
    q->conn_epoch[conn] = (q->conn_epoch[conn] + 1) & GEN_MASK;
    q->conn_ev[conn] = 0; /* events of the old handle are moot */
    memset(&q->conn_why[conn], 0, sizeof(q->conn_why[conn]));
    pthread_mutex_unlock(&q->mu);
}

void cq_conn_event(void *ctx, unsigned ev, int code)
{
    uint32_t epoch, conn;
    cq *q = token_queue(ctx, &epoch, &conn);
    if (!q || conn >= q->n_conns)
        return;
    int wake = 0;
    pthread_mutex_lock(&q->mu);
    if (q->conn_epoch[conn] == epoch) {
        q->conn_ev[conn] |= ev;
        if (code)
            q->conn_code[conn] = code;
        /* relaxed: a hint for the unlocked check in cq_take_events; the lock orders the rest */
        atom_store_relaxed(&q->ev_pending, 1);
        if (q->sleeping) {
            q->sleeping = 0;
            wake = 1;
        }
    }
    pthread_mutex_unlock(&q->mu);
    if (wake)
        ring_wake_word(&q->word);
}

int cq_conn_code(cq *q, uint16_t conn)
{
    if (conn >= q->n_conns)
        return 0;
    pthread_mutex_lock(&q->mu);
    int code = q->conn_code[conn];
    pthread_mutex_unlock(&q->mu);
    return code;
}

void cq_conn_why(void *ctx, const mqtt_why_fail *why)
{
    uint32_t epoch, conn;
    cq *q = token_queue(ctx, &epoch, &conn);
    if (!q || conn >= q->n_conns)
        return;
    pthread_mutex_lock(&q->mu);
    if (q->conn_epoch[conn] == epoch)
        q->conn_why[conn] = *why;
    pthread_mutex_unlock(&q->mu);
}

void cq_conn_why_take(cq *q, uint16_t conn, mqtt_why_fail *out)
{
    memset(out, 0, sizeof(*out));
    if (conn >= q->n_conns)
        return;
    pthread_mutex_lock(&q->mu);
    *out = q->conn_why[conn];
    memset(&q->conn_why[conn], 0, sizeof(q->conn_why[conn]));
    pthread_mutex_unlock(&q->mu);
}

size_t cq_drain(cq *q, cq_done *out, size_t max)
{
    size_t n = 0;
    pthread_mutex_lock(&q->mu);
    while (n < max && q->q_len > 0) {
        uint32_t idx = q->queue[q->q_head];
        q->q_head = (q->q_head + 1) % q->n_slots;
        q->q_len--;
        slot *s = &q->slots[idx];
        out[n].seq = s->seq;
        out[n].ring = s->ring;
        out[n].conn = s->conn;
        out[n].result = s->state == S_OK ? CQ_OK : s->state == S_FAIL ? CQ_FAIL : CQ_LOST;
        n++;
        s->state = S_FREE;
        q->free_stack[q->n_free++] = idx;
    }
    pthread_mutex_unlock(&q->mu);
    return n;
}

size_t cq_take_events(cq *q, unsigned *ev)
{
    size_t n = 0;
    /* relaxed: a stale 0 only delays the events to the next turn, which the waker's wake-up
     * guarantees (cq_prepare_wait re-checks under the lock) */
    if (!atom_load_relaxed(&q->ev_pending))
        return 0;
    pthread_mutex_lock(&q->mu);
    for (size_t i = 0; i < q->n_conns; i++) {
        ev[i] = q->conn_ev[i];
        q->conn_ev[i] = 0;
        n += ev[i] != 0;
    }
    atom_store_relaxed(&q->ev_pending, 0); /* relaxed: under the lock, see cq_conn_event */
    pthread_mutex_unlock(&q->mu);
    return n;
}

int cq_prepare_wait(cq *q, uint32_t *seen)
{
    int rc = 0;
    pthread_mutex_lock(&q->mu);
    if (q->q_len > 0 || atom_load_relaxed(&q->ev_pending)) {
        rc = -EAGAIN;
    } else {
        q->sleeping = 1;
        /* relaxed: wakers bump the word only after clearing `sleeping` under this lock, so a
         * bump we miss here makes the wait return at once, which is harmless */
        *seen = atom_load_relaxed(&q->word);
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

void cq_end_wait(cq *q)
{
    pthread_mutex_lock(&q->mu);
    q->sleeping = 0;
    pthread_mutex_unlock(&q->mu);
}

const uint32_t *cq_word(const cq *q)
{
    return &q->word;
}
