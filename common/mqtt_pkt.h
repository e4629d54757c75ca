/* mqtt_pkt: MQTT 3.1.1 and 5 packet codec for the client side, no I/O (common/mqttc does the
 * socket work; the ingress and the relay use it through mqttc).
 *
 * Encoders write one packet into a caller's buffer and return its size, -ENOSPC when it does
 * not fit (nothing useful is left in the buffer then) or -EINVAL for arguments MQTT cannot
 * carry (a string above 65535 bytes, a packet above 268,435,455 bytes, QoS above 2, packet id
 * 0 where one is needed). Only what this client sends is encoded: CONNECT, SUBSCRIBE, PUBLISH,
 * PUBACK/PUBREC/PUBREL/PUBCOMP, PINGREQ, DISCONNECT.
 *
 * mqtt_pkt_decode reads the first packet of a byte buffer that holds any number of packets,
 * possibly ending in a partial one: it returns the packet's size (the caller advances by it),
 * 0 when more bytes are needed, -EMSGSIZE when the remaining length is above the caller's
 * maximum, or -EBADMSG for a malformed packet. Only packets a server sends are accepted
 * (CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, PINGRESP and, in MQTT 5,
 * DISCONNECT); anything else is malformed for a client. Every length is checked against the
 * packet before it is read; the view points into the caller's buffer and is valid while the
 * buffer is. MQTT 5 properties are parsed against one table (identifier, type, packets it may
 * appear in), bounded by the packet, and checked for repeats; a PUBLISH with a topic alias is
 * refused, because this client never announces a topic alias maximum (so the broker may not
 * send one). Strings are checked as well-formed UTF-8 without U+0000, PUBLISH topics also
 * without wildcards.
 *
 * Pure functions, no state, no allocation: callable from any thread.
 */
#ifndef MF_MQTT_PKT_H
#define MF_MQTT_PKT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MQTT_PKT_V311        4
#define MQTT_PKT_V5          5
#define MQTT_PKT_MAX_REMAIN  268435455u /* largest remaining length MQTT can encode */
#define MQTT_PKT_MAX_HDR     5          /* fixed header: 1 type byte + up to 4 length bytes */
#define MQTT_PKT_MAX_SUBACKS 64         /* SUBACK return codes a view holds (see mqtt_pkt) */

enum mqtt_pkt_type {
    MQTT_CONNECT = 1,
    MQTT_CONNACK = 2,
    MQTT_PUBLISH = 3,
    MQTT_PUBACK = 4,
    MQTT_PUBREC = 5,
    MQTT_PUBREL = 6,
    MQTT_PUBCOMP = 7,
    MQTT_SUBSCRIBE = 8,
    MQTT_SUBACK = 9,
    MQTT_UNSUBSCRIBE = 10,
    MQTT_UNSUBACK = 11,
    MQTT_PINGREQ = 12,
    MQTT_PINGRESP = 13,
    MQTT_DISCONNECT = 14,
    MQTT_AUTH = 15,
};

/* What CONNECT carries. Strings are NUL-terminated and borrowed; NULL = absent. */
typedef struct mqtt_pkt_connect {
    int version; /* MQTT_PKT_V311 or MQTT_PKT_V5 */
    const char *client_id;
    const char *username, *password; /* 3.1.1: a password needs a username (else -EINVAL) */
    bool clean;                      /* clean session (3.1.1) / clean start (5) */
    uint16_t keepalive;              /* seconds, 0 = off */
    uint32_t session_expiry;         /* MQTT 5 only; 0 = property left out (session ends) */
    uint16_t receive_max;            /* MQTT 5 only; 0 = property left out (65535) */
    const char *will_topic;          /* NULL = no will */
    const void *will_payload;
    size_t will_len;
    int will_qos;
    bool will_retain;
} mqtt_pkt_connect;

/* A decoded packet: a view into the decoded buffer. Fields not carried by `type` are 0. */
typedef struct mqtt_pkt {
    int type;      /* enum mqtt_pkt_type */
    uint8_t flags; /* low nibble of the first byte */
    size_t size;   /* the whole packet, fixed header included */
    uint16_t id;   /* packet identifier (PUBLISH QoS > 0, acks, SUBACK) */
    /* CONNACK: the 3.1.1 return code or the MQTT 5 reason code; acks and DISCONNECT: the
     * reason code (0 when the packet left it out) */
    uint8_t reason;
    bool session_present; /* CONNACK */
    /* PUBLISH */
    int qos;
    bool dup, retain;
    const char *topic; /* not NUL-terminated */
    size_t topic_len;
    const uint8_t *payload;
    size_t payload_len;
    /* MQTT 5 properties the client acts on (0 = not sent) */
    uint16_t receive_max;      /* CONNACK: the broker's in-flight QoS>0 limit toward it */
    uint16_t server_keepalive; /* CONNACK */
    uint32_t max_packet;       /* CONNACK: largest packet the broker accepts */
    uint8_t max_qos_plus1;     /* CONNACK: Maximum QoS + 1 (0 = not sent: QoS 2 allowed) */
    uint8_t payload_format;    /* PUBLISH: 1 = UTF-8 text */
    uint32_t message_expiry;   /* PUBLISH */
    const uint8_t *props;      /* the raw property block (MQTT 5), for a caller that wants more */
    size_t props_len;
    /* SUBACK: one code per filter (granted QoS or failure/reason); codes past
     * MQTT_PKT_MAX_SUBACKS are checked but not kept (n_codes counts all of them) */
    uint8_t codes[MQTT_PKT_MAX_SUBACKS];
    size_t n_codes;
} mqtt_pkt;

long mqtt_pkt_encode_connect(uint8_t *buf, size_t cap, const mqtt_pkt_connect *c);
/* One SUBSCRIBE for n filters (n >= 1), filter i at QoS qos[i]. */
long mqtt_pkt_encode_subscribe(uint8_t *buf, size_t cap, int version, uint16_t id,
                               const char *const *filters, const int *qos, size_t n);
/* id is ignored for QoS 0. topic_len >= 1 (no topic aliases). */
long mqtt_pkt_encode_publish(uint8_t *buf, size_t cap, int version, const char *topic,
                             size_t topic_len, const void *payload, size_t payload_len, int qos,
                             bool retain, bool dup, uint16_t id);
/* Size of that PUBLISH, or 0 when MQTT cannot carry it (the same checks as the encoder). */
size_t mqtt_pkt_publish_size(int version, size_t topic_len, size_t payload_len, int qos);
/* PUBACK, PUBREC, PUBREL or PUBCOMP; reason (MQTT 5 only) 0 gives the short form. */
long mqtt_pkt_encode_ack(uint8_t *buf, size_t cap, int version, int type, uint16_t id,
                         uint8_t reason);
long mqtt_pkt_encode_pingreq(uint8_t *buf, size_t cap);
/* reason: MQTT 5 only (0 = normal disconnection); 3.1.1 DISCONNECT has none. */
long mqtt_pkt_encode_disconnect(uint8_t *buf, size_t cap, int version, uint8_t reason);

/* Decodes the first packet of buf[0..len) for a client speaking `version`. Returns its size
 * (> 0) and fills *out; 0 = incomplete (read more, keep the bytes); -EMSGSIZE = remaining
 * length above max_remain; -EBADMSG = malformed. On a negative return *why (may be NULL) names
 * the cause in a static string; *out is then unspecified. */
long mqtt_pkt_decode(const uint8_t *buf, size_t len, int version, size_t max_remain, mqtt_pkt *out,
                     const char **why);

/* Whether MQTT allows t[0..n) as a PUBLISH topic name: 1..65535 bytes of well-formed UTF-8
 * without U+0000, '+' or '#'. */
bool mqtt_pkt_topic_ok(const char *t, size_t n);

/* Names, for logs: "PUBLISH"; a reason code's name for that packet type and version
 * ("Not authorized", "Connection Refused, bad user name or password"); "unknown" otherwise. */
const char *mqtt_pkt_type_name(int type);
const char *mqtt_pkt_reason_name(int type, int version, uint8_t code);

#endif
