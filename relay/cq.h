/* cq: the completion queue between paho's threads and the relay's main loop.
 *
 * Used by the relay process only. Every publish handed to paho occupies one slot of a fixed
 * table (the number of slots is the relay's bound on outstanding paho publishes, BASELINES
 * pitfall 1); the slot's token is the `context` paho gives back to onSuccess / onFailure.
 * paho calls those from its own threads: cq_complete only marks the slot and queues it under
 * a mutex, and wakes the main loop through a futex word (ring_wake_word) only when the main
 * loop said it is about to sleep (cq_prepare_wait), so a busy relay makes no wake syscall per
 * message. Connection events (connected, connect failed, lost, disconnected) travel the same
 * way as per-connection bits, tagged with the connection's epoch so that a callback of a
 * paho handle that was already replaced is ignored.
 *
 * Tokens carry a generation: a callback that arrives for a slot after the main loop gave up
 * on it (cq_fail_conn after a lost connection) and reused it is recognised and dropped.
 * Why a small static registry: paho's callbacks get one `void *context` and nothing else,
 * so the token must name its queue too (4 bits of it index the registry).
 *
 * Who calls what: cq_complete, cq_conn_event and cq_conn_why from any thread (paho's); everything
 * else from the main loop's thread only. Nothing here blocks except on the internal mutex, which is
 * held for a few hundred nanoseconds at most.
 */
#ifndef MF_RELAY_CQ_H
#define MF_RELAY_CQ_H

#include <stddef.h>
#include <stdint.h>

#include "mqtt_paho.h"

#define CQ_MAX_SLOTS (1u << 20)
#define CQ_MAX_CONNS 65535

typedef struct cq cq;

/* Result of one outstanding publish, as handed back by cq_drain. */
enum cq_result {
    CQ_OK = 1,   /* paho onSuccess: QoS 0 written to the socket, QoS 1 PUBACKed, QoS 2 PUBCOMP */
    CQ_FAIL = 2, /* paho onFailure: publish again */
    CQ_LOST = 3, /* given up by cq_fail_conn (connection lost): publish again */
};

/* Connection events (bits). */
enum {
    CQ_EV_UP = 1u << 0,       /* connect onSuccess */
    CQ_EV_CONNFAIL = 1u << 1, /* connect onFailure */
    CQ_EV_LOST = 1u << 2,     /* connectionLost */
    CQ_EV_DISC = 1u << 3,     /* disconnect finished (onSuccess or onFailure) */
};

typedef struct cq_done {
    uint64_t seq;   /* window sequence number of the record */
    uint16_t ring;  /* which input ring */
    uint16_t conn;  /* which connection */
    uint8_t result; /* enum cq_result */
} cq_done;

/* A queue of `slots` outstanding publishes (1..CQ_MAX_SLOTS) over n_conns connections
 * (<= CQ_MAX_CONNS). 0, -EINVAL, -ENOMEM, -EMFILE (more than 16 queues in one process). */
int cq_create(size_t slots, size_t n_conns, cq **out);
/* Frees the queue. Call only once no paho handle can call back any more (every handle that
 * received one of its tokens destroyed). Accepts NULL. */
void cq_destroy(cq *q);

size_t cq_capacity(const cq *q);
size_t cq_free_slots(const cq *q);

/* Takes a free slot for a publish of record (ring, seq) on conn and returns the context to
 * give paho. 0, or -EAGAIN when every slot is outstanding. */
int cq_acquire(cq *q, uint16_t ring_idx, uint64_t seq, uint16_t conn, void **ctx);
/* Gives back a slot whose publish paho refused (sendMessage returned an error): no callback
 * will come for it. */
void cq_cancel(cq *q, void *ctx);
/* Marks every publish still outstanding on conn as CQ_LOST (queued for cq_drain); callbacks
 * that paho makes for them later are ignored. */
void cq_fail_conn(cq *q, uint16_t conn);

/* paho threads: the publish behind ctx finished (ok != 0: onSuccess). Stale tokens are
 * ignored. Never blocks beyond the internal mutex. */
void cq_complete(void *ctx, int ok);

/* The context of connection conn's callbacks for its current epoch; cq_conn_next_epoch
 * invalidates the contexts handed out before (call it when replacing a paho handle). */
void *cq_conn_ctx(cq *q, uint16_t conn);
void cq_conn_next_epoch(cq *q, uint16_t conn);
/* paho threads: event (a CQ_EV_* bit) for the connection behind ctx (from cq_conn_ctx), with
 * a value when it has one (kept when not 0): paho's return code of a connect failure, the
 * server's Receive Maximum of an MQTT 5 connect. */
void cq_conn_event(void *ctx, unsigned ev, int code);
/* Main loop: the value of the last event of conn that carried one. */
int cq_conn_code(cq *q, uint16_t conn);
/* paho threads: why the connection behind ctx failed or ended (onFailure's data, an MQTT 5
 * DISCONNECT's reason code), kept for the main loop; no event (cq_conn_event posts it).
 * Main loop: cq_conn_why_take copies what was kept into out and clears it (all zero: none).
 * A value posted through a replaced handle's context is ignored, as its events are. */
void cq_conn_why(void *ctx, const mqtt_why_fail *why);
void cq_conn_why_take(cq *q, uint16_t conn, mqtt_why_fail *out);

/* Main loop: moves up to max finished publishes into out (freeing their slots) and returns
 * how many. Slots are freed in the order paho finished them. */
size_t cq_drain(cq *q, cq_done *out, size_t max);
/* Main loop: copies the events gathered since the last call into ev[0..n_conns) (CQ_EV_*
 * bits per connection) and clears them. Returns how many connections had any. */
size_t cq_take_events(cq *q, unsigned *ev);

/* Main loop, before sleeping: returns 0 and *seen (the word's value to pass to ring_wait_any
 * as extra_seen) when nothing is queued, and marks the loop as sleeping so the next
 * completion or event wakes it; -EAGAIN when something is already queued (do not sleep). */
int cq_prepare_wait(cq *q, uint32_t *seen);
/* Main loop, after the wait (whether it slept or not). */
void cq_end_wait(cq *q);
/* The futex word to pass to ring_wait_any as extra. */
const uint32_t *cq_word(const cq *q);

#endif
