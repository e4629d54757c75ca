/* rec: the message record that travels through every ring (ingress -> router -> worker ->
 * relay), shared by every stage.
 *
 * Layout (native byte order; all stages run on one host): a fixed rec_hdr, the topic and a NUL,
 * the payload and a NUL. The NULs let a worker hand mf_msg pointers straight into the ring.
 * rec_decode checks every length against the record's size before anything is read, so a
 * corrupt record is rejected (-EBADMSG) and never read out of bounds. Pure functions; no state.
 */
#ifndef MF_REC_H
#define MF_REC_H

#include <stddef.h>
#include <stdint.h>

#define REC_NONE 0xffffu /* no client / no rule */

enum rec_kind {
    REC_MSG = 1,     /* a message: ingress->router (client = source), router->worker (+ rule) */
    REC_PUBLISH = 2, /* worker->relay: publish on client = target */
    REC_DEAD = 3,    /* worker->relay: a dead-lettered message (topic/payload of the original) */
};

/* Why a REC_DEAD record's message was given up (worker -> relay): rec_hdr.aux holds the
 * reason in its low byte and, for the deaths of a worker, the signal that killed the last
 * worker that ran the message in its high byte (0: not known, or the worker exited). A message
 * is dead-lettered after max_attempts deaths; the signal and the timeout are those of the last
 * of them (the deaths before may have had other causes; the last one is what the dead-letter
 * store names). The workers write it, the relay's dead-letter store turns it into text. */
enum rec_dead_reason {
    REC_DEAD_CRASHED = 1,        /* its processing killed the worker max_attempts times */
    REC_DEAD_TOO_LARGE = 2,      /* payload above runtime.max_payload */
    REC_DEAD_CALLBACK_ERROR = 3, /* a callback returned non-zero, rule has on_error: dead_letter */
    REC_DEAD_TIMEOUT = 4,        /* like CRASHED, the last death by a callback past
                                    runtime.callback_timeout_ms (a watchdog killed the worker) */
    REC_DEAD_INVALID_TOPIC = 5,  /* a step (format) made a topic name no broker accepts */
    REC_DEAD_STEP_ERROR = 6,     /* a step failed (format), rule has on_error: dead_letter */
    REC_DEAD_BROKER_CLOSED = 7,  /* relay: the target broker closed the connection after this
                                    publish, alone in flight, runtime.max_attempts times */
    REC_DEAD_CORRUPT_RING = 8,   /* a worker skipped a damaged region of its input ring: seq
                                    holds the bytes skipped, the payload its first bytes */
    REC_DEAD_UNDECODABLE = 9,    /* a record that rec_decode refused: seq holds its length, the
                                    payload its first bytes, aux's high byte the enum rec_bad,
                                    | REC_DEAD_FOUND_BY_RELAY when the relay found it in a
                                    worker's output ring (else a worker in its input ring) */
    REC_DEAD_MISPLACED = 10,     /* a record that decodes but cannot be delivered where it was
                                    found: aux's high byte the enum rec_misplaced |
                                    REC_DEAD_FOUND_BY_RELAY, seq REC_MISPLACED_SEQ(its length,
                                    its kind, rule or target client), the payload its first
                                    bytes (header first) */
    REC_DEAD_LIB_REFUSED = 11,   /* relay: the MQTT client library refused the publish for good
                                    (e.g. a packet larger than its write queue can ever hold) */
};
#define REC_DEAD_FOUND_BY_RELAY 0x80u
/* What is wrong with a REC_DEAD_MISPLACED record (issue 8 item 3: every drop is a dead letter) */
enum rec_misplaced {
    REC_MISPLACED_KIND = 1,   /* a kind the ring does not carry */
    REC_MISPLACED_RULE = 2,   /* a rule the worker does not have */
    REC_MISPLACED_CLIENT = 3, /* a target client the relay does not have */
};
/* A record's length (below 4 GiB: a ring's max_record) and the number that is wrong */
#define REC_MISPLACED_SEQ(len, what) ((uint64_t)(what) << 32 | ((uint64_t)(len)&0xffffffffu))
#define REC_MISPLACED_LEN(seq)       ((uint64_t)(seq)&0xffffffffu)
#define REC_MISPLACED_WHAT(seq)      ((unsigned)((uint64_t)(seq) >> 32))
#define REC_DEAD_AUX(reason, sig)                                                                  \
    ((uint16_t)(((unsigned)(sig)&0xffu) << 8 | ((unsigned)(reason)&0xffu)))
#define REC_DEAD_AUX_REASON(aux) ((unsigned)(aux)&0xffu)        /* enum rec_dead_reason */
#define REC_DEAD_AUX_SIGNAL(aux) ((unsigned)(aux) >> 8 & 0xffu) /* 0: none known */

typedef struct rec_hdr {
    uint64_t seq;         /* per-source sequence number, assigned by the ingress */
    uint64_t received_ns; /* wall clock at ingress */
    uint32_t topic_len;   /* bytes, without the NUL */
    uint32_t payload_len; /* bytes, without the NUL */
    uint16_t client;      /* config index of the source (REC_MSG) or target (REC_PUBLISH) */
    uint16_t rule;       /* config index of the rule (router->worker, worker->relay), or REC_NONE */
    uint16_t step;       /* chain step that produced it, or REC_NONE */
    uint8_t kind;        /* enum rec_kind */
    uint8_t qos;         /* 0..2 */
    uint8_t retain;      /* 0/1 */
    uint8_t flags;       /* REC_F_* */
    uint16_t aux;        /* kind-specific: REC_DEAD: REC_DEAD_AUX(reason, signal) */
    uint32_t src_client; /* REC_PUBLISH/REC_DEAD: source client of the message it came from */
    uint32_t reserved;
} rec_hdr;
_Static_assert(sizeof(rec_hdr) == 48, "rec_hdr layout");

/* A decoded record: views into the buffer given to rec_decode, valid as long as it is. */
typedef struct rec_view {
    rec_hdr h;
    const char *topic;   /* NUL-terminated, topic_len bytes */
    const void *payload; /* payload_len bytes + NUL */
} rec_view;

/* Bytes a record of these lengths takes (header + topic + NUL + payload + NUL). */
size_t rec_size(size_t topic_len, size_t payload_len);
/* Writes header h (its topic_len/payload_len are set from the arguments) then topic and
 * payload into buf of cap bytes. Returns the record size, or -EMSGSIZE if cap is too small
 * or a length does not fit 32 bits. */
long rec_encode(void *buf, size_t cap, const rec_hdr *h, const char *topic, size_t topic_len,
                const void *payload, size_t payload_len);
/* Parses a record of len bytes: 0, or -EBADMSG when the lengths disagree with len, a NUL is
 * missing, the topic holds a NUL, or kind/qos are out of range. */
int rec_decode(const void *buf, size_t len, rec_view *out);

/* Why rec_decode refused a record (the dead letter of an undecodable record names it). */
enum rec_bad {
    REC_BAD_NONE = 0, /* it decodes */
    REC_BAD_SHORT,    /* shorter than a rec_hdr */
    REC_BAD_LENGTHS,  /* topic_len + payload_len disagree with the record's size */
    REC_BAD_FIELDS,   /* kind, qos or retain out of range */
    REC_BAD_TOPIC,    /* the topic holds a NUL or lacks its terminating one */
    REC_BAD_PAYLOAD,  /* the payload lacks its terminating NUL */
};
/* rec_decode's checks, saying which failed: REC_BAD_NONE (and *out filled) or the reason.
 * Pure; for the error path (rec_decode is the same checks with an errno). */
enum rec_bad rec_check(const void *buf, size_t len, rec_view *out);
/* The text of an enum rec_bad ("topic and payload lengths disagree with the record's size");
 * "unknown" for a value out of range. Never NULL. */
const char *rec_bad_text(unsigned why);

#endif
