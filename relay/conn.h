/* conn: one connection of the relay to one target client's broker: paho MQTTAsync, or for a
 * plain-TCP target under runtime.mqtt_io auto the io_uring kind (relay/conn_uring.h), which
 * keeps every contract below; what is said of paho's handles applies to the paho kind.
 *
 * Used by the relay process's main loop only (one thread); paho's callbacks only post to the
 * completion queue (cq.h) and never touch a conn. The client id is
 * "<client_id>-relay-<instance>" so it never collides with the ingress's own session.
 *
 * Connection management is ours, not paho's automaticReconnect: paho's retry interval is
 * whole seconds (the config allows 0.1 s), and on a lost connection the relay wants every
 * publish paho still holds gone, so that what it publishes again goes out in ring order.
 * So on CQ_EV_LOST the conn marks its outstanding publishes CQ_LOST (cq_fail_conn), puts
 * the paho handle aside (destroyed a little later, once paho's thread has surely left the
 * callback that reported the loss), creates a fresh handle and reconnects with exponential
 * backoff between reconnect.min_delay and max_delay. A failed connect is retried the same
 * way on the same handle (paho refuses publishes while disconnected, so it holds none).
 *
 * TCP_NODELAY (BASELINES pitfall 5): paho never sets it; after every successful connect the
 * conn sets it on the process's TCP sockets connected to the broker's port.
 *
 * No will message is set: the ingress connection of the same client carries the user's will;
 * a second copy on the relay connection would fire twice.
 */
#ifndef MF_RELAY_CONN_H
#define MF_RELAY_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "conn_uring.h"
#include "cq.h"

typedef struct conn conn;

enum conn_state {
    CONN_DOWN = 0,   /* not connected, a retry is scheduled */
    CONN_CONNECTING, /* connect in progress */
    CONN_UP,         /* connected: publishes go out */
    CONN_CLOSING,    /* disconnect in progress */
    CONN_CLOSED,     /* disconnected for good */
};

/* Builds the connection of client cl (index in cfg.clients) and its paho handle, or, when
 * mqttc_wanted(mqtt_io, cl) (runtime.mqtt_io auto and a plain-TCP target), its io_uring
 * client (relay/conn_uring.h: same contract, completions and events through the same cq;
 * io and efd: its own I/O thread, or on the pump's thread, see conn_uring_create and
 * relay/pump.c one_thread_wanted; ignored for paho);
 * does not connect yet. cl and instance must outlive the conn. 0, -ENOMEM, or -EINVAL when
 * paho refuses the URI (logged). */
int conn_create(const cfg_client *cl, uint16_t index, const char *instance,
                enum cfg_mqtt_io mqtt_io, enum conn_uring_io io, int efd, cq *q, conn **out);
/* Destroys the paho handles (also the one put aside). Disconnect first for a clean close.
 * Accepts NULL. */
void conn_destroy(conn *c);

/* Starts the first connect attempt. A refusal by paho is logged and retried later. */
void conn_start(conn *c, uint64_t now_ns);
/* Applies the events cq_take_events reported for this connection (CQ_EV_* bits). */
void conn_handle_events(conn *c, unsigned ev, uint64_t now_ns);
/* Runs what is due at now_ns: a scheduled reconnect, freeing the handle put aside. */
void conn_tick(conn *c, uint64_t now_ns);
/* Monotonic time of the next thing conn_tick has to do, or UINT64_MAX. */
uint64_t conn_next_timer(const conn *c);

enum conn_state conn_get_state(const conn *c);
int conn_is_up(const conn *c);
/* Whether the first connect attempt has finished (connected or failed). */
int conn_first_attempt_done(const conn *c);
const char *conn_name(const conn *c); /* the client_id of the config */

/* Publishes topic/payload (copied by paho before it returns) with ctx (from cq_acquire) as
 * the callback context. 0: handed to paho, a cq completion will follow.
 * -ENOTCONN: not connected (retry after CQ_EV_UP). -EBUSY: as many QoS>0 publishes are in
 * flight as the server's Receive Maximum allows (MQTT 5; retry after a completion). -EAGAIN:
 * paho is out of message ids or buffer room (retry soon). -EINVAL: paho refused this message
 * for good (bad UTF-8, QoS, ...). No completion follows an error. */
int conn_publish(conn *c, const char *topic, const void *payload, size_t len, int qos, int retain,
                 void *ctx);
/* Ends a pump turn's publishes: the io_uring kind hands them to its I/O thread now (one
 * wake-up per turn at most), or in one-thread mode submits them now or with the next wait
 * (progress: the turn did something; conn_uring_flush); paho's kind has nothing to do. */
void conn_flush(conn *c, int progress);
/* The io_uring kind in one-thread mode (conn_uring.h): no I/O thread; conn_tick handles its
 * completions, and the pump waits through the primary: conn_nap (ring_wait_paced's nap) and
 * conn_wait (the park: the futex words of ring_park_begin and the io_uring at once). */
void conn_nap(conn *c, uint64_t ns);
void conn_wait(conn *c, const uint32_t *const *words, const uint32_t *vals, size_t n,
               int timeout_ms);
/* The pump is about to park: a connection with QoS>0 publishes awaiting their
 * acknowledgement makes sure the acknowledgement wakes it (the io_uring kind's I/O thread
 * stops pacing its receives); nothing otherwise. */
void conn_park(conn *c);
/* A QoS>0 publish of this connection finished (any cq result): frees its Receive Maximum
 * slot. */
void conn_qos_done(conn *c);
/* After each connect, give the socket a send buffer of at least bytes (the largest record),
 * where the system allows (common/nodelay.h: paho writes a partly sent packet once a second).
 * Cannot fail. */
void conn_set_sndbuf(conn *c, size_t bytes);
/* QoS>0 publishes handed to paho and not finished. Cannot fail. */
int conn_qos_outstanding(const conn *c);

/* Starts a clean disconnect waiting up to timeout_ms for paho's in-flight work. Returns 1 when
 * the conn is already closed, 0 when CQ_EV_DISC will report the end. */
int conn_disconnect(conn *c, int timeout_ms);

#endif
