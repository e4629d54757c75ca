/* tap: the SPSC copy ring of `mqttflow tap` (common/tap.c): what the reader gets, the rule
 * filter, the cut payload, drops when the reader is behind (never a wait), wrap-around, and a
 * stage's port following the supervisor's generation in the stats segment. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "names.h"
#include "rec.h"
#include "shm.h"
#include "stats.h"
#include "tap.h"
#include "tests/tools/testlib.h"

static char g_name[128];
static char g_inst[64];
static tap *g_sup, *g_prod, *g_read;

static int setup(void **state)
{
    (void)state;
    static int n;
    snprintf(g_inst, sizeof(g_inst), "test%d_%d", (int)getpid(), n++);
    if (names_tap(g_name, sizeof(g_name), g_inst, "rule") < 0 ||
        tap_create(g_name, TAP_RULE, TAP_RULE_ANY, &g_sup) < 0 || tap_attach(g_name, &g_prod) < 0 ||
        tap_attach(g_name, &g_read) < 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tap_detach(g_read);
    tap_detach(g_prod);
    tap_destroy(g_sup);
    g_read = g_prod = g_sup = NULL;
    return 0;
}

static void put(tap *t, const char *topic, const void *payload, size_t len, uint16_t rule)
{
    rec_view v = {.h = {.kind = REC_MSG,
                        .qos = 1,
                        .client = 2,
                        .rule = rule,
                        .topic_len = (uint32_t)strlen(topic),
                        .payload_len = (uint32_t)len},
                  .topic = topic,
                  .payload = payload};
    tap_put(t, &v);
}

static void test_tap_reader_gets_the_messages(void **state)
{
    (void)state;
    tap_msg m;
    assert_int_equal(tap_take(g_read, &m), 0);
    put(g_prod, "a/b", "hello", 5, 3);
    put(g_prod, "c", "", 0, 4);
    assert_int_equal(tap_take(g_read, &m), 1);
    assert_string_equal(m.v.topic, "a/b");
    assert_memory_equal(m.v.payload, "hello", 5);
    assert_int_equal(m.payload_len, 5);
    assert_int_equal(m.v.h.rule, 3);
    assert_int_equal(m.v.h.client, 2);
    assert_int_equal(m.v.h.qos, 1);
    assert_true(m.at_ns > 1600000000ull * 1000000000ull); /* wall clock */
    tap_next(g_read);
    assert_int_equal(tap_take(g_read, &m), 1);
    assert_string_equal(m.v.topic, "c");
    assert_int_equal(m.v.h.payload_len, 0);
    tap_next(g_read);
    assert_int_equal(tap_take(g_read, &m), 0);
    assert_int_equal(tap_written(g_read), 2);
    assert_int_equal(tap_dropped(g_read), 0);
}

static void test_tap_cuts_long_payloads(void **state)
{
    (void)state;
    static char big[5000];
    memset(big, 'x', sizeof(big));
    put(g_prod, "big", big, sizeof(big), 0);
    tap_msg m;
    assert_int_equal(tap_take(g_read, &m), 1);
    assert_int_equal(m.v.h.payload_len, TAP_MAX_PAYLOAD);
    assert_int_equal(m.payload_len, sizeof(big));
    tap_next(g_read);
}

static void test_tap_rule_filter(void **state)
{
    (void)state;
    char name[128];
    tap *sup, *prod, *rd;
    assert_int_equal(names_tap(name, sizeof(name), g_inst, "out"), 0);
    assert_int_equal(tap_create(name, TAP_OUT, 7, &sup), 0);
    assert_int_equal(tap_attach(name, &prod), 0);
    assert_int_equal(tap_attach(name, &rd), 0);
    put(prod, "x", "1", 1, 6);
    put(prod, "y", "2", 1, 7);
    tap_msg m;
    assert_int_equal(tap_take(rd, &m), 1);
    assert_string_equal(m.v.topic, "y");
    tap_next(rd);
    assert_int_equal(tap_take(rd, &m), 0);
    tap_detach(rd);
    tap_detach(prod);
    tap_destroy(sup);
    assert_int_equal(tap_attach(name, &rd), -ENOENT); /* destroy unlinks */
}

/* A reader that does not read: the producer fills the ring, then counts drops, never
 * blocking; what was copied is intact and in order, and reading makes room again. */
static void test_tap_full_ring_drops(void **state)
{
    (void)state;
    char payload[300];
    memset(payload, 'p', sizeof(payload));
    uint64_t n = 0;
    while (tap_dropped(g_read) == 0) {
        snprintf(payload, sizeof(payload), "%llu", (unsigned long long)n++);
        put(g_prod, "t", payload, sizeof(payload), 0);
        assert_true(n < TAP_RING_BYTES); /* it must drop long before */
    }
    uint64_t written = tap_written(g_read);
    assert_int_equal(written + 1, n);
    tap_msg m;
    for (uint64_t i = 0; i < written; i++) {
        assert_int_equal(tap_take(g_read, &m), 1);
        assert_int_equal(strtoull(m.v.payload, NULL, 10), i);
        tap_next(g_read);
    }
    assert_int_equal(tap_take(g_read, &m), 0);
    put(g_prod, "again", "1", 1, 0);
    assert_int_equal(tap_take(g_read, &m), 1);
    assert_string_equal(m.v.topic, "again");
    tap_next(g_read);
}

/* Many laps of the ring with sizes that do not divide it: the filler at the end is skipped
 * and every message comes out whole, in order. */
static void test_tap_wraps_around(void **state)
{
    (void)state;
    static char payload[TAP_MAX_PAYLOAD];
    tap_msg m;
    uint64_t next = 0;
    for (uint64_t i = 0; i < 20000; i++) {
        size_t len = 20 + (i * 37) % (sizeof(payload) - 20);
        snprintf(payload, sizeof(payload), "%llu", (unsigned long long)i);
        put(g_prod, "w/x", payload, len, 1);
        if (i % 3 == 2)
            while (tap_take(g_read, &m) == 1) {
                assert_int_equal(strtoull(m.v.payload, NULL, 10), next++);
                tap_next(g_read);
            }
    }
    while (tap_take(g_read, &m) == 1) {
        assert_int_equal(strtoull(m.v.payload, NULL, 10), next++);
        tap_next(g_read);
    }
    assert_int_equal(next, 20000);
    assert_int_equal(tap_dropped(g_read), 0);
}

/* A producer that attaches to a tap already far along (a restarted stage) and a reader that
 * is behind: the new producer must know the room left, not overwrite what is unread. */
static void test_tap_new_producer_respects_the_reader(void **state)
{
    (void)state;
    char payload[200];
    memset(payload, 'q', sizeof(payload));
    tap_msg m;
    for (int i = 0; i < 3000; i++) { /* laps of the ring, read as they go */
        put(g_prod, "lap", payload, sizeof(payload), 0);
        while (tap_take(g_read, &m) == 1)
            tap_next(g_read);
    }
    uint64_t n = 0;
    while (tap_dropped(g_read) == 0) { /* then the reader stops: the ring fills */
        snprintf(payload, sizeof(payload), "%llu", (unsigned long long)n++);
        put(g_prod, "t", payload, sizeof(payload), 0);
    }
    tap_detach(g_prod);
    assert_int_equal(tap_attach(g_name, &g_prod), 0);
    put(g_prod, "t", "late", 4, 0); /* no room: a drop, not an overwrite */
    assert_int_equal(tap_dropped(g_read), 2);
    for (uint64_t i = 0; i + 1 < n; i++) {
        assert_int_equal(tap_take(g_read, &m), 1);
        assert_int_equal(strtoull(m.v.payload, NULL, 10), i);
        tap_next(g_read);
    }
    assert_int_equal(tap_take(g_read, &m), 0);
}

/* A stage's port: no generation, no mapping; a new one, attached; 0 again, detached. */
static void test_tap_port_follows_the_generation(void **state)
{
    (void)state;
    char sname[128];
    stats *st;
    assert_int_equal(names_stats(sname, sizeof(sname), g_inst), 0);
    assert_int_equal(stats_create(sname, 4, &st), 0);
    tap_port p = {0};
    tap_port_sync(&p, st, TAP_RULE, g_inst);
    assert_null(p.t);
    __atomic_store_n(stats_tap_gen(st, TAP_RULE), 1, __ATOMIC_RELEASE);
    tap_port_sync(&p, st, TAP_RULE, g_inst);
    assert_non_null(p.t);
    rec_view v = {
        .h = {.kind = REC_MSG, .topic_len = 1, .payload_len = 1}, .topic = "z", .payload = "1"};
    tap_port_put(&p, &v);
    tap_msg m;
    assert_int_equal(tap_take(g_read, &m), 1);
    tap_next(g_read);
    __atomic_store_n(stats_tap_gen(st, TAP_RULE), 0, __ATOMIC_RELEASE);
    tap_port_sync(&p, st, TAP_RULE, g_inst);
    assert_null(p.t);
    tap_port_put(&p, &v); /* no tap: nothing, no crash */
    assert_int_equal(tap_take(g_read, &m), 0);
    tap_port_sync(&p, NULL, TAP_RULE, g_inst); /* no stats segment: no taps */
    assert_null(p.t);
    tap_port_fini(&p);
    stats_detach(st);
    shm_unlink_name(sname);
}

static void test_tap_point_names(void **state)
{
    (void)state;
    assert_int_equal(tap_point_parse("ingress"), TAP_INGRESS);
    assert_int_equal(tap_point_parse("out"), TAP_OUT);
    assert_int_equal(tap_point_parse("egress"), -1);
    assert_string_equal(tap_point_name(TAP_RULE), "rule");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST_ST(test_tap_reader_gets_the_messages),
        TEST_ST(test_tap_cuts_long_payloads),
        TEST_ST(test_tap_rule_filter),
        TEST_ST(test_tap_full_ring_drops),
        TEST_ST(test_tap_wraps_around),
        TEST_ST(test_tap_new_producer_respects_the_reader),
        TEST_ST(test_tap_port_follows_the_generation),
        cmocka_unit_test(test_tap_point_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
