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

typedef struct rec_hdr {
    uint64_t seq;          /* per-source sequence number, assigned by the ingress */
    uint64_t received_ns;  /* wall clock at ingress */
    uint32_t topic_len;    /* bytes, without the NUL */
    uint32_t payload_len;  /* bytes, without the NUL */
    uint16_t client;       /* config index of the source (REC_MSG) or target (REC_PUBLISH) */
    uint16_t rule;         /* config index of the rule (router->worker, worker->relay), or REC_NONE */
    uint16_t step;         /* chain step that produced it, or REC_NONE */
    uint8_t kind;          /* enum rec_kind */
    uint8_t qos;           /* 0..2 */
    uint8_t retain;        /* 0/1 */
    uint8_t flags;         /* REC_F_* */
    uint16_t aux;          /* kind-specific: REC_DEAD: reason code */
    uint32_t src_client;   /* REC_PUBLISH/REC_DEAD: source client of the message it came from */
    uint32_t reserved;
} rec_hdr;
_Static_assert(sizeof(rec_hdr) == 48, "rec_hdr layout");

/* A decoded record: views into the buffer given to rec_decode, valid as long as it is. */
typedef struct rec_view {
    rec_hdr h;
    const char *topic;     /* NUL-terminated, topic_len bytes */
    const void *payload;   /* payload_len bytes + NUL */
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

#endif
