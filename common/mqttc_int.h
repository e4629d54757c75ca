/* mqttc_int: what common/mqttc.c (connection, receive, send, timers) and common/mqttc_out.c
 * (outgoing publishes: packet ids, the QoS>0 table, QoS 0 completions, redelivery) share. Used
 * only by those two files; single-threaded like mqttc itself (mqttc.h).
 */
#ifndef MF_MQTTC_INT_H
#define MF_MQTTC_INT_H

#include <liburing.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "mqttc.h"

#define RING_ENTRIES 64
#define RBUF_START   (256u * 1024) /* one receive takes what a busy socket holds */
/* write queue bound (mqttc_publish says -EAGAIN): above what the relay can have outstanding
 * (256 publishes of up to 256 KiB) */
#define WBUF_MAX           MQTTC_PACKET_MAX
#define CONNECT_TIMEOUT_S  10
#define CONNACK_TIMEOUT_NS (10ull * 1000000000ull)
#define DEFAULT_MAX_PACKET (16u * 1024 * 1024)
#define DEFAULT_INFLIGHT   1024
#define V311_QOS2_INFLIGHT 19 /* see relay/conn.c: mosquitto's default 20, minus one */
#define CLOSE_WAIT_MS      1000
#define NO_SLOT            UINT32_MAX
/* a receive that handed over this many messages or more is not followed by a coalescing
 * delay (mqttc_opts.rx_coalesce_us): the wake-ups are already cheap per message, and under
 * mosquitto's default window of 20 QoS>0 messages in flight a batch this size means the
 * broker is waiting for our acknowledgements, not that the rate is low */
#define RX_BATCH_ENOUGH 16

enum op { OP_CONNECT = 1, OP_LTIMEOUT, OP_RECV, OP_SEND, OP_WAKE, OP_CANCEL, OP_DELAY, OP_FUTEX };

typedef struct buf {
    uint8_t *p;
    size_t len, cap;
} buf;

/* an outgoing QoS>0 publish until its PUBACK / PUBCOMP */
enum out_state { OUT_FREE = 0, OUT_SENT, OUT_RELEASING };
typedef struct out_msg {
    uint8_t state;
    uint8_t qos;
    uint16_t id;
    uint64_t seq; /* order of mqttc_publish calls: redelivery keeps it */
    void *ctx;
    uint8_t *pkt; /* the encoded PUBLISH, sent again after a reconnect (NULL: drop_on_loss) */
    size_t len;
} out_msg;

/* a QoS 0 publish with a context: reported once the stream is written past `end` */
typedef struct q0 {
    uint64_t end;
    void *ctx;
} q0;

struct mqttc {
    mqttc_opts o;
    const cfg_client *c;
    char *client_id;
    char **filters;
    int *qos;
    const char *comp;
    int version;
    size_t max_remain;

    struct io_uring ring;
    bool ring_ok; /* io_uring_queue_init succeeded (mqttc_destroy also frees a half-built one) */
    int fd;
    unsigned pending; /* SQEs of fd not completed yet: fd is closed only at 0 */
    enum mqttc_state st;
    bool started;
    uint64_t next_ns;     /* DOWN: next connect attempt; SUBSCRIBING after a refusal: retry */
    uint64_t deadline_ns; /* CONNACK_WAIT: CONNACK due */
    uint64_t last_tx_ns, ping_ns;
    /* mqttc_run's time: read at its start and after its wait, used for the turn (one clock
     * read each, not one per send, receive and timer check) */
    uint64_t now_ns;
    double delay_s;
    unsigned failures;
    bool session_present;
    unsigned window; /* outgoing QoS>0 in flight allowed now */
    uint16_t keepalive;
    uint16_t sub_id; /* the SUBSCRIBE outstanding, 0 = none */
    bool sub_failed;
    struct __kernel_timespec connect_ts; /* the link timeout reads it at submit */
    struct sockaddr_storage addr;
    socklen_t addr_len;

    uint8_t *rbuf;
    size_t rcap, rlen;
    bool recv_armed;
    bool rx_delay;       /* the next receive starts rx_coalesce_us late (a small batch came) */
    bool rx_coalesce_ok; /* the kernel has what the delay needs (IORING_FEAT_CQE_SKIP) */
    uint64_t rx_prev_ns; /* when the last receive completed */
    struct __kernel_timespec rx_delay_ts; /* read by the kernel at submit */
    bool recv_nowait;                     /* the armed receive is non-blocking (MSG_DONTWAIT) */
    bool recv_poll;                       /* mqttc_poll_recv: a non-blocking receive is due */
    uint64_t recv_hold_ns; /* opts.recv_pace_us: no blocking receive before this time */
    bool refused;          /* the stage refused a message of this connection: hand over no more */

    buf wbuf, sbuf, abuf; /* queued, being sent, acks held back until batch_done */
    size_t soff;
    bool send_armed;
    uint64_t tx_queued, tx_sent; /* bytes of this connection's stream */

    q0 *q0s;
    size_t q0_head, q0_n, q0_cap;

    out_msg *outs;
    uint32_t *slot_of; /* packet id -> index in outs */
    uint32_t *free_slots;
    size_t n_free, n_out, out_cap;
    uint16_t next_id;
    uint64_t out_seq;
    unsigned qos2_out;

    uint8_t rx_qos2[65536 / 8]; /* incoming QoS 2 ids PUBREC'd, PUBREL awaited */
    uint64_t wake_buf;          /* the wake_fd read lands here */
    bool wake_armed;
    bool futex_armed;  /* mqttc_arm_futexv's wait has not completed yet */
    bool futex_failed; /* it completed with an error other than a changed word: not again */
};

/* Grows b to hold add more bytes, at most max in all: 0, -EAGAIN (max), -ENOMEM. */
int mqttc_buf_reserve(buf *b, size_t add, size_t max);
/* Appends bytes to b (wbuf counts them into tx_queued): 0, -EAGAIN (WBUF_MAX), -ENOMEM. */
int mqttc_queue_bytes(mqttc *m, buf *b, const void *p, size_t n);
/* Appends a PUBACK/PUBREC/PUBREL/PUBCOMP to b; a full queue is logged. */
void mqttc_queue_ack(mqttc *m, buf *b, int type, uint16_t id, uint8_t reason);
/* Drops the connection (mqttc.c says how); why is logged. */
void mqttc_lose(mqttc *m, const char *why);

/* mqttc_out.c */
/* A packet id no outgoing publish or SUBSCRIBE of ours holds. */
uint16_t mqttc_alloc_id(mqttc *m);
out_msg *mqttc_out_find(mqttc *m, uint16_t id);
/* Frees o's slot, then reports it to opts.published with rc. */
void mqttc_out_done(mqttc *m, out_msg *o, int rc);
int mqttc_q0_reserve(mqttc *m);
void mqttc_q0_push(mqttc *m, void *ctx);
/* Reports the QoS 0 publishes written up to tx_sent, or all of them with rc when all. */
void mqttc_q0_complete(mqttc *m, bool all, int rc);
/* After CONNACK: the in-flight QoS>0 publishes go out again (see the function). */
void mqttc_redeliver(mqttc *m);

#endif
