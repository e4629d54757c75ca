/* mqttc: a plain-TCP MQTT 3.1.1/5 client on io_uring, one connection to one broker, shared by
 * the ingress (subscribes) and the relay (publishes) as their data path for mqtt:// and tcp://
 * URLs (issue 7). TLS and WebSocket stay on paho (ingress/subscriber, relay/conn); so does
 * everything when runtime.mqtt_io is paho.
 *
 * Single-threaded: no thread of its own, no lock. The stage's loop calls mqttc_run, which
 * makes ONE io_uring_enter per call: it submits what the last turn queued (the receive, the
 * write of every packet queued since: PUBLISH, PUBACK, PUBREC, ...) and waits for completions
 * up to a timeout. Cost per message at full speed, both ways: a receive completion carries as
 * many packets as the socket buffer holds (256 KiB read buffer), and one send carries every
 * packet queued in the turn, so the syscalls per message fall with the rate; at a low rate it
 * is one io_uring_enter per wake-up (receive) plus the one that sends the acknowledgements,
 * or with opts.quiet_send one for both (the acks' send and the wait for the next packet).
 * mqttc_ring_fd gives the io_uring's fd (readable when a completion is waiting) for a stage
 * that waits on more than this client.
 *
 * Incoming PUBLISH: opts.message is called for every PUBLISH of a receive completion, in
 * order; the view points into the read buffer and is valid only during the call (copy what
 * you keep). After the last packet of a completion, opts.batch_done is called once; only after
 * it returned are the PUBACKs (QoS 1) and PUBRECs (QoS 2) of those messages queued, and they
 * leave with the next mqttc_run. So a stage that stores in message and makes durable in
 * batch_done never acknowledges what it does not hold (ingress: ring commit, then flush).
 * QoS 2 inbound: a PUBLISH whose id already got a PUBREC and no PUBREL yet is a redelivery and
 * is not passed on again (exactly once while this process lives; across a crash the broker's
 * redelivery reaches the stage again: at least once).
 *
 * Outgoing PUBLISH (mqttc_publish): QoS 0 completes (opts.published, rc 0) once the bytes are
 * written to the socket; QoS 1 on PUBACK, QoS 2 on PUBCOMP. QoS>0 publishes stay in this
 * client's memory with their packet until then: after a reconnect they are sent again, in
 * their original order, with DUP set when the broker kept the session (a PUBREC'd QoS 2 gets
 * its PUBREL again); when the broker has no session they go out as new publishes. So an
 * accepted QoS>0 publish is never failed for a lost connection; a QoS 0 publish not yet
 * written when the connection drops completes with -ENOTCONN. In flight at once: at most
 * opts.max_inflight, the broker's MQTT 5 Receive Maximum, and on 3.1.1 for QoS 2 the quota
 * relay/conn.c documents (19, below mosquitto's default 20).
 *
 * Connection: non-blocking connect through io_uring with a 10 s timeout, CONNECT (client id,
 * clean session / clean start, keepalive, username/password as cfg resolved them, the will
 * when opts.will, MQTT 5 session expiry "never" when clean_session is false), CONNACK within
 * 10 s, SUBSCRIBE of opts.filters after every CONNACK (a clean session forgot them),
 * TCP_NODELAY on the socket. Keepalive: a PINGREQ when nothing was sent for 3/4 of the
 * keepalive (the broker's own, when MQTT 5 CONNACK gives one), and the connection counts as
 * dead when its PINGRESP is not back within one keepalive. Any loss (closed, reset, malformed
 * packet, timeout, refused CONNACK) closes the socket and retries after reconnect.min_delay,
 * doubling up to max_delay; a successful subscription (or CONNACK without filters) resets it.
 *
 * Failures leave the client consistent: every error return says what was not done. Nothing
 * here blocks except mqttc_run's wait and getaddrinfo at connect time.
 */
#ifndef MF_MQTTC_H
#define MF_MQTTC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "mqtt_pkt.h"

typedef struct mqttc mqttc;

enum mqttc_state {
    MQTTC_DOWN = 0,     /* not connected; the next attempt is scheduled */
    MQTTC_CONNECTING,   /* TCP connect in flight */
    MQTTC_CONNACK_WAIT, /* CONNECT sent */
    MQTTC_SUBSCRIBING,  /* CONNACK accepted, SUBACK awaited (publishing allowed) */
    MQTTC_UP,           /* connected and subscribed */
    MQTTC_CLOSED,       /* mqttc_disconnect: no more attempts */
};

typedef struct mqttc_opts {
    const cfg_client *c;        /* broker, version, keepalive, session, credentials, will, backoff;
                                   borrowed: must outlive the client */
    const char *client_id;      /* MQTT client id (copied) */
    bool will;                  /* send c->will in CONNECT (the ingress does, the relay does not) */
    const char *const *filters; /* subscribed after every CONNACK (copied); NULL/0 = none */
    const int *qos;
    size_t n_filters;
    size_t max_packet;     /* largest remaining length accepted from the broker (0: 16 MiB) */
    unsigned max_inflight; /* own bound on outgoing QoS>0 in flight (0: 1024) */
    const char *log_comp;  /* log component ("ingress", "relay") */
    /* an eventfd another thread writes to end mqttc_run's wait (relay/conn_uring); 0 = none */
    int wake_fd;
    /* on a lost connection, finish the outgoing QoS>0 publishes at once (published, rc
     * -ENOTCONN) instead of sending them again after the reconnect: for a caller that
     * republishes in its own order (the relay) */
    bool drop_on_loss;
    /* interrupt moderation of the receive side: after a receive that handed over fewer than a
     * batch's worth of messages (mqttc_int.h RX_BATCH_ENOUGH), the next receive starts this
     * many microseconds later, so at a high rate the stage wakes at most once per interval
     * and takes all that arrived meanwhile in one completion, instead of waking for every
     * packet or two. The acknowledgements of the batch are not held: they leave at once. A
     * message waits at most this long more; one after a quiet spell not at all. 0: none.
     * Needs Linux 5.17 (IORING_FEAT_CQE_SKIP); older kernels run without it. */
    unsigned rx_coalesce_us;
    /* receive moderation (0: off, a receive is always armed): after a receive that carried
     * packets, no receive is armed for this long; what arrives meanwhile waits in the socket
     * and one receive takes all of it when the pause ends, or earlier with mqttc_poll_recv.
     * For a stage whose incoming packets are only acknowledgements of its own publishes (the
     * relay): the I/O thread then wakes per pause, not per PUBACK */
    unsigned recv_pace_us;
    /* a send's completion ends no wait by itself: a turn that submits a send while a blocking
     * receive is armed waits for one completion more (io_uring_enter's min_complete of 2), so
     * the send and the wait for the next packet are one io_uring_enter, and the send's
     * completion (it is normally posted during that same call) is handled with the next
     * receive's. For a stage whose sends are only the acknowledgements of what it received
     * (the ingress): at a low rate one system call per message instead of two. Not for
     * publishers: a QoS 0 publish completes on its send (such turns wait as usual), and a
     * send that cannot complete (a full socket) holds the turn until a receive, the
     * timeout or a timer, which a stage that only acknowledges can afford */
    bool quiet_send;
    void *arg; /* passed to every callback */
    /* an incoming PUBLISH (see above); may be NULL (then messages are dropped, acknowledged).
     * Returns 0 once the message is stored, non-zero when the stage refused it (could not
     * store it): then it is not acknowledged, no further packet of that read is handed over,
     * and the caller is expected to end the connection (mqttc_disconnect) so the broker keeps
     * the rest queued in the session; what was not acknowledged comes again after the
     * reconnect (at least once) */
    int (*message)(void *arg, const mqtt_pkt *p);
    /* the messages passed since the last call must be durable when this returns */
    void (*batch_done)(void *arg);
    /* an outgoing publish finished: rc 0 done, > 0 the broker's MQTT 5 refusal reason code
     * (>= 0x80), -ENOTCONN a QoS 0 publish lost with its connection */
    void (*published)(void *arg, void *ctx, int rc);
    /* the state changed (may be NULL) */
    void (*state)(void *arg, enum mqttc_state st);
} mqttc_opts;

/* Creates the client (io_uring, buffers); does not connect. 0 and *out; -EINVAL (the client
 * is not plain TCP, or bad options), -ENOMEM, or io_uring_queue_init's error (logged). */
int mqttc_create(const mqttc_opts *o, mqttc **out);
/* Shuts the socket, waits (bounded) for the kernel to finish with the buffers, frees. Publishes
 * still in flight are not reported. Accepts NULL. */
void mqttc_destroy(mqttc *m);

/* Schedules the first connect attempt (made by the next mqttc_run); after mqttc_disconnect,
 * starts connecting again. */
void mqttc_start(mqttc *m);
/* One loop turn: runs due timers, submits queued work and waits up to timeout_ms (0: does
 * not wait) for completions, handles them (callbacks run here). Returns how many completions
 * it handled, or a negative errno when io_uring_enter failed (-EINTR: a signal; call again). */
int mqttc_run(mqttc *m, int timeout_ms);

/* The submit-and-wait half of mqttc_run, for a loop that waits on more than this client: the
 * completions stay in the ring, and the next mqttc_run (timeout 0: no system call when nothing
 * is queued) handles them, with their callbacks, on the caller's schedule. 0 or as mqttc_run. */
int mqttc_wait(mqttc *m, int timeout_ms);
/* The other halves, for a loop that decides itself when its io_uring_enter happens:
 * mqttc_reap handles the completions in the ring and runs the timers (callbacks run here; no
 * system call; returns how many), mqttc_submit submits what is queued (one io_uring_enter
 * when anything is, else none; 0 or as mqttc_run). */
int mqttc_reap(mqttc *m);
int mqttc_submit(mqttc *m);
/* Submits what is queued and sleeps ns (bounded by the client's timers) whatever completes
 * meanwhile (handled by the next mqttc_run): the nap of ring_wait_paced, for a loop that
 * queues its sends to leave with the nap's one io_uring_enter. 0, -EINTR or as mqttc_run. */
int mqttc_nap(mqttc *m, uint64_t ns);

/* Has this client's io_uring signal the eventfd efd on every completion
 * (io_uring_register_eventfd), so a loop waiting on another client's io_uring, which keeps a
 * read on efd (opts.wake_fd), wakes for this one's completions too. 0 or -errno (logged). */
int mqttc_notify(mqttc *m, int efd);

/* IORING_OP_FUTEX_WAITV (Linux 6.7). Debian 12's liburing 2.3 and its 6.1 uapi headers do not
 * name it; the number is the kernel's (include/uapi/linux/io_uring.h: FUTEX_WAIT 51,
 * FUTEX_WAKE 52, FUTEX_WAITV 53). */
#define MQTTC_OP_FUTEX_WAITV 53
/* Whether this kernel's io_uring has IORING_OP_FUTEX_WAITV (io_uring_get_probe). */
bool mqttc_futexv_supported(void);
struct futex_waitv;
/* Arms a wait on the futex words of v[0..n) (struct futex_waitv of linux/futex.h, FUTEX_32,
 * shared) that the next io_uring_enter submits (mqttc_wait, mqttc_nap, mqttc_run): its
 * completion (a word woken, or one not at its expected value) ends a mqttc_wait. One at a
 * time: -EALREADY while the armed one has not completed (a word changes only with a
 * FUTEX_WAKE, which completes it, so it still stands for the same values, provided every
 * arming passes the same words); -EINVAL for n outside 1..128; -ENOSYS once a wait completed
 * with an unexpected error (logged; the caller then waits in short steps). Only where
 * mqttc_futexv_supported(). */
int mqttc_arm_futexv(mqttc *m, const struct futex_waitv *v, unsigned n);

/* The largest packet mqttc_publish ever queues (its write queue's bound): a larger one is
 * -EMSGSIZE, never -EAGAIN, so a caller does not retry it for ever. */
#define MQTTC_PACKET_MAX (128u * 1024 * 1024)

/* Queues a PUBLISH (topic/payload copied). 0: queued, opts.published follows with ctx;
 * -ENOTCONN: no accepted connection (retry after MQTTC_SUBSCRIBING/UP); -EBUSY: the QoS>0
 * window is full (retry after a completion); -EAGAIN: the write queue is full (retry after a
 * turn); -EINVAL: MQTT cannot carry it (empty topic, QoS, sizes); -EMSGSIZE: a packet larger than
 * the write queue can ever hold (refused for good, whatever the state); -ENOMEM. */
int mqttc_publish(mqttc *m, const char *topic, size_t topic_len, const void *payload, size_t len,
                  int qos, bool retain, void *ctx);

/* With opts.recv_pace_us: the next mqttc_run also takes what the socket holds now (a
 * non-blocking receive, no wait for more), even within the pause. No effect without. */
void mqttc_poll_recv(mqttc *m);
/* With opts.recv_pace_us: ends the current pause, so the next mqttc_run arms the blocking
 * receive (for a stage about to sleep until an acknowledgement comes). */
void mqttc_recv_now(mqttc *m);

/* Sends DISCONNECT (when connected), waits up to timeout_ms for it to be written, closes the
 * socket and stops reconnecting (state CLOSED). 0, or -ETIMEDOUT (closed anyway). */
int mqttc_disconnect(mqttc *m, int timeout_ms);

enum mqttc_state mqttc_get_state(const mqttc *m);
/* The io_uring's fd: poll it for POLLIN to learn that mqttc_run has completions to handle. */
int mqttc_ring_fd(const mqttc *m);
/* How many outgoing QoS>0 publishes may be in flight on this connection: min(max_inflight,
 * the broker's MQTT 5 Receive Maximum); valid from MQTTC_SUBSCRIBING on. */
unsigned mqttc_send_window(const mqttc *m);
/* Outgoing QoS>0 publishes not finished yet. */
size_t mqttc_inflight(const mqttc *m);
/* Whether the last CONNACK said the broker kept our session. */
bool mqttc_session_present(const mqttc *m);
/* Whether this client serves c (plain TCP: mqtt:// or tcp://). */
bool mqttc_supports(const cfg_client *c);
/* Whether a stage should use mqttc for c: runtime.mqtt_io `mode` (auto: where it serves c),
 * overridden by MQTTFLOW_MQTT_IO=paho|uring|auto in the environment (an unknown value is
 * logged under comp and ignored). */
bool mqttc_wanted(enum cfg_mqtt_io mode, const cfg_client *c, const char *comp);

#endif
