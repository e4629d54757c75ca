/* conn_uring: the io_uring kind of a relay connection (relay/conn.h), for plain-TCP targets
 * (mqtt://, tcp://) when runtime.mqtt_io is auto: one common/mqttc client on an I/O thread of
 * its own, in place of paho's two threads.
 *
 * The pump's side (conn.c calls these from the relay's main loop) and the I/O thread share one
 * request queue under a mutex: conn_uring_publish appends the publish (topic and payload
 * copied); conn_uring_flush, once per pump turn, wakes the I/O thread only when it is parked
 * (a write to an eventfd the thread's io_uring has a read armed on), so a pump turn costs at
 * most one wake-up, none while the thread is busy. Acknowledgements are read once per batch
 * or after a pause (mqttc opts.recv_pace_us) rather than as each arrives, unless the pump is
 * about to park waiting for them (conn_uring_park). The I/O thread takes the whole queue, hands it
 * to mqttc and sends all of it with one io_uring_enter, which also waits for the acknowledgements.
 * Completions and connection events go back through the relay's completion queue (cq.h), as
 * paho's did: cq_complete(ctx, ok) (QoS 0 once written, QoS 1 on PUBACK, QoS 2 on PUBCOMP) and
 * cq_conn_event (CQ_EV_UP with the broker's Receive Maximum, CQ_EV_CONNFAIL, CQ_EV_LOST,
 * CQ_EV_DISC), which wake the pump only when it sleeps.
 *
 * Connection management is mqttc's (connect, CONNACK, keepalive, reconnect with the client's
 * backoff, TCP_NODELAY). On a lost connection mqttc drops its in-flight publishes
 * (drop_on_loss) and the pump republishes them in ring order after CQ_EV_UP, as with paho. No
 * will (conn.h says why). The I/O thread runs with SIGTERM/SIGINT/SIGHUP blocked.
 *
 * That is the fallback. Where the kernel allows (one-thread mode below) the same client runs
 * on the pump's thread with none of the hand-over: publishes go into mqttc directly, the
 * callbacks post to the cq on the pump's thread, and the pump sleeps in the io_uring itself.
 */
#ifndef MF_RELAY_CONN_URING_H
#define MF_RELAY_CONN_URING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "cq.h"

typedef struct conn_uring conn_uring;

/* How a connection does its I/O (see one-thread mode below). */
enum conn_uring_io {
    CONN_URING_IO_THREAD = 0, /* an I/O thread of its own */
    CONN_URING_IO_PRIMARY,    /* one-thread mode; the pump waits on this one's io_uring */
    CONN_URING_IO_SECONDARY,  /* one-thread mode; its completions signal the primary's efd */
};

/* Builds the client (not connected, no thread yet) for cl with MQTT client id client_id
 * (copied); events go to cq's connection `index`. efd (one-thread mode with more than one
 * connection, else -1): an eventfd a secondary's io_uring signals on every completion and the
 * primary's io_uring keeps a read on, so the pump's one wait also ends for the secondaries.
 * 0, -ENOMEM, or mqttc_create's or mqttc_notify's error. */
int conn_uring_create(const cfg_client *cl, const char *client_id, cq *q, uint16_t index,
                      enum conn_uring_io io, int efd, conn_uring **out);
/* Starts the I/O thread, which connects at once. 0 or -errno of pthread_create (logged). */
int conn_uring_start(conn_uring *u);
/* Queues a publish (copied); its cq completion follows. 0; -EINVAL when MQTT cannot carry it
 * (topic not valid UTF-8, with a wildcard, empty or too long; QoS); -ENOMEM. */
int conn_uring_publish(conn_uring *u, const char *topic, const void *payload, size_t len, int qos,
                       int retain, void *ctx);
/* Hands the queued publishes to the I/O thread (waking it when it is parked): call once per
 * pump turn, after its publishes. progress: the turn did something (it will run another turn
 * rather than wait); one-thread mode uses it to choose when to submit (see there). */
void conn_uring_flush(conn_uring *u, bool progress);
/* The pump is about to park with publishes of this connection awaiting their acknowledgement:
 * the I/O thread stops holding back receives (mqttc opts.recv_pace_us), so the
 * acknowledgement wakes the pump as soon as it arrives. */
void conn_uring_park(conn_uring *u);
/* Asks the I/O thread to send DISCONNECT (waiting at most timeout_ms for it to be written) and
 * stop; CQ_EV_DISC follows. */
void conn_uring_disconnect(conn_uring *u, int timeout_ms);
/* ---- one-thread mode (one_thread at create): no I/O thread; mqttc runs on the pump's thread
 * (the relay then makes one wake-up per message, not three: issue 7). The pump waits on the
 * rings' futex words and this client's io_uring at once with IORING_OP_FUTEX_WAITV (Linux
 * 6.7); conn_uring_one_thread_supported says whether the kernel has it. Callbacks (and so cq
 * completions and events) run inside conn_uring_poll only, never inside the waits, so the pump
 * that marked itself sleeping in the cq is not woken by its own completions. Publishes are
 * handed to mqttc at once and leave with the next io_uring_enter. ---- */
bool conn_uring_one_thread_supported(void);
/* Runs mqttc's timers and handles the completions waiting in the ring (callbacks run here);
 * submits nothing: conn_uring_flush, conn_uring_nap and conn_uring_wait do. */
void conn_uring_poll(conn_uring *u);
/* ring_wait_paced's nap through the io_uring: submits what is queued, sleeps ns. */
void conn_uring_nap(conn_uring *u, uint64_t ns);
/* The park: submits what is queued and a futex wait over words[i] == vals[i] (from
 * ring_park_begin; at most FUTEX_WAITV_MAX_WORDS), sleeps until any completion or timeout_ms. */
void conn_uring_wait(conn_uring *u, const uint32_t *const *words, const uint32_t *vals, size_t n,
                     int timeout_ms);

/* Stops and joins the I/O thread, frees everything. Accepts NULL. */
void conn_uring_destroy(conn_uring *u);

#endif
