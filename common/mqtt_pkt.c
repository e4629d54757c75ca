#include "mqtt_pkt.h"

#include <errno.h>
#include <string.h>

#define BIT(t)  (1u << (t))
#define STR_MAX 65535u

/* ---- reason codes: one table, name and the packets each code may appear in (MQTT 5
 * section 2.4), so the decoder and the log names agree ---- */

#define R_ACKS (BIT(MQTT_PUBACK) | BIT(MQTT_PUBREC))
#define R_ERR  (BIT(MQTT_CONNACK) | R_ACKS | BIT(MQTT_SUBACK) | BIT(MQTT_DISCONNECT))

static const struct reason {
    uint8_t code;
    uint32_t types;
    const char *name;
} reasons[] = {
    {0x00, BIT(MQTT_CONNACK) | R_ACKS | BIT(MQTT_PUBREL) | BIT(MQTT_PUBCOMP), "Success"},
    {0x00, BIT(MQTT_DISCONNECT), "Normal disconnection"},
    {0x00, BIT(MQTT_SUBACK), "Granted QoS 0"},
    {0x01, BIT(MQTT_SUBACK), "Granted QoS 1"},
    {0x02, BIT(MQTT_SUBACK), "Granted QoS 2"},
    {0x04, BIT(MQTT_DISCONNECT), "Disconnect with Will Message"},
    {0x10, R_ACKS, "No matching subscribers"},
    {0x80, R_ERR, "Unspecified error"},
    {0x81, BIT(MQTT_CONNACK) | BIT(MQTT_DISCONNECT), "Malformed Packet"},
    {0x82, BIT(MQTT_CONNACK) | BIT(MQTT_DISCONNECT), "Protocol Error"},
    {0x83, R_ERR, "Implementation specific error"},
    {0x84, BIT(MQTT_CONNACK), "Unsupported Protocol Version"},
    {0x85, BIT(MQTT_CONNACK), "Client Identifier not valid"},
    {0x86, BIT(MQTT_CONNACK), "Bad User Name or Password"},
    {0x87, R_ERR, "Not authorized"},
    {0x88, BIT(MQTT_CONNACK), "Server unavailable"},
    {0x89, BIT(MQTT_CONNACK) | BIT(MQTT_DISCONNECT), "Server busy"},
    {0x8A, BIT(MQTT_CONNACK), "Banned"},
    {0x8B, BIT(MQTT_DISCONNECT), "Server shutting down"},
    {0x8C, BIT(MQTT_CONNACK) | BIT(MQTT_DISCONNECT), "Bad authentication method"},
    {0x8D, BIT(MQTT_DISCONNECT), "Keep Alive timeout"},
    {0x8E, BIT(MQTT_DISCONNECT), "Session taken over"},
    {0x8F, BIT(MQTT_SUBACK) | BIT(MQTT_DISCONNECT), "Topic Filter invalid"},
    {0x90, BIT(MQTT_CONNACK) | R_ACKS | BIT(MQTT_DISCONNECT), "Topic Name invalid"},
    {0x91, R_ACKS | BIT(MQTT_SUBACK), "Packet Identifier in use"},
    {0x92, BIT(MQTT_PUBREL) | BIT(MQTT_PUBCOMP), "Packet Identifier not found"},
    {0x93, BIT(MQTT_DISCONNECT), "Receive Maximum exceeded"},
    {0x94, BIT(MQTT_DISCONNECT), "Topic Alias invalid"},
    {0x95, BIT(MQTT_CONNACK) | BIT(MQTT_DISCONNECT), "Packet too large"},
    {0x96, BIT(MQTT_DISCONNECT), "Message rate too high"},
    {0x97, R_ERR, "Quota exceeded"},
    {0x98, BIT(MQTT_DISCONNECT), "Administrative action"},
    {0x99, BIT(MQTT_CONNACK) | R_ACKS | BIT(MQTT_DISCONNECT), "Payload format invalid"},
    {0x9A, BIT(MQTT_CONNACK) | BIT(MQTT_DISCONNECT), "Retain not supported"},
    {0x9B, BIT(MQTT_CONNACK) | BIT(MQTT_DISCONNECT), "QoS not supported"},
    {0x9C, BIT(MQTT_CONNACK) | BIT(MQTT_DISCONNECT), "Use another server"},
    {0x9D, BIT(MQTT_CONNACK) | BIT(MQTT_DISCONNECT), "Server moved"},
    {0x9E, BIT(MQTT_SUBACK) | BIT(MQTT_DISCONNECT), "Shared Subscriptions not supported"},
    {0x9F, BIT(MQTT_CONNACK) | BIT(MQTT_DISCONNECT), "Connection rate exceeded"},
    {0xA0, BIT(MQTT_DISCONNECT), "Maximum connect time"},
    {0xA1, BIT(MQTT_SUBACK) | BIT(MQTT_DISCONNECT), "Subscription Identifiers not supported"},
    {0xA2, BIT(MQTT_SUBACK) | BIT(MQTT_DISCONNECT), "Wildcard Subscriptions not supported"},
};

/* MQTT 3.1.1 CONNACK return codes (section 3.2.2.3) */
static const char *const connack_v311[] = {
    "Connection Accepted",
    "Connection Refused, unacceptable protocol version",
    "Connection Refused, identifier rejected",
    "Connection Refused, Server unavailable",
    "Connection Refused, bad user name or password",
    "Connection Refused, not authorized",
};

static const struct reason *find_reason(int type, uint8_t code)
{
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        if (reasons[i].code == code && type > 0 && type < 32 && (reasons[i].types & BIT(type)))
            return &reasons[i];
    return NULL;
}

const char *mqtt_pkt_reason_name(int type, int version, uint8_t code)
{
    if (version != MQTT_PKT_V5) {
        if (type == MQTT_CONNACK && code < sizeof(connack_v311) / sizeof(connack_v311[0]))
            return connack_v311[code];
        if (type == MQTT_SUBACK)
            return code == 0x80 ? "Failure" : code <= 2 ? "Granted QoS" : "unknown";
        return code == 0 ? "Success" : "unknown";
    }
    const struct reason *r = find_reason(type, code);
    return r ? r->name : "unknown";
}

const char *mqtt_pkt_type_name(int type)
{
    static const char *const names[] = {
        "reserved", "CONNECT",  "CONNACK",    "PUBLISH", "PUBACK",      "PUBREC",
        "PUBREL",   "PUBCOMP",  "SUBSCRIBE",  "SUBACK",  "UNSUBSCRIBE", "UNSUBACK",
        "PINGREQ",  "PINGRESP", "DISCONNECT", "AUTH",
    };
    return type >= 0 && type < 16 ? names[type] : "unknown";
}

/* ---- MQTT 5 properties: one table (identifier, wire type, packets it may appear in) ---- */

enum ptype { P_BYTE, P_U16, P_U32, P_VARINT, P_STR, P_BIN, P_PAIR };
enum { P_MULTI = 1 }; /* may appear more than once */

static const struct prop {
    uint8_t id;
    uint8_t type;
    uint8_t multi;
    uint32_t types;
} prop_table[] = {
    {0x01, P_BYTE, 0, BIT(MQTT_PUBLISH)},                        /* payload format */
    {0x02, P_U32, 0, BIT(MQTT_PUBLISH)},                         /* message expiry */
    {0x03, P_STR, 0, BIT(MQTT_PUBLISH)},                         /* content type */
    {0x08, P_STR, 0, BIT(MQTT_PUBLISH)},                         /* response topic */
    {0x09, P_BIN, 0, BIT(MQTT_PUBLISH)},                         /* correlation data */
    {0x0B, P_VARINT, P_MULTI, BIT(MQTT_PUBLISH)},                /* subscription id */
    {0x11, P_U32, 0, BIT(MQTT_CONNACK) | BIT(MQTT_DISCONNECT)},  /* session expiry */
    {0x12, P_STR, 0, BIT(MQTT_CONNACK)},                         /* assigned client id */
    {0x13, P_U16, 0, BIT(MQTT_CONNACK)},                         /* server keepalive */
    {0x15, P_STR, 0, BIT(MQTT_CONNACK)},                         /* auth method */
    {0x16, P_BIN, 0, BIT(MQTT_CONNACK)},                         /* auth data */
    {0x1A, P_STR, 0, BIT(MQTT_CONNACK)},                         /* response info */
    {0x1C, P_STR, 0, BIT(MQTT_CONNACK) | BIT(MQTT_DISCONNECT)},  /* server reference */
    {0x1F, P_STR, 0, ~(BIT(MQTT_PUBLISH) | BIT(MQTT_PINGRESP))}, /* reason string */
    {0x21, P_U16, 0, BIT(MQTT_CONNACK)},                         /* receive maximum */
    {0x22, P_U16, 0, BIT(MQTT_CONNACK)},                         /* topic alias max */
    {0x23, P_U16, 0, BIT(MQTT_PUBLISH)},                         /* topic alias */
    {0x24, P_BYTE, 0, BIT(MQTT_CONNACK)},                        /* maximum QoS */
    {0x25, P_BYTE, 0, BIT(MQTT_CONNACK)},                        /* retain available */
    {0x26, P_PAIR, P_MULTI, ~BIT(MQTT_PINGRESP)},                /* user property */
    {0x27, P_U32, 0, BIT(MQTT_CONNACK)},                         /* max packet size */
    {0x28, P_BYTE, 0, BIT(MQTT_CONNACK)},                        /* wildcard subs */
    {0x29, P_BYTE, 0, BIT(MQTT_CONNACK)},                        /* subscription ids */
    {0x2A, P_BYTE, 0, BIT(MQTT_CONNACK)},                        /* shared subs */
};

/* ---- bounded reader ---- */

typedef struct rd {
    const uint8_t *p;
    size_t n;
} rd;

#define BAD(msg)                                                                                   \
    do {                                                                                           \
        *why = (msg);                                                                              \
        return -EBADMSG;                                                                           \
    } while (0)

static int rd_u8(rd *r, uint8_t *v)
{
    if (r->n < 1)
        return -1;
    *v = r->p[0];
    r->p++, r->n--;
    return 0;
}

static int rd_u16(rd *r, uint16_t *v)
{
    if (r->n < 2)
        return -1;
    *v = (uint16_t)(r->p[0] << 8 | r->p[1]);
    r->p += 2, r->n -= 2;
    return 0;
}

static int rd_u32(rd *r, uint32_t *v)
{
    if (r->n < 4)
        return -1;
    *v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 | r->p[3];
    r->p += 4, r->n -= 4;
    return 0;
}

/* Variable byte integer (1-4 bytes, minimal encoding). 0, 1 = truncated, -1 = malformed. */
static int varint(const uint8_t *p, size_t n, uint32_t *v, size_t *used)
{
    uint32_t val = 0;
    for (size_t i = 0; i < 4; i++) {
        if (i >= n)
            return 1;
        val |= (uint32_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            /* [MQTT-1.5.5-1] the minimum number of bytes: a last byte of 0 after others
             * means the value fitted in fewer */
            if (i > 0 && p[i] == 0)
                return -1;
            *v = val;
            *used = i + 1;
            return 0;
        }
    }
    return -1;
}

static int rd_varint(rd *r, uint32_t *v)
{
    size_t used;
    if (varint(r->p, r->n, v, &used) != 0)
        return -1;
    r->p += used, r->n -= used;
    return 0;
}

/* Well-formed UTF-8 (RFC 3629: no overlongs, no surrogates, at most U+10FFFF) without U+0000
 * ([MQTT-1.5.4-1], [MQTT-1.5.4-2]). */
static bool utf8_ok(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0)
            k = 1, cp = c & 0x1f, min = 0x80;
        else if ((c & 0xf0) == 0xe0)
            k = 2, cp = c & 0x0f, min = 0x800;
        else if ((c & 0xf8) == 0xf0)
            k = 3, cp = c & 0x07, min = 0x10000;
        else
            return false;
        if (n - i <= k)
            return false;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += k + 1;
    }
    return true;
}

static int rd_bin(rd *r, const uint8_t **p, size_t *len)
{
    uint16_t n;
    if (rd_u16(r, &n) < 0 || r->n < n)
        return -1;
    *p = r->p;
    *len = n;
    r->p += n, r->n -= n;
    return 0;
}

static int rd_str(rd *r, const uint8_t **p, size_t *len)
{
    if (rd_bin(r, p, len) < 0 || !utf8_ok(*p, *len))
        return -1;
    return 0;
}

/* Checks the value of property `id` (b, h or w, by its type) and keeps the ones this client acts
 * on in out; the other properties are only validated by their type. */
static long prop_apply(uint8_t id, uint8_t b, uint16_t h, uint32_t w, mqtt_pkt *out,
                       const char **why)
{
    switch (id) {
    case 0x01:
        if (b > 1)
            BAD("payload format indicator above 1");
        out->payload_format = b;
        break;
    case 0x02:
        out->message_expiry = w;
        break;
    case 0x0B:
        if (w == 0)
            BAD("subscription identifier 0");
        break;
    case 0x13:
        out->server_keepalive = h;
        break;
    case 0x21:
        if (h == 0)
            BAD("receive maximum 0");
        out->receive_max = h;
        break;
    case 0x23:
        /* we never send a Topic Alias Maximum, so it is 0 and the broker may not use one
         * ([MQTT-3.3.2-9]) */
        BAD("topic alias (this client allows none)");
    case 0x24:
        if (b > 1)
            BAD("maximum QoS above 1");
        out->max_qos_plus1 = (uint8_t)(b + 1);
        break;
    case 0x25:
    case 0x28:
    case 0x29:
    case 0x2A:
        if (b > 1)
            BAD("availability flag above 1");
        break;
    case 0x27:
        if (w == 0)
            BAD("maximum packet size 0");
        out->max_packet = w;
        break;
    default:
        break;
    }
    return 0;
}

/* Parses an MQTT 5 property block for packet `type` into out's acted-on fields. */
static long rd_props(rd *r, int type, mqtt_pkt *out, const char **why)
{
    uint32_t plen;
    if (rd_varint(r, &plen) < 0 || plen > r->n)
        BAD("property length beyond the packet");
    rd pr = {r->p, plen};
    out->props = r->p;
    out->props_len = plen;
    r->p += plen, r->n -= plen;
    uint64_t seen = 0; /* single-occurrence properties seen, bit = index in prop_table[] */
    while (pr.n) {
        uint8_t id;
        (void)rd_u8(&pr, &id);
        size_t k = 0;
        while (k < sizeof(prop_table) / sizeof(prop_table[0]) && prop_table[k].id != id)
            k++;
        if (k == sizeof(prop_table) / sizeof(prop_table[0]))
            BAD("unknown property identifier");
        const struct prop *pd = &prop_table[k];
        if (!(pd->types & BIT(type)))
            BAD("property not allowed in this packet");
        if (!pd->multi) {
            if (seen & (1ull << k))
                BAD("property repeated");
            seen |= 1ull << k;
        }
        uint8_t b = 0;
        uint16_t h = 0;
        uint32_t w = 0;
        const uint8_t *s;
        size_t sl;
        int bad = 0;
        switch (pd->type) {
        case P_BYTE:
            bad = rd_u8(&pr, &b) < 0;
            break;
        case P_U16:
            bad = rd_u16(&pr, &h) < 0;
            break;
        case P_U32:
            bad = rd_u32(&pr, &w) < 0;
            break;
        case P_VARINT:
            bad = rd_varint(&pr, &w) < 0;
            break;
        case P_STR:
            bad = rd_str(&pr, &s, &sl) < 0;
            break;
        case P_BIN:
            bad = rd_bin(&pr, &s, &sl) < 0;
            break;
        case P_PAIR:
            bad = rd_str(&pr, &s, &sl) < 0 || rd_str(&pr, &s, &sl) < 0;
            break;
        }
        if (bad)
            BAD("property value truncated or not UTF-8");
        long rc = prop_apply(id, b, h, w, out, why);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static long reason_checked(int type, uint8_t code, const char **why)
{
    if (!find_reason(type, code))
        BAD("reason code not defined for this packet");
    return 0;
}

static long decode_connack(rd *r, int version, mqtt_pkt *out, const char **why)
{
    uint8_t f, rc;
    if (rd_u8(r, &f) < 0 || rd_u8(r, &rc) < 0)
        BAD("CONNACK shorter than 2 bytes");
    if (f & 0xfe)
        BAD("CONNACK reserved flags set");
    out->session_present = f & 1;
    out->reason = rc;
    if (version == MQTT_PKT_V5) {
        if (reason_checked(MQTT_CONNACK, rc, why) < 0)
            return -EBADMSG;
        if (rd_props(r, MQTT_CONNACK, out, why) < 0)
            return -EBADMSG;
    } else if (rc > 5) {
        BAD("CONNACK return code above 5");
    }
    if (rc != 0 && out->session_present)
        BAD("CONNACK refusal with session present");
    if (r->n)
        BAD("bytes after the CONNACK");
    return 0;
}

static bool topic_name_ok(const uint8_t *t, size_t n)
{
    return n > 0 && !memchr(t, '+', n) && !memchr(t, '#', n);
}

bool mqtt_pkt_topic_ok(const char *t, size_t n)
{
    return n <= STR_MAX && topic_name_ok((const uint8_t *)t, n) && utf8_ok((const uint8_t *)t, n);
}

static long decode_publish(rd *r, int version, mqtt_pkt *out, const char **why)
{
    out->qos = (out->flags >> 1) & 3;
    out->dup = out->flags & 8;
    out->retain = out->flags & 1;
    if (out->qos == 3)
        BAD("PUBLISH QoS 3");
    if (out->qos == 0 && out->dup)
        BAD("PUBLISH QoS 0 with DUP");
    const uint8_t *t;
    size_t tl;
    if (rd_str(r, &t, &tl) < 0)
        BAD("PUBLISH topic truncated or not UTF-8");
    if (!topic_name_ok(t, tl))
        BAD("PUBLISH topic empty or with a wildcard");
    out->topic = (const char *)t;
    out->topic_len = tl;
    if (out->qos) {
        if (rd_u16(r, &out->id) < 0)
            BAD("PUBLISH packet identifier truncated");
        if (out->id == 0)
            BAD("PUBLISH packet identifier 0");
    }
    if (version == MQTT_PKT_V5 && rd_props(r, MQTT_PUBLISH, out, why) < 0)
        return -EBADMSG;
    out->payload = r->p;
    out->payload_len = r->n;
    r->p += r->n, r->n = 0;
    return 0;
}

static long decode_ack(rd *r, int version, mqtt_pkt *out, const char **why)
{
    if (rd_u16(r, &out->id) < 0)
        BAD("acknowledgement shorter than 2 bytes");
    if (out->id == 0)
        BAD("acknowledgement of packet identifier 0");
    if (version != MQTT_PKT_V5) {
        if (r->n)
            BAD("3.1.1 acknowledgement longer than 2 bytes");
        return 0;
    }
    if (r->n == 0) /* [MQTT-3.4.2-1]: no reason code means 0x00 */
        return 0;
    (void)rd_u8(r, &out->reason);
    if (reason_checked(out->type, out->reason, why) < 0)
        return -EBADMSG;
    if (r->n && rd_props(r, out->type, out, why) < 0)
        return -EBADMSG;
    if (r->n)
        BAD("bytes after the acknowledgement's properties");
    return 0;
}

static long decode_suback(rd *r, int version, mqtt_pkt *out, const char **why)
{
    if (rd_u16(r, &out->id) < 0)
        BAD("SUBACK shorter than 2 bytes");
    if (out->id == 0)
        BAD("SUBACK of packet identifier 0");
    if (version == MQTT_PKT_V5 && rd_props(r, MQTT_SUBACK, out, why) < 0)
        return -EBADMSG;
    if (r->n == 0)
        BAD("SUBACK without return codes");
    while (r->n) {
        uint8_t c;
        (void)rd_u8(r, &c);
        if (version == MQTT_PKT_V5 ? !find_reason(MQTT_SUBACK, c) : (c > 2 && c != 0x80))
            BAD("SUBACK return code not defined");
        if (out->n_codes < MQTT_PKT_MAX_SUBACKS)
            out->codes[out->n_codes] = c;
        out->n_codes++;
    }
    return 0;
}

static long decode_disconnect(rd *r, int version, mqtt_pkt *out, const char **why)
{
    if (version != MQTT_PKT_V5)
        BAD("DISCONNECT from a 3.1.1 server");
    if (r->n == 0)
        return 0;
    (void)rd_u8(r, &out->reason);
    if (reason_checked(MQTT_DISCONNECT, out->reason, why) < 0)
        return -EBADMSG;
    if (r->n && rd_props(r, MQTT_DISCONNECT, out, why) < 0)
        return -EBADMSG;
    if (r->n)
        BAD("bytes after the DISCONNECT's properties");
    return 0;
}

long mqtt_pkt_decode(const uint8_t *buf, size_t len, int version, size_t max_remain, mqtt_pkt *out,
                     const char **why)
{
    const char *ignored;
    if (!why)
        why = &ignored;
    if (len < 2)
        return 0;
    uint32_t remain;
    size_t used;
    int v = varint(buf + 1, len - 1, &remain, &used);
    if (v < 0)
        BAD("remaining length not a valid variable byte integer");
    if (v > 0)
        return 0;
    if (remain > max_remain) {
        *why = "remaining length above the maximum";
        return -EMSGSIZE;
    }
    size_t hdr = 1 + used;
    if (len - hdr < remain)
        return 0;
    memset(out, 0, sizeof(*out));
    out->type = buf[0] >> 4;
    out->flags = buf[0] & 0x0f;
    out->size = hdr + remain;
    rd r = {buf + hdr, remain};
    /* fixed-header flags are fixed for every type but PUBLISH ([MQTT-2.2.2-1]) */
    uint8_t want = out->type == MQTT_PUBREL ? 2 : 0;
    if (out->type != MQTT_PUBLISH && out->flags != want)
        BAD("reserved fixed-header flags");
    long rc;
    switch (out->type) {
    case MQTT_CONNACK:
        rc = decode_connack(&r, version, out, why);
        break;
    case MQTT_PUBLISH:
        rc = decode_publish(&r, version, out, why);
        break;
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
        rc = decode_ack(&r, version, out, why);
        break;
    case MQTT_SUBACK:
        rc = decode_suback(&r, version, out, why);
        break;
    case MQTT_PINGRESP:
        rc = remain ? (*why = "PINGRESP with a body", -EBADMSG) : 0;
        break;
    case MQTT_DISCONNECT:
        rc = decode_disconnect(&r, version, out, why);
        break;
    default:
        BAD("packet type a server does not send to this client");
    }
    return rc < 0 ? rc : (long)out->size;
}

/* ---- encoders ---- */

typedef struct wr {
    uint8_t *p;
    size_t n; /* room left */
} wr;

static void w_u8(wr *w, uint8_t v)
{
    *w->p++ = v;
    w->n--;
}

static void w_u16(wr *w, uint16_t v)
{
    w_u8(w, (uint8_t)(v >> 8));
    w_u8(w, (uint8_t)v);
}

static void w_u32(wr *w, uint32_t v)
{
    w_u16(w, (uint16_t)(v >> 16));
    w_u16(w, (uint16_t)v);
}

static void w_bytes(wr *w, const void *p, size_t n)
{
    if (n)
        memcpy(w->p, p, n);
    w->p += n;
    w->n -= n;
}

static void w_bin(wr *w, const void *p, size_t n)
{
    w_u16(w, (uint16_t)n);
    w_bytes(w, p, n);
}

static size_t varint_size(size_t v)
{
    return v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : 4;
}

static void w_varint(wr *w, size_t v)
{
    do {
        uint8_t b = v & 0x7f;
        v >>= 7;
        w_u8(w, (uint8_t)(b | (v ? 0x80 : 0)));
    } while (v);
}

/* Writes the fixed header of a packet with `remain` bytes after it; the checks every encoder
 * shares. The caller writes exactly remain bytes next. */
static long begin(wr *w, uint8_t first, size_t remain)
{
    if (remain > MQTT_PKT_MAX_REMAIN)
        return -EINVAL;
    size_t total = 1 + varint_size(remain) + remain;
    if (total > w->n)
        return -ENOSPC;
    w_u8(w, first);
    w_varint(w, remain);
    return (long)total;
}

static size_t opt_str_size(const char *s)
{
    return s ? 2 + strlen(s) : 0;
}

long mqtt_pkt_encode_connect(uint8_t *buf, size_t cap, const mqtt_pkt_connect *c)
{
    bool v5 = c->version == MQTT_PKT_V5;
    if ((c->version != MQTT_PKT_V311 && !v5) || !c->client_id)
        return -EINVAL;
    if (c->will_topic && (c->will_qos < 0 || c->will_qos > 2 || !*c->will_topic))
        return -EINVAL;
    if (!v5 && c->password && !c->username) /* [MQTT-3.1.2-22] */
        return -EINVAL;
    const char *strs[] = {c->client_id, c->will_topic, c->username, c->password};
    for (size_t i = 0; i < 4; i++)
        if (strs[i] && strlen(strs[i]) > STR_MAX)
            return -EINVAL;
    if (c->will_topic && c->will_len > STR_MAX)
        return -EINVAL;
    size_t props = 0;
    if (v5)
        props = (c->session_expiry ? 5 : 0) + (c->receive_max ? 3 : 0);
    size_t remain = 10 + (v5 ? varint_size(props) + props : 0) + opt_str_size(c->client_id) +
                    opt_str_size(c->username) + opt_str_size(c->password);
    if (c->will_topic)
        remain += (v5 ? 1 : 0) + opt_str_size(c->will_topic) + 2 + c->will_len;
    wr w = {buf, cap};
    long total = begin(&w, MQTT_CONNECT << 4, remain);
    if (total < 0)
        return total;
    w_bin(&w, "MQTT", 4);
    w_u8(&w, (uint8_t)c->version);
    uint8_t fl = c->clean ? 0x02 : 0;
    if (c->will_topic)
        fl |= (uint8_t)(0x04 | c->will_qos << 3 | (c->will_retain ? 0x20 : 0));
    if (c->password)
        fl |= 0x40;
    if (c->username)
        fl |= 0x80;
    w_u8(&w, fl);
    w_u16(&w, c->keepalive);
    if (v5) {
        w_varint(&w, props);
        if (c->session_expiry) {
            w_u8(&w, 0x11);
            w_u32(&w, c->session_expiry);
        }
        if (c->receive_max) {
            w_u8(&w, 0x21);
            w_u16(&w, c->receive_max);
        }
    }
    w_bin(&w, c->client_id, strlen(c->client_id));
    if (c->will_topic) {
        if (v5)
            w_u8(&w, 0); /* no will properties */
        w_bin(&w, c->will_topic, strlen(c->will_topic));
        w_bin(&w, c->will_payload, c->will_len);
    }
    if (c->username)
        w_bin(&w, c->username, strlen(c->username));
    if (c->password)
        w_bin(&w, c->password, strlen(c->password));
    return total;
}

long mqtt_pkt_encode_subscribe(uint8_t *buf, size_t cap, int version, uint16_t id,
                               const char *const *filters, const int *qos, size_t n)
{
    if (n == 0 || id == 0)
        return -EINVAL;
    size_t remain = 2 + (version == MQTT_PKT_V5 ? 1 : 0);
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(filters[i]);
        if (l == 0 || l > STR_MAX || qos[i] < 0 || qos[i] > 2)
            return -EINVAL;
        remain += 2 + l + 1;
        if (remain > MQTT_PKT_MAX_REMAIN)
            return -EINVAL;
    }
    wr w = {buf, cap};
    long total = begin(&w, MQTT_SUBSCRIBE << 4 | 2, remain);
    if (total < 0)
        return total;
    w_u16(&w, id);
    if (version == MQTT_PKT_V5)
        w_u8(&w, 0);
    for (size_t i = 0; i < n; i++) {
        w_bin(&w, filters[i], strlen(filters[i]));
        w_u8(&w, (uint8_t)qos[i]);
    }
    return total;
}

static size_t publish_remain(int version, size_t topic_len, size_t payload_len, int qos)
{
    if (topic_len == 0 || topic_len > STR_MAX || qos < 0 || qos > 2 ||
        payload_len > MQTT_PKT_MAX_REMAIN)
        return 0;
    size_t r = 2 + topic_len + (qos ? 2 : 0) + (version == MQTT_PKT_V5 ? 1 : 0) + payload_len;
    return r > MQTT_PKT_MAX_REMAIN ? 0 : r;
}

size_t mqtt_pkt_publish_size(int version, size_t topic_len, size_t payload_len, int qos)
{
    size_t r = publish_remain(version, topic_len, payload_len, qos);
    return r ? 1 + varint_size(r) + r : 0;
}

long mqtt_pkt_encode_publish(uint8_t *buf, size_t cap, int version, const char *topic,
                             size_t topic_len, const void *payload, size_t payload_len, int qos,
                             bool retain, bool dup, uint16_t id)
{
    size_t remain = publish_remain(version, topic_len, payload_len, qos);
    if (remain == 0 || (qos && id == 0))
        return -EINVAL;
    uint8_t first =
        (uint8_t)(MQTT_PUBLISH << 4 | (qos && dup ? 8 : 0) | qos << 1 | (retain ? 1 : 0));
    wr w = {buf, cap};
    long total = begin(&w, first, remain);
    if (total < 0)
        return total;
    w_bin(&w, topic, topic_len);
    if (qos)
        w_u16(&w, id);
    if (version == MQTT_PKT_V5)
        w_u8(&w, 0);
    w_bytes(&w, payload, payload_len);
    return total;
}

long mqtt_pkt_encode_ack(uint8_t *buf, size_t cap, int version, int type, uint16_t id,
                         uint8_t reason)
{
    if (type < MQTT_PUBACK || type > MQTT_PUBCOMP || id == 0)
        return -EINVAL;
    bool with_reason = version == MQTT_PKT_V5 && reason != 0;
    wr w = {buf, cap};
    long total =
        begin(&w, (uint8_t)(type << 4 | (type == MQTT_PUBREL ? 2 : 0)), with_reason ? 3 : 2);
    if (total < 0)
        return total;
    w_u16(&w, id);
    if (with_reason)
        w_u8(&w, reason);
    return total;
}

long mqtt_pkt_encode_pingreq(uint8_t *buf, size_t cap)
{
    wr w = {buf, cap};
    return begin(&w, MQTT_PINGREQ << 4, 0);
}

long mqtt_pkt_encode_disconnect(uint8_t *buf, size_t cap, int version, uint8_t reason)
{
    bool with_reason = version == MQTT_PKT_V5 && reason != 0;
    wr w = {buf, cap};
    long total = begin(&w, MQTT_DISCONNECT << 4, with_reason ? 1 : 0);
    if (total > 0 && with_reason)
        w_u8(&w, reason);
    return total;
}
