/* mqtt_pkt codec: encoders against hand-assembled bytes from the MQTT 3.1.1 and 5 texts, round
 * trips through the decoder, incremental decoding of several packets split anywhere, and every
 * malformed packet we could think of rejected (never read past the buffer: run under ASan). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mqtt_pkt.h"

#define V4 MQTT_PKT_V311
#define V5 MQTT_PKT_V5

/* Decodes exactly one packet from a heap copy (so ASan sees any read past its end). */
static long decode_copy(const uint8_t *p, size_t n, int version, mqtt_pkt *out, const char **why)
{
    uint8_t *c = malloc(n ? n : 1);
    assert_non_null(c);
    memcpy(c, p, n);
    long rc = mqtt_pkt_decode(c, n, version, MQTT_PKT_MAX_REMAIN, out, why);
    /* views point into c: callers only look at scalar fields after this */
    if (rc > 0 && out->topic)
        out->topic = out->topic - (const char *)c + (const char *)p;
    if (rc > 0 && out->payload)
        out->payload = out->payload - c + p;
    free(c);
    return rc;
}

static void test_mqtt_pkt_connect_v311_bytes(void **state)
{
    (void)state;
    mqtt_pkt_connect c = {.version = V4,
                          .client_id = "ab",
                          .username = "u",
                          .password = "pw",
                          .clean = true,
                          .keepalive = 60,
                          .will_topic = "w",
                          .will_payload = "x",
                          .will_len = 1,
                          .will_qos = 1,
                          .will_retain = true};
    uint8_t b[128];
    long n = mqtt_pkt_encode_connect(b, sizeof(b), &c);
    const uint8_t want[] = {0x10, 27, 0, 4,   'M', 'Q', 'T', 'T', 4, 0xee, 0, 60, 0,   2,  'a',
                            'b',  0,  1, 'w', 0,   1,   'x', 0,   1, 'u',  0, 2,  'p', 'w'};
    assert_int_equal(n, sizeof(want));
    assert_memory_equal(b, want, sizeof(want));
    /* one byte short: -ENOSPC */
    assert_int_equal(mqtt_pkt_encode_connect(b, sizeof(want) - 1, &c), -ENOSPC);
    /* 3.1.1 has no password without a user name */
    c.username = NULL;
    assert_int_equal(mqtt_pkt_encode_connect(b, sizeof(b), &c), -EINVAL);
}

static void test_mqtt_pkt_connect_v5_properties(void **state)
{
    (void)state;
    mqtt_pkt_connect c = {.version = V5,
                          .client_id = "c",
                          .clean = false,
                          .keepalive = 2,
                          .session_expiry = 0xffffffffu,
                          .receive_max = 100,
                          .will_topic = "w",
                          .will_payload = "",
                          .will_len = 0};
    uint8_t b[128];
    long n = mqtt_pkt_encode_connect(b, sizeof(b), &c);
    const uint8_t want[] = {0x10, 28, 0, 4,    'M',  'Q',  'T',  'T',  5,    0x04,
                            0,    2,  8, 0x11, 0xff, 0xff, 0xff, 0xff, 0x21, 0,
                            100,  0,  1, 'c',  0,    0,    1,    'w',  0,    0};
    assert_int_equal(n, sizeof(want));
    assert_memory_equal(b, want, sizeof(want));
    /* MQTT 5 allows a password alone */
    c.will_topic = NULL;
    c.password = "p";
    assert_true(mqtt_pkt_encode_connect(b, sizeof(b), &c) > 0);
    c.version = 3;
    assert_int_equal(mqtt_pkt_encode_connect(b, sizeof(b), &c), -EINVAL);
}

static void test_mqtt_pkt_subscribe_bytes(void **state)
{
    (void)state;
    const char *f[] = {"a/#", "b"};
    int q[] = {1, 2};
    uint8_t b[64];
    long n = mqtt_pkt_encode_subscribe(b, sizeof(b), V4, 7, f, q, 2);
    const uint8_t want[] = {0x82, 12, 0, 7, 0, 3, 'a', '/', '#', 1, 0, 1, 'b', 2};
    assert_int_equal(n, sizeof(want));
    assert_memory_equal(b, want, sizeof(want));
    n = mqtt_pkt_encode_subscribe(b, sizeof(b), V5, 7, f, q, 2);
    assert_int_equal(n, sizeof(want) + 1);
    assert_int_equal(b[1], 13);
    assert_int_equal(b[4], 0); /* empty property block */
    q[0] = 3;
    assert_int_equal(mqtt_pkt_encode_subscribe(b, sizeof(b), V4, 7, f, q, 2), -EINVAL);
    q[0] = 1;
    assert_int_equal(mqtt_pkt_encode_subscribe(b, sizeof(b), V4, 0, f, q, 2), -EINVAL);
    assert_int_equal(mqtt_pkt_encode_subscribe(b, 5, V4, 7, f, q, 2), -ENOSPC);
}

static void test_mqtt_pkt_publish_round_trip(void **state)
{
    (void)state;
    static uint8_t big[70000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)i;
    const size_t sizes[] = {0, 1, 64, 127, 128, 16383, 16384, sizeof(big)};
    static uint8_t b[80000];
    for (int v = V4; v <= V5; v++)
        for (int qos = 0; qos <= 2; qos++)
            for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
                bool dup = qos > 0 && s % 2;
                long n = mqtt_pkt_encode_publish(b, sizeof(b), v, "t/é", 4, big, sizes[s], qos,
                                                 s % 3 == 0, dup, 65535);
                assert_true(n > 0);
                assert_int_equal((size_t)n, mqtt_pkt_publish_size(v, 4, sizes[s], qos));
                mqtt_pkt p;
                const char *why = NULL;
                assert_int_equal(mqtt_pkt_decode(b, (size_t)n, v, sizeof(b), &p, &why), n);
                assert_int_equal(p.type, MQTT_PUBLISH);
                assert_int_equal(p.qos, qos);
                assert_int_equal(p.dup, dup);
                assert_int_equal(p.retain, s % 3 == 0);
                assert_int_equal(p.topic_len, 4);
                assert_memory_equal(p.topic, "t/é", 4);
                assert_int_equal(p.id, qos ? 65535 : 0);
                assert_int_equal(p.payload_len, sizes[s]);
                if (sizes[s])
                    assert_memory_equal(p.payload, big, sizes[s]);
                /* every strict prefix is "need more" */
                for (size_t cut = 0; cut < (size_t)n; cut += 1 + cut / 7)
                    assert_int_equal(mqtt_pkt_decode(b, cut, v, sizeof(b), &p, &why), 0);
            }
    assert_int_equal(mqtt_pkt_encode_publish(b, sizeof(b), V4, "", 0, "x", 1, 0, 0, 0, 0), -EINVAL);
    assert_int_equal(mqtt_pkt_encode_publish(b, sizeof(b), V4, "t", 1, "x", 1, 1, 0, 0, 0),
                     -EINVAL);
    assert_int_equal(mqtt_pkt_encode_publish(b, 4, V4, "t", 1, "x", 1, 0, 0, 0, 0), -ENOSPC);
    assert_int_equal(mqtt_pkt_publish_size(V4, 0, 1, 0), 0);
}

static void test_mqtt_pkt_acks_round_trip(void **state)
{
    (void)state;
    uint8_t b[16];
    mqtt_pkt p;
    for (int t = MQTT_PUBACK; t <= MQTT_PUBCOMP; t++) {
        long n = mqtt_pkt_encode_ack(b, sizeof(b), V4, t, 513, 0);
        assert_int_equal(n, 4);
        assert_int_equal(b[0], t << 4 | (t == MQTT_PUBREL ? 2 : 0));
        assert_int_equal(mqtt_pkt_decode(b, 4, V4, 100, &p, NULL), 4);
        assert_int_equal(p.type, t);
        assert_int_equal(p.id, 513);
        assert_int_equal(p.reason, 0);
        /* a reason code is MQTT 5 only */
        uint8_t r = t == MQTT_PUBREL || t == MQTT_PUBCOMP ? 0x92 : 0x10;
        assert_int_equal(mqtt_pkt_encode_ack(b, sizeof(b), V4, t, 9, r), 4);
        n = mqtt_pkt_encode_ack(b, sizeof(b), V5, t, 9, r);
        assert_int_equal(n, 5);
        assert_int_equal(mqtt_pkt_decode(b, 5, V5, 100, &p, NULL), 5);
        assert_int_equal(p.reason, r);
        assert_int_equal(mqtt_pkt_decode(b, 5, V4, 100, &p, NULL), -EBADMSG);
    }
    assert_int_equal(mqtt_pkt_encode_ack(b, sizeof(b), V4, MQTT_PUBLISH, 1, 0), -EINVAL);
    assert_int_equal(mqtt_pkt_encode_ack(b, sizeof(b), V4, MQTT_PUBACK, 0, 0), -EINVAL);
    assert_int_equal(mqtt_pkt_encode_ack(b, 3, V4, MQTT_PUBACK, 1, 0), -ENOSPC);
    assert_int_equal(mqtt_pkt_encode_pingreq(b, sizeof(b)), 2);
    assert_memory_equal(b, "\xc0\x00", 2);
    assert_int_equal(mqtt_pkt_encode_pingreq(b, 1), -ENOSPC);
    assert_int_equal(mqtt_pkt_encode_disconnect(b, sizeof(b), V4, 0x04), 2);
    assert_memory_equal(b, "\xe0\x00", 2);
    assert_int_equal(mqtt_pkt_encode_disconnect(b, sizeof(b), V5, 0x04), 3);
    assert_memory_equal(b, "\xe0\x01\x04", 3);
    assert_int_equal(mqtt_pkt_decode(b, 3, V5, 100, &p, NULL), 3);
    assert_int_equal(p.type, MQTT_DISCONNECT);
    assert_int_equal(p.reason, 4);
}

static void test_mqtt_pkt_connack_and_suback(void **state)
{
    (void)state;
    mqtt_pkt p;
    const char *why;
    const uint8_t ok4[] = {0x20, 2, 1, 0};
    assert_int_equal(decode_copy(ok4, sizeof(ok4), V4, &p, &why), 4);
    assert_true(p.session_present);
    assert_int_equal(p.reason, 0);
    const uint8_t refused4[] = {0x20, 2, 0, 5};
    assert_int_equal(decode_copy(refused4, sizeof(refused4), V4, &p, &why), 4);
    assert_int_equal(p.reason, 5);
    assert_string_equal(mqtt_pkt_reason_name(MQTT_CONNACK, V4, 5),
                        "Connection Refused, not authorized");
    /* MQTT 5 CONNACK: receive maximum 20, server keepalive 5, maximum QoS 1, a reason string,
     * a user property */
    const uint8_t ok5[] = {0x20, 23, 0, 0,   20,  0x21, 0, 20, 0x13, 0, 5, 0x24, 1,
                           0x1f, 0,  2, 'o', 'k', 0x26, 0, 1,  'k',  0, 1, 'v'};
    assert_int_equal(decode_copy(ok5, sizeof(ok5), V5, &p, &why), sizeof(ok5));
    assert_int_equal(p.receive_max, 20);
    assert_int_equal(p.server_keepalive, 5);
    assert_int_equal(p.max_qos_plus1, 2);
    const uint8_t bad_user5[] = {0x20, 3, 0, 0x86, 0};
    assert_int_equal(decode_copy(bad_user5, sizeof(bad_user5), V5, &p, &why), 5);
    assert_int_equal(p.reason, 0x86);
    assert_string_equal(mqtt_pkt_reason_name(MQTT_CONNACK, V5, 0x86), "Bad User Name or Password");
    assert_string_equal(mqtt_pkt_reason_name(MQTT_DISCONNECT, V5, 0x8E), "Session taken over");
    assert_string_equal(mqtt_pkt_reason_name(MQTT_PUBACK, V5, 0x8E), "unknown");

    const uint8_t suback4[] = {0x90, 5, 0, 7, 1, 0x80, 2};
    assert_int_equal(decode_copy(suback4, sizeof(suback4), V4, &p, &why), sizeof(suback4));
    assert_int_equal(p.id, 7);
    assert_int_equal(p.n_codes, 3);
    assert_int_equal(p.codes[1], 0x80);
    const uint8_t suback5[] = {0x90, 5, 0, 7, 0, 0x87, 0xA2};
    assert_int_equal(decode_copy(suback5, sizeof(suback5), V5, &p, &why), sizeof(suback5));
    assert_int_equal(p.codes[0], 0x87);
    const uint8_t pingresp[] = {0xd0, 0};
    assert_int_equal(decode_copy(pingresp, 2, V4, &p, &why), 2);
    assert_int_equal(p.type, MQTT_PINGRESP);
}

static void test_mqtt_pkt_publish_v5_properties(void **state)
{
    (void)state;
    mqtt_pkt p;
    const char *why;
    /* QoS 1, id 3, properties: payload format 1, message expiry 10, content type "j",
     * correlation data {1}, subscription ids 5 and 300 (varint 2 bytes), user property */
    const uint8_t pub[] = {0x32, 33,   0,    1,    't',  0, 3,   25,   0x01, 1,   0x02, 0,
                           0,    0,    10,   0x03, 0,    1, 'j', 0x09, 0,    1,   1,    0x0b,
                           5,    0x0b, 0xac, 0x02, 0x26, 0, 0,   0,    0,    'h', 'i'};
    assert_int_equal(decode_copy(pub, sizeof(pub), V5, &p, &why), sizeof(pub));
    assert_int_equal(p.payload_format, 1);
    assert_int_equal(p.message_expiry, 10);
    assert_int_equal(p.payload_len, 2);
    assert_int_equal(p.props_len, 25);
}

/* Each case: bytes, version, what is wrong. All must be -EBADMSG with a reason. */
static const struct bad {
    const char *name;
    int version;
    size_t len;
    uint8_t b[40];
} bads[] = {
    {"5-byte remaining length", V4, 6, {0x30, 0x80, 0x80, 0x80, 0x80, 0x01}},
    {"non-minimal remaining length", V4, 3, {0xd0, 0x80, 0x00}},
    {"reserved type 0", V4, 2, {0x00, 0}},
    {"AUTH", V5, 2, {0xf0, 0}},
    {"CONNECT from a server", V4, 2, {0x10, 0}},
    {"SUBSCRIBE from a server", V4, 4, {0x82, 2, 0, 1}},
    {"PINGREQ from a server", V4, 2, {0xc0, 0}},
    {"UNSUBACK (never unsubscribed)", V4, 4, {0xb0, 2, 0, 1}},
    {"PINGRESP flags", V4, 2, {0xd1, 0}},
    {"PINGRESP body", V4, 3, {0xd0, 1, 0}},
    {"PUBACK flags", V4, 4, {0x42, 2, 0, 1}},
    {"PUBREL without flag 2", V4, 4, {0x60, 2, 0, 1}},
    {"PUBACK short", V4, 3, {0x40, 1, 0}},
    {"PUBACK long 3.1.1", V4, 5, {0x40, 3, 0, 1, 0}},
    {"PUBACK id 0", V4, 4, {0x40, 2, 0, 0}},
    {"PUBACK bad reason", V5, 5, {0x40, 3, 0, 1, 0x92}},
    {"PUBCOMP bad reason", V5, 5, {0x70, 3, 0, 1, 0x10}},
    {"PUBACK trailing after props", V5, 7, {0x40, 5, 0, 1, 0, 0, 9}},
    {"PUBACK props beyond packet", V5, 6, {0x40, 4, 0, 1, 0, 5}},
    {"PUBACK property not allowed", V5, 9, {0x40, 7, 0, 1, 0, 3, 0x21, 0, 1}},
    {"CONNACK short", V4, 3, {0x20, 1, 0}},
    {"CONNACK long", V4, 5, {0x20, 3, 0, 0, 0}},
    {"CONNACK reserved flags", V4, 4, {0x20, 2, 2, 0}},
    {"CONNACK code 6", V4, 4, {0x20, 2, 0, 6}},
    {"CONNACK refused with session", V4, 4, {0x20, 2, 1, 5}},
    {"CONNACK 5 no props", V5, 4, {0x20, 2, 0, 0}},
    {"CONNACK 5 undefined reason", V5, 5, {0x20, 3, 0, 0x10, 0}},
    {"CONNACK 5 unknown property", V5, 7, {0x20, 5, 0, 0, 2, 0x7f, 0}},
    {"CONNACK 5 receive maximum 0", V5, 8, {0x20, 6, 0, 0, 3, 0x21, 0, 0}},
    {"CONNACK 5 repeated property", V5, 11, {0x20, 9, 0, 0, 6, 0x21, 0, 1, 0x21, 0, 1}},
    {"CONNACK 5 maximum QoS 2", V5, 7, {0x20, 5, 0, 0, 2, 0x24, 2}},
    {"CONNACK 5 max packet 0", V5, 10, {0x20, 8, 0, 0, 5, 0x27, 0, 0, 0, 0}},
    {"CONNACK 5 truncated u32", V5, 8, {0x20, 6, 0, 0, 3, 0x11, 0, 0}},
    {"CONNACK 5 bad UTF-8 string", V5, 9, {0x20, 7, 0, 0, 4, 0x1f, 0, 1, 0xff}},
    {"CONNACK 5 overlong UTF-8", V5, 10, {0x20, 8, 0, 0, 5, 0x1f, 0, 2, 0xc0, 0x80}},
    {"CONNACK 5 surrogate", V5, 11, {0x20, 9, 0, 0, 6, 0x1f, 0, 3, 0xed, 0xa0, 0x80}},
    {"CONNACK 5 NUL in string", V5, 9, {0x20, 7, 0, 0, 4, 0x1f, 0, 1, 0}},
    {"CONNACK 5 truncated user pair", V5, 10, {0x20, 8, 0, 0, 5, 0x26, 0, 1, 'k', 0}},
    {"CONNACK 5 bad property length", V5, 9, {0x20, 7, 0, 0, 0x80, 0x80, 0x80, 0x80, 1}},
    {"PUBLISH QoS 3", V4, 5, {0x36, 3, 0, 1, 't'}},
    {"PUBLISH QoS 0 DUP", V4, 5, {0x38, 3, 0, 1, 't'}},
    {"PUBLISH empty topic", V4, 4, {0x30, 2, 0, 0}},
    {"PUBLISH wildcard topic", V4, 5, {0x30, 3, 0, 1, '+'}},
    {"PUBLISH hash topic", V4, 7, {0x30, 5, 0, 3, 'a', '/', '#'}},
    {"PUBLISH topic beyond packet", V4, 5, {0x30, 3, 0, 5, 't'}},
    {"PUBLISH topic NUL", V4, 5, {0x30, 3, 0, 1, 0}},
    {"PUBLISH topic bad UTF-8", V4, 6, {0x30, 4, 0, 2, 0xe2, 0x82}},
    {"PUBLISH id missing", V4, 6, {0x32, 4, 0, 1, 't', 0}},
    {"PUBLISH id 0", V4, 7, {0x32, 5, 0, 1, 't', 0, 0}},
    {"PUBLISH 5 without props", V5, 5, {0x30, 3, 0, 1, 't'}},
    {"PUBLISH 5 topic alias", V5, 9, {0x30, 7, 0, 1, 't', 3, 0x23, 0, 1}},
    {"PUBLISH 5 payload format 2", V5, 8, {0x30, 6, 0, 1, 't', 2, 0x01, 2}},
    {"PUBLISH 5 subscription id 0", V5, 8, {0x30, 6, 0, 1, 't', 2, 0x0b, 0}},
    {"PUBLISH 5 CONNACK property", V5, 9, {0x30, 7, 0, 1, 't', 3, 0x21, 0, 1}},
    {"PUBLISH 5 reason string", V5, 9, {0x30, 7, 0, 1, 't', 3, 0x1f, 0, 0}},
    {"PUBLISH 5 repeated expiry",
     V5,
     16,
     {0x30, 14, 0, 1, 't', 10, 0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 1}},
    {"SUBACK no codes", V4, 4, {0x90, 2, 0, 1}},
    {"SUBACK code 3", V4, 5, {0x90, 3, 0, 1, 3}},
    {"SUBACK id 0", V4, 5, {0x90, 3, 0, 0, 0}},
    {"SUBACK 5 undefined code", V5, 6, {0x90, 4, 0, 1, 0, 0x10}},
    {"DISCONNECT 3.1.1", V4, 2, {0xe0, 0}},
    {"DISCONNECT 5 undefined reason", V5, 3, {0xe0, 1, 0x10}},
    {"DISCONNECT 5 trailing", V5, 5, {0xe0, 3, 0x8e, 0, 0}},
};

static void test_mqtt_pkt_malformed_rejected(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
        mqtt_pkt p;
        const char *why = NULL;
        long rc = decode_copy(bads[i].b, bads[i].len, bads[i].version, &p, &why);
        if (rc != -EBADMSG)
            fail_msg("case \"%s\": got %ld", bads[i].name, rc);
        assert_non_null(why);
    }
}

static void test_mqtt_pkt_size_bounded(void **state)
{
    (void)state;
    uint8_t b[8] = {0x30, 0xff, 0xff, 0xff, 0x7f}; /* 268,435,455 */
    mqtt_pkt p;
    const char *why = NULL;
    assert_int_equal(mqtt_pkt_decode(b, 5, V4, 1000, &p, &why), -EMSGSIZE);
    assert_non_null(why);
    /* bounded before the body arrives: no need to buffer 256 MiB to find out */
    assert_int_equal(mqtt_pkt_decode(b, 5, V4, MQTT_PKT_MAX_REMAIN, &p, &why), 0);
    uint8_t c[] = {0x30, 0x03, 0, 1, 't'};
    assert_int_equal(mqtt_pkt_decode(c, 5, V4, 2, &p, &why), -EMSGSIZE);
    assert_int_equal(mqtt_pkt_decode(c, 5, V4, 3, &p, &why), 5);
}

/* Many packets in one buffer, fed in chunks split at every possible place: every packet comes
 * out once, in order, with the partial tail kept. */
static void test_mqtt_pkt_stream_split_anywhere(void **state)
{
    (void)state;
    uint8_t stream[512];
    size_t n = 0;
    for (int i = 1; i <= 10; i++) {
        long k = mqtt_pkt_encode_publish(stream + n, sizeof(stream) - n, V5, "s/t", 3,
                                         "payload-payload!", (size_t)i, i % 3, false, false,
                                         (uint16_t)i);
        assert_true(k > 0);
        n += (size_t)k;
        k = mqtt_pkt_encode_ack(stream + n, sizeof(stream) - n, V5, MQTT_PUBACK, (uint16_t)i, 0);
        n += (size_t)k;
    }
    for (size_t chunk = 1; chunk <= n; chunk++) {
        uint8_t buf[512];
        size_t have = 0, fed = 0;
        int pubs = 0, acks = 0;
        while (fed < n || have) {
            size_t add = n - fed < chunk ? n - fed : chunk;
            memcpy(buf + have, stream + fed, add);
            have += add, fed += add;
            size_t off = 0;
            mqtt_pkt p;
            long k;
            while ((k = mqtt_pkt_decode(buf + off, have - off, V5, 1024, &p, NULL)) > 0) {
                if (p.type == MQTT_PUBLISH) {
                    pubs++;
                    assert_int_equal(p.payload_len, pubs);
                } else {
                    acks++;
                    assert_int_equal(p.id, acks);
                }
                off += (size_t)k;
            }
            assert_int_equal(k, 0);
            memmove(buf, buf + off, have - off);
            have -= off;
            if (fed == n && have)
                fail_msg("chunk %zu: %zu bytes left undecoded", chunk, have);
        }
        assert_int_equal(pubs, 10);
        assert_int_equal(acks, 10);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mqtt_pkt_connect_v311_bytes),
        cmocka_unit_test(test_mqtt_pkt_connect_v5_properties),
        cmocka_unit_test(test_mqtt_pkt_subscribe_bytes),
        cmocka_unit_test(test_mqtt_pkt_publish_round_trip),
        cmocka_unit_test(test_mqtt_pkt_acks_round_trip),
        cmocka_unit_test(test_mqtt_pkt_connack_and_suback),
        cmocka_unit_test(test_mqtt_pkt_publish_v5_properties),
        cmocka_unit_test(test_mqtt_pkt_malformed_rejected),
        cmocka_unit_test(test_mqtt_pkt_size_bounded),
        cmocka_unit_test(test_mqtt_pkt_stream_split_anywhere),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
