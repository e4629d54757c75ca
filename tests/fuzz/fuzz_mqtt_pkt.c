/* libFuzzer target for the MQTT packet decoder (common/mqtt_pkt): any bytes, read as a stream
 * of packets the way common/mqttc reads a socket, must decode, ask for more or be refused,
 * never read out of bounds, loop or trip a sanitizer. Every PUBLISH decoded is encoded again
 * and must decode to the same fields (the encoder and decoder agree).
 *
 *   make fuzz-mqtt FUZZ_SECONDS=60      (seeds in tests/fuzz/seeds-mqtt/)
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt_pkt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_publish(const mqtt_pkt *p, int version)
{
    static uint8_t out[70000];
    long n = mqtt_pkt_encode_publish(out, sizeof(out), version, p->topic, p->topic_len, p->payload,
                                     p->payload_len, p->qos, p->retain, p->dup, p->id);
    if (n == -ENOSPC)
        return;
    if (n <= 0)
        __builtin_trap();
    mqtt_pkt q;
    if (mqtt_pkt_decode(out, (size_t)n, version, MQTT_PKT_MAX_REMAIN, &q, NULL) != n)
        __builtin_trap();
    if (q.qos != p->qos || q.dup != p->dup || q.retain != p->retain || q.id != p->id ||
        q.topic_len != p->topic_len || memcmp(q.topic, p->topic, p->topic_len) != 0 ||
        q.payload_len != p->payload_len ||
        (p->payload_len && memcmp(q.payload, p->payload, p->payload_len) != 0))
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* the first byte picks the protocol version and a size bound, as a client's settings do */
    int version = data[0] & 1 ? MQTT_PKT_V5 : MQTT_PKT_V311;
    size_t max_remain = data[0] & 2 ? 64 : MQTT_PKT_MAX_REMAIN;
    data++, size--;
    size_t off = 0;
    while (off < size) {
        mqtt_pkt p;
        const char *why = NULL;
        long n = mqtt_pkt_decode(data + off, size - off, version, max_remain, &p, &why);
        if (n == 0)
            break;
        if (n < 0) {
            if (!why || (n != -EBADMSG && n != -EMSGSIZE))
                __builtin_trap();
            break;
        }
        if ((size_t)n > size - off || p.size != (size_t)n)
            __builtin_trap();
        if (p.type == MQTT_PUBLISH)
            check_publish(&p, version);
        (void)mqtt_pkt_reason_name(p.type, version, p.reason);
        off += (size_t)n;
    }
    return 0;
}
