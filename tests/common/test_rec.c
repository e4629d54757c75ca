/* rec codec: round trip, and every malformed record rejected without reading out of bounds. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "names.h"
#include "rec.h"

static long encode(unsigned char *buf, size_t cap, const char *topic, const char *payload)
{
    rec_hdr h = {.seq = 7, .received_ns = 99, .client = 3, .rule = 5, .kind = REC_MSG, .qos = 1};
    return rec_encode(buf, cap, &h, topic, strlen(topic), payload, strlen(payload));
}

static void test_rec_round_trip(void **state)
{
    (void)state;
    unsigned char buf[256];
    long n = encode(buf, sizeof(buf), "a/b", "hello");
    assert_int_equal(n, (long)rec_size(3, 5));
    rec_view v;
    assert_int_equal(rec_decode(buf, (size_t)n, &v), 0);
    assert_string_equal(v.topic, "a/b");
    assert_int_equal(v.h.payload_len, 5);
    assert_memory_equal(v.payload, "hello", 6); /* includes the NUL */
    assert_int_equal(v.h.seq, 7);
    assert_int_equal(v.h.client, 3);
    assert_int_equal(v.h.rule, 5);
    assert_int_equal(v.h.qos, 1);
}

static void test_rec_empty_payload(void **state)
{
    (void)state;
    unsigned char buf[128];
    rec_hdr h = {.kind = REC_PUBLISH};
    long n = rec_encode(buf, sizeof(buf), &h, "t", 1, NULL, 0);
    assert_true(n > 0);
    rec_view v;
    assert_int_equal(rec_decode(buf, (size_t)n, &v), 0);
    assert_int_equal(v.h.payload_len, 0);
    assert_int_equal(((const char *)v.payload)[0], 0);
}

static void test_rec_encode_too_small(void **state)
{
    (void)state;
    unsigned char buf[64];
    assert_int_equal(encode(buf, sizeof(buf), "a/very/long/topic/name", "payload payload"),
                     -EMSGSIZE);
}

static void test_rec_decode_rejects_every_truncation(void **state)
{
    (void)state;
    unsigned char buf[256];
    long n = encode(buf, sizeof(buf), "x/y/z", "payload");
    rec_view v;
    for (long len = 0; len < n; len++)
        assert_int_equal(rec_decode(buf, (size_t)len, &v), -EBADMSG);
}

static void test_rec_decode_rejects_bad_fields(void **state)
{
    (void)state;
    unsigned char buf[256], copy[256];
    long n = encode(buf, sizeof(buf), "x/y", "p");
    rec_view v;
    rec_hdr h;

    memcpy(copy, buf, (size_t)n);
    memcpy(&h, copy, sizeof(h));
    h.topic_len = 0xffffffffu; /* would overflow a naive sum on 32-bit */
    memcpy(copy, &h, sizeof(h));
    assert_int_equal(rec_decode(copy, (size_t)n, &v), -EBADMSG);
    /* rec_check names the failed check (the dead letter of an undecodable record says it) */
    assert_int_equal(rec_check(copy, (size_t)n, &v), REC_BAD_LENGTHS);

    memcpy(copy, buf, (size_t)n);
    copy[sizeof(rec_hdr) + 1] = 0; /* NUL inside the topic */
    assert_int_equal(rec_decode(copy, (size_t)n, &v), -EBADMSG);
    assert_int_equal(rec_check(copy, (size_t)n, &v), REC_BAD_TOPIC);

    memcpy(copy, buf, (size_t)n);
    copy[n - 1] = 'x'; /* payload NUL missing */
    assert_int_equal(rec_decode(copy, (size_t)n, &v), -EBADMSG);
    assert_int_equal(rec_check(copy, (size_t)n, &v), REC_BAD_PAYLOAD);

    memcpy(copy, buf, (size_t)n);
    memcpy(&h, copy, sizeof(h));
    h.qos = 3;
    memcpy(copy, &h, sizeof(h));
    assert_int_equal(rec_decode(copy, (size_t)n, &v), -EBADMSG);
    assert_int_equal(rec_check(copy, (size_t)n, &v), REC_BAD_FIELDS);

    memcpy(copy, buf, (size_t)n);
    memcpy(&h, copy, sizeof(h));
    h.kind = 0;
    memcpy(copy, &h, sizeof(h));
    assert_int_equal(rec_decode(copy, (size_t)n, &v), -EBADMSG);
    assert_int_equal(rec_check(copy, (size_t)n, &v), REC_BAD_FIELDS);

    assert_int_equal(rec_check(buf, sizeof(rec_hdr) - 1, &v), REC_BAD_SHORT);
    assert_int_equal(rec_check(buf, (size_t)n, &v), REC_BAD_NONE);
    assert_string_equal(rec_bad_text(REC_BAD_LENGTHS),
                        "topic and payload lengths disagree with the record's size");
    assert_string_equal(rec_bad_text(200), "unknown");
}

static void test_names_format_and_limit(void **state)
{
    (void)state;
    char buf[64];
    assert_int_equal(names_worker_in(buf, sizeof(buf), "demo", 3), 0);
    assert_string_equal(buf, "mqttflow.demo.w3.in");
    assert_int_equal(names_ingress_ring(buf, sizeof(buf), "demo", 0), 0);
    assert_string_equal(buf, "mqttflow.demo.in0");
    assert_int_equal(names_stats(buf, 8, "demo"), -ENAMETOOLONG);
}

/* The size check is exact: a buffer of rec_size() bytes holds the record, one byte less
 * does not (and nothing is written past the buffer: the guard byte after it stays). */
static void test_rec_encode_exact_size(void **state)
{
    (void)state;
    unsigned char buf[64];
    size_t need = rec_size(3, 5);
    assert_true(need < sizeof(buf));
    memset(buf, 0xa5, sizeof(buf));
    assert_int_equal(encode(buf, need, "a/b", "hello"), (long)need);
    assert_int_equal(buf[need], 0xa5);
    rec_view v;
    assert_int_equal(rec_decode(buf, need, &v), 0);
    assert_string_equal(v.topic, "a/b");
    assert_int_equal(encode(buf, need - 1, "a/b", "hello"), -EMSGSIZE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rec_round_trip),
        cmocka_unit_test(test_rec_empty_payload),
        cmocka_unit_test(test_rec_encode_too_small),
        cmocka_unit_test(test_rec_decode_rejects_every_truncation),
        cmocka_unit_test(test_rec_decode_rejects_bad_fields),
        cmocka_unit_test(test_names_format_and_limit),
        cmocka_unit_test(test_rec_encode_exact_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
