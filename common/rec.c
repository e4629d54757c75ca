#include "rec.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

size_t rec_size(size_t topic_len, size_t payload_len)
{
    return sizeof(rec_hdr) + topic_len + 1 + payload_len + 1;
}

long rec_encode(void *buf, size_t cap, const rec_hdr *h, const char *topic, size_t topic_len,
                const void *payload, size_t payload_len)
{
    if (topic_len > UINT32_MAX || payload_len > UINT32_MAX)
        return -EMSGSIZE;
    size_t need = rec_size(topic_len, payload_len);
    if (need > cap)
        return -EMSGSIZE;
    /* the header as given, then its lengths patched in place: a copy patched on the stack
     * and copied out stalled the 16-byte loads on the 4-byte stores of the lengths (no store
     * forwarding), per record */
    uint32_t tl = (uint32_t)topic_len, pl = (uint32_t)payload_len;
    unsigned char *p = buf;
    memcpy(p, h, sizeof(*h));
    memcpy(p + offsetof(rec_hdr, topic_len), &tl, sizeof(tl));
    memcpy(p + offsetof(rec_hdr, payload_len), &pl, sizeof(pl));
    p += sizeof(*h);
    memcpy(p, topic, topic_len);
    p[topic_len] = 0;
    p += topic_len + 1;
    if (payload_len)
        memcpy(p, payload, payload_len);
    p[payload_len] = 0;
    return (long)need;
}

/* rec_check's body, inlined into rec_decode: the decode of every record in every stage pays
 * no extra call for the reason it can give */
static inline enum rec_bad check(const void *buf, size_t len, rec_view *out)
{
    if (len < sizeof(rec_hdr))
        return REC_BAD_SHORT;
    const unsigned char *p = buf;
    memcpy(&out->h, p, sizeof(rec_hdr));
    const rec_hdr *h = &out->h;
    /* lengths are 32-bit, so their sum cannot overflow size_t on a 64-bit host */
    if ((size_t)h->topic_len + h->payload_len + 2 != len - sizeof(rec_hdr))
        return REC_BAD_LENGTHS;
    if (h->kind < REC_MSG || h->kind > REC_DEAD || h->qos > 2 || h->retain > 1)
        return REC_BAD_FIELDS;
    const char *topic = (const char *)p + sizeof(rec_hdr);
    if (topic[h->topic_len] != 0 || memchr(topic, 0, h->topic_len) != NULL)
        return REC_BAD_TOPIC;
    const unsigned char *payload = (const unsigned char *)topic + h->topic_len + 1;
    if (payload[h->payload_len] != 0)
        return REC_BAD_PAYLOAD;
    out->topic = topic;
    out->payload = payload;
    return REC_BAD_NONE;
}

enum rec_bad rec_check(const void *buf, size_t len, rec_view *out)
{
    return check(buf, len, out);
}

int rec_decode(const void *buf, size_t len, rec_view *out)
{
    return check(buf, len, out) == REC_BAD_NONE ? 0 : -EBADMSG;
}

const char *rec_bad_text(unsigned why)
{
    static const char *const text[] = {
        [REC_BAD_NONE] = "it decodes",
        [REC_BAD_SHORT] = "shorter than a record header",
        [REC_BAD_LENGTHS] = "topic and payload lengths disagree with the record's size",
        [REC_BAD_FIELDS] = "kind, qos or retain out of range",
        [REC_BAD_TOPIC] = "the topic holds a NUL or lacks its terminating one",
        [REC_BAD_PAYLOAD] = "the payload lacks its terminating NUL",
    };
    return why < sizeof(text) / sizeof(text[0]) ? text[why] : "unknown";
}
