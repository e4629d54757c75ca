/* test_ingress: the real mqttflow-ingress process against a real mosquitto.
 *
 * Each test starts a mosquitto on a free 127.0.0.1 port from a test-local config, creates the
 * instance's ingress ring and stats segment itself (as the supervisor would), writes a small
 * YAML (one client, two subscriptions: "t/a" QoS 1 and "t/b/#" QoS 0), spawns the ingress
 * with MQTTFLOW_READY_FD and waits for "ready", publishes with mfpub and reads the ring as
 * the consumer (the harness is in ingress_fixture.h). Binaries are found under $BUILD
 * (default "build"). MF_TEST_FILTER='*name*' runs matching tests only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ingress_fixture.h"

#define N_MSG 200

/* Waits up to timeout_ms for the ingress to count n connected clients, and asserts it does. */
static void expect_connected(fixture *f, uint64_t n, int timeout_ms)
{
    uint64_t end = clock_mono_ns() + (uint64_t)timeout_ms * 1000000ull;
    while (stats_get(&f->slot->connected) != n && clock_mono_ns() < end)
        sleep_ms(10);
    assert_int_equal(stats_get(&f->slot->connected), n);
}

/* SIGTERM to the ingress, which must exit with status 0 within timeout_ms. */
static void term_ingress_exits_0(fixture *f, int timeout_ms)
{
    assert_int_equal(kill(f->ingress, SIGTERM), 0);
    int st = wait_exit(f->ingress, timeout_ms);
    assert_int_not_equal(st, -1);
    f->ingress = 0;
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* The next n records are source src's test payloads 0..n-1, in order. */
static void expect_records_of(fixture *f, uint32_t src, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        rec_view v;
        assert_int_equal(next_record(f, &v, 5000), 0);
        testlib_hdr th;
        assert_int_equal(testlib_parse(v.payload, v.h.payload_len, &th), 0);
        assert_int_equal(th.src, src);
        assert_int_equal(th.seq, i);
    }
}

static void test_ingress_records_match_published(void **state)
{
    fixture *f = *state;
    char n[16];
    snprintf(n, sizeof(n), "%d", N_MSG);
    /* round-robin: even seq -> t/a (QoS 1 subscription), odd -> t/b/x (QoS 0) */
    expect_exit0(mfpub_start(f, "-t", "t/a", "-t", "t/b/x", "-n", n, "-s", "100", "-q", "1", "-i",
                             "9", NULL),
                 20000);
    uint64_t last_pub[2] = {0, 0}, last_rec = 0;
    int seen[2] = {0, 0};
    for (int i = 0; i < N_MSG; i++) {
        rec_view v;
        assert_int_equal(next_record(f, &v, 5000), 0);
        assert_int_equal(v.h.kind, REC_MSG);
        assert_int_equal(v.h.client, 0);
        assert_int_equal(v.h.rule, REC_NONE);
        assert_int_equal(v.h.payload_len, 100);
        assert_true(v.h.received_ns > 0);
        testlib_hdr th;
        assert_int_equal(testlib_parse(v.payload, v.h.payload_len, &th), 0);
        assert_true(th.sumok);
        assert_int_equal(th.src, 9);
        int which = (int)(th.seq % 2);
        assert_string_equal(v.topic, which ? "t/b/x" : "t/a");
        assert_int_equal(v.h.qos, which ? 0 : 1);
        assert_int_equal(v.h.retain, 0);
        /* order kept per topic, ingress sequence strictly increasing */
        if (seen[which])
            assert_true(th.seq > last_pub[which]);
        last_pub[which] = th.seq;
        seen[which]++;
        if (i > 0)
            assert_int_equal(v.h.seq, last_rec + 1);
        last_rec = v.h.seq;
    }
    assert_int_equal(seen[0], N_MSG / 2);
    assert_int_equal(seen[1], N_MSG / 2);
    ring_release(f->cons);
    rec_view v;
    assert_int_equal(next_record(f, &v, 300), -1); /* exactly N, nothing more */
    assert_int_equal(wait_counter(&f->slot->in, N_MSG, 2000), N_MSG);
    assert_int_equal(stats_get(&f->slot->connected), 1);
    assert_int_equal(stats_get(&f->slot->pid), (uint64_t)f->ingress);
    assert_true(stats_get(&f->slot->heartbeat_ns) > 0);
}

static void test_ingress_oversized_counted_not_written(void **state)
{
    fixture *f = *state;
    /* max_payload is 1024: a 2000-byte message is refused, the next one still arrives */
    expect_exit0(mfpub_start(f, "-t", "t/a", "-n", "1", "-s", "2000", "-q", "1", "-i", "1", NULL),
                 10000);
    assert_int_equal(wait_counter(&f->slot->errors, 1, 5000), 1);
    assert_int_equal(stats_get(&f->slot->dead), 1);
    expect_exit0(mfpub_start(f, "-t", "t/a", "-n", "1", "-s", "64", "-q", "1", "-i", "2", NULL),
                 10000);
    rec_view v;
    assert_int_equal(next_record(f, &v, 5000), 0);
    assert_int_equal(v.h.payload_len, 64);
    testlib_hdr th;
    assert_int_equal(testlib_parse(v.payload, v.h.payload_len, &th), 0);
    assert_int_equal(th.src, 2);
    ring_release(f->cons);
    assert_int_equal(next_record(f, &v, 300), -1);
    assert_int_equal(stats_get(&f->slot->in), 1);
    assert_int_equal(stats_get(&f->slot->errors), 1);
}

static void test_ingress_sigterm_exits_zero(void **state)
{
    fixture *f = *state;
    expect_exit0(mfpub_start(f, "-t", "t/a", "-n", "10", "-q", "1", NULL), 10000);
    assert_int_equal(wait_counter(&f->slot->in, 10, 5000), 10);
    term_ingress_exits_0(f, 5000);
    assert_int_equal(stats_get(&f->slot->connected), 0);
    /* everything it acknowledged is in the ring */
    int got = 0;
    rec_view v;
    while (next_record(f, &v, 200) == 0)
        got++;
    assert_int_equal(got, 10);
}

static void test_ingress_full_ring_blocks_without_loss(void **state)
{
    fixture *f = *state;
    /* an 8 KiB ring holds 64 of these records: nobody reads until the ingress has parked on
     * the full ring, then every message must still come out, in order, none dropped */
    pid_t pub = mfpub_start(f, "-t", "t/a", "-n", "1000", "-s", "64", "-q", "1", "-w", "50", "-i",
                            "4", NULL);
    ring_stats rs;
    uint64_t end = clock_mono_ns() + 10000000000ull;
    do {
        sleep_ms(10);
        ring_get_stats(f->cons, &rs);
    } while (rs.producer_waits == 0 && clock_mono_ns() < end);
    assert_true(rs.producer_waits > 0);
    assert_true(ring_used(f->cons) > ring_capacity(f->cons) - 256);
    uint64_t want = 0;
    for (int i = 0; i < 1000; i++) {
        rec_view v;
        assert_int_equal(next_record(f, &v, 10000), 0);
        testlib_hdr th;
        assert_int_equal(testlib_parse(v.payload, v.h.payload_len, &th), 0);
        assert_int_equal(th.seq, want); /* one topic, QoS 1: exact order, no gap */
        want++;
        if (i % 16 == 15)
            ring_release(f->cons);
    }
    ring_release(f->cons);
    expect_exit0(pub, 20000);
    rec_view v;
    assert_int_equal(next_record(f, &v, 300), -1);
    assert_int_equal(stats_get(&f->slot->dropped), 0);
    assert_int_equal(stats_get(&f->slot->in), 1000);
}

static void test_ingress_full_ring_drops_qos0(void **state)
{
    fixture *f = *state;
    /* overflow: drop and nobody reads: QoS 0 messages beyond the ring's room are counted */
    expect_exit0(mfpub_start(f, "-t", "t/b/x", "-n", "500", "-s", "64", "-q", "0", NULL), 10000);
    uint64_t end = clock_mono_ns() + 5000000000ull;
    while (stats_get(&f->slot->in) + stats_get(&f->slot->dropped) < 500 && clock_mono_ns() < end)
        sleep_ms(10);
    uint64_t in = stats_get(&f->slot->in), dropped = stats_get(&f->slot->dropped);
    assert_int_equal(in + dropped, 500);
    assert_true(dropped > 0);
    assert_true(in > 0);
    ring_stats rs;
    ring_get_stats(f->cons, &rs);
    assert_int_equal(rs.drops, dropped);
    int got = 0;
    rec_view v;
    while (next_record(f, &v, 200) == 0)
        got++;
    assert_int_equal((uint64_t)got, in);
}

static void test_ingress_reconnects_and_resubscribes(void **state)
{
    fixture *f = *state;
    kill_wait(&f->broker);
    expect_connected(f, 0, 5000);
    /* the process stays up while the broker is away */
    assert_int_equal(waitpid(f->ingress, NULL, WNOHANG), 0);
    /* at least one reconnect attempt fails (logged) before the broker is back */
    uint64_t end = clock_mono_ns() + 5000000000ull;
    /* paho: "failed: the broker could not be reached ..."; io_uring: "failed (connect(): ...)" */
#define CONNECT_FAILED_LOGGED                                                                      \
    (file_has(f, "ingress.log", "failed: the broker could not be reached") ||                      \
     file_has(f, "ingress.log", " failed (the broker could not be reached: connect(): "))
    while (!CONNECT_FAILED_LOGGED && clock_mono_ns() < end)
        sleep_ms(10);
    assert_true(CONNECT_FAILED_LOGGED);
#undef CONNECT_FAILED_LOGGED
    assert_int_equal(start_broker(f), 0);
    expect_connected(f, 1, 10000);
    /* subscribed again (the broker had no session): a message arrives; retry the publish
     * until the SUBACK has been processed */
    rec_view v;
    int got = -1;
    for (int attempt = 0; attempt < 50 && got != 0; attempt++) {
        expect_exit0(mfpub_start(f, "-t", "t/a", "-n", "1", "-q", "1", "-i", "77", NULL), 10000);
        got = next_record(f, &v, 200);
    }
    assert_int_equal(got, 0);
    testlib_hdr th;
    assert_int_equal(testlib_parse(v.payload, v.h.payload_len, &th), 0);
    assert_int_equal(th.src, 77);
}

static void test_ingress_sigterm_while_disconnected_exits_zero(void **state)
{
    fixture *f = *state;
    kill_wait(&f->broker);
    expect_connected(f, 0, 5000);
    /* it keeps retrying (heartbeat moves) until told to stop, then stops promptly */
    uint64_t hb = stats_get(&f->slot->heartbeat_ns);
    assert_true(wait_counter(&f->slot->heartbeat_ns, hb + 1, 2000) > hb);
    term_ingress_exits_0(f, 5000);
}

static void test_ingress_authenticates_with_username_password(void **state)
{
    fixture *f = *state;
    /* the broker refuses anonymous clients (mfpub has no credentials)... */
    pid_t anon = mfpub_start(f, "-t", "t/a", "-n", "1", "-q", "1", NULL);
    int st = wait_exit(anon, 15000);
    assert_true(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) != 0);
    /* ...yet the ingress got ready, so it connected and subscribed with username/password;
     * prove the subscription is live with an authenticated publisher (mosquitto_pub) */
    char port[16];
    snprintf(port, sizeof(port), "%d", f->port);
    char *argv[] = {"/usr/bin/mosquitto_pub",
                    "-p",
                    port,
                    "-u",
                    "ingress",
                    "-P",
                    "s3cret",
                    "-t",
                    "t/a",
                    "-q",
                    "1",
                    "-m",
                    "hello",
                    NULL};
    expect_exit0(spawn(argv, -1, NULL), 10000);
    rec_view v;
    assert_int_equal(next_record(f, &v, 5000), 0);
    assert_string_equal(v.topic, "t/a");
    assert_int_equal(v.h.payload_len, 5);
    assert_memory_equal(v.payload, "hello", 6); /* with its NUL */
}

static void test_ingress_will_published_when_killed(void **state)
{
    fixture *f = *state;
    pid_t sub = mfsub_start(f, "will", "-t", "status/ingress", "-q", "1", "-n", "1", "-D", "-I",
                            "10", NULL);
    kill_wait(&f->ingress); /* SIGKILL: no DISCONNECT, so the broker sends the will */
    expect_exit0(sub, 15000);
    assert_non_null(strstr(mfsub_output(f, "will"), "status/ingress\tgone\n"));
}

static void test_ingress_shared_group_splits_messages(void **state)
{
    fixture *f = *state;
    /* a second member of group "g": the broker must share t/a between it and the ingress */
    pid_t sub = mfsub_start(f, "peer", "-t", "$share/g/t/a", "-q", "1", "-I", "2", NULL);
    expect_exit0(mfpub_start(f, "-t", "t/a", "-n", "100", "-q", "1", "-i", "3", NULL), 10000);
    int st = wait_exit(sub, 15000);
    assert_int_not_equal(st, -1);
    long peer = mfsub_result(f, "peer", "unique");
    long got = 0;
    rec_view v;
    while (next_record(f, &v, 500) == 0)
        got++;
    assert_true(peer > 0);
    assert_true(got > 0);
    assert_int_equal(got + peer, 100);
}

static int setup_persistent_block(void **state)
{
    setup_opts o = {.client_extra = "    clean_session: false\n    keepalive: 2\n",
                    .ring_cap = 8192};
    return setup_opts_run(state, &o);
}

/* Reads n records of one QoS 1 topic and asserts exact order 0..n-1, no gap, no repeat;
 * with n2 > 0, then 0..n2-1 of a second source. */
static void expect_in_order2(fixture *f, int n, int n2)
{
    for (int i = 0; i < n + n2; i++) {
        rec_view v;
        assert_int_equal(next_record(f, &v, 10000), 0);
        testlib_hdr th;
        assert_int_equal(testlib_parse(v.payload, v.h.payload_len, &th), 0);
        assert_int_equal(th.seq, (uint64_t)(i < n ? i : i - n));
        if (i % 16 == 15)
            ring_release(f->cons);
    }
    ring_release(f->cons);
    rec_view v;
    assert_int_equal(next_record(f, &v, 300), -1);
}

static void expect_in_order(fixture *f, int n)
{
    expect_in_order2(f, n, 0);
}

/* Keeps the ring full (nobody reads) for ms after every message was taken, asserting the
 * broker never dropped the ingress meanwhile. The duration is the condition under test
 * (keepalive expiry), so it is a time, polled for the event that must not happen. */
static void hold_ring_full(fixture *f, int ms)
{
    uint64_t end = clock_mono_ns() + (uint64_t)ms * 1000000ull;
    while (clock_mono_ns() < end) {
        assert_false(file_has(f, "mosquitto.log", "exceeded timeout"));
        assert_int_equal(stats_get(&f->slot->connected), 1);
        sleep_ms(100);
    }
}

static void test_ingress_persistent_session_survives_keepalive_timeout(void **state)
{
    fixture *f = *state;
    /* nobody reads for 3 x keepalive: the ingress spools what the ring cannot take, paho's
     * receive thread keeps sending PINGREQs and the broker keeps the connection; then
     * everything comes out in order, nothing lost, no duplicate */
    expect_exit0(mfpub_start(f, "-t", "t/a", "-n", "1000", "-s", "64", "-q", "1", "-i", "4", NULL),
                 20000);
    assert_int_equal(wait_counter(&f->slot->in, 1000, 15000), 1000);
    assert_true(stats_get(&f->slot->extra[STATS_I_SPOOLED]) > 0); /* spooled */
    hold_ring_full(f, 6500);
    expect_in_order(f, 1000);
    assert_false(file_has(f, "ingress.log", "lost"));
    assert_int_equal(stats_get(&f->slot->connected), 1);
}

static int setup_clean_keepalive(void **state)
{
    setup_opts o = {.client_extra = "    clean_session: true\n    keepalive: 2\n",
                    .ring_cap = 8192};
    return setup_opts_run(state, &o);
}

static void test_ingress_full_ring_spools_and_keeps_connection(void **state)
{
    fixture *f = *state;
    /* clean_session: true, keepalive 2 s, an 8 KiB ring nobody reads for more than 3 x
     * keepalive: without the spool the broker dropped us after 3 s and discarded 935 of
     * 1000 messages (subscriber.h). Now: no disconnect, no reconnect, 0 lost, order kept. */
    pid_t pub = mfpub_start(f, "-t", "t/a", "-n", "1000", "-s", "64", "-q", "1", "-w", "50", "-i",
                            "4", NULL);
    expect_exit0(pub, 20000); /* every message PUBACKed by the broker to its publisher */
    assert_int_equal(wait_counter(&f->slot->in, 1000, 15000), 1000);
    uint64_t spooled = stats_get(&f->slot->extra[STATS_I_SPOOLED]);
    assert_true(spooled >= 1000 - 64); /* the ring holds 64 of these records */
    assert_int_equal(stats_get(&f->slot->extra[STATS_I_SPOOL_NOW]), spooled); /* in the spool now */
    hold_ring_full(f, 6500);
    /* messages keep flowing while the spool is non-empty: they queue behind it */
    expect_exit0(mfpub_start(f, "-t", "t/a", "-n", "200", "-s", "64", "-q", "1", "-i", "5", NULL),
                 20000);
    assert_int_equal(wait_counter(&f->slot->in, 1200, 15000), 1200);
    expect_in_order2(f, 1000, 200);
    /* the gauge is set just after the last records were flushed into the ring */
    uint64_t end = clock_mono_ns() + 2000000000ull;
    while (stats_get(&f->slot->extra[STATS_I_SPOOL_NOW]) != 0 && clock_mono_ns() < end)
        sleep_ms(10);
    assert_int_equal(stats_get(&f->slot->extra[STATS_I_SPOOL_NOW]), 0);
    assert_false(file_has(f, "ingress.log", "lost"));
    assert_false(file_has(f, "ingress.log", "reconnect"));
    assert_false(file_has(f, "mosquitto.log", "exceeded timeout"));
    assert_int_equal(stats_get(&f->slot->dropped), 0);
    /* the spool is acknowledged and its consumed segments gone */
    char dir[256];
    snprintf(dir, sizeof(dir), "%s/spool/ingress0.%s", f->dir, f->instance);
    struct stat stb;
    assert_int_equal(stat(dir, &stb), 0);
    assert_int_equal(stb.st_mode & 0777, 0700);
}

static void test_ingress_kill9_with_spooled_messages_loses_nothing(void **state)
{
    fixture *f = *state;
    /* the ring full, most messages in the spool, then kill -9 of the ingress: the restarted
     * ingress recovers the spool and moves it into the ring behind what the ring holds, in
     * order; new messages queue behind the spool */
    expect_exit0(mfpub_start(f, "-t", "t/a", "-n", "1000", "-s", "64", "-q", "1", "-i", "4", NULL),
                 20000);
    assert_int_equal(wait_counter(&f->slot->in, 1000, 15000), 1000);
    assert_true(stats_get(&f->slot->extra[STATS_I_SPOOLED]) > 900);
    kill_wait(&f->ingress);
    assert_int_equal(start_ingress(f), 0);
    expect_exit0(mfpub_start(f, "-t", "t/a", "-n", "100", "-s", "64", "-q", "1", "-i", "5", NULL),
                 20000);
    expect_in_order2(f, 1000, 100);
    assert_true(file_has(f, "ingress.log", "waiting in the spool"));
}

static void test_ingress_retained_flag_kept(void **state)
{
    fixture *f = *state;
    /* a retained message is flagged only when a new subscription receives it: publish it,
     * drain the live copy, then start a fresh ingress that subscribes again */
    expect_exit0(mfpub_start(f, "-t", "t/a", "-n", "1", "-q", "1", "-R", "-m", "kept", NULL),
                 10000);
    rec_view v;
    assert_int_equal(next_record(f, &v, 5000), 0);
    assert_int_equal(v.h.retain, 0);
    ring_release(f->cons);
    term_ingress_exits_0(f, 5000);
    assert_int_equal(start_ingress(f), 0);
    assert_int_equal(next_record(f, &v, 5000), 0);
    assert_string_equal(v.topic, "t/a");
    assert_int_equal(v.h.retain, 1);
    assert_int_equal(v.h.qos, 1);
    assert_memory_equal(v.payload, "kept", 5);
    /* sequence numbers continue across the restart of the ingress */
    assert_int_equal(v.h.seq, 1);
}

static int setup_v5(void **state)
{
    setup_opts o = {.client_extra = "    mqtt_version: 5\n    clean_session: false\n",
                    .ring_cap = 1u << 20};
    return setup_opts_run(state, &o);
}

static void test_ingress_mqtt5_session_receives_in_order(void **state)
{
    fixture *f = *state;
    /* the broker saw an MQTT 5 client without clean start ("p5, c0") */
    assert_true(file_has(f, "mosquitto.log", "(p5, c0"));
    expect_exit0(mfpub_start(f, "-t", "t/a", "-n", "50", "-q", "1", "-i", "5", NULL), 10000);
    for (uint64_t i = 0; i < 50; i++) {
        rec_view v;
        assert_int_equal(next_record(f, &v, 5000), 0);
        testlib_hdr th;
        assert_int_equal(testlib_parse(v.payload, v.h.payload_len, &th), 0);
        assert_int_equal(th.seq, i);
        assert_int_equal(v.h.qos, 1);
    }
    /* reconnects with the session kept (session expiry set): the subscription survives a
     * restart of the ingress and what was published meanwhile is delivered */
    term_ingress_exits_0(f, 5000);
    expect_exit0(mfpub_start(f, "-t", "t/a", "-n", "10", "-q", "1", "-i", "6", NULL), 10000);
    assert_int_equal(start_ingress(f), 0);
    expect_records_of(f, 6, 10);
}

static int setup_ws(void **state)
{
    setup_opts o = {.websockets = 1, .ring_cap = 1u << 20};
    return setup_opts_run(state, &o);
}

static void test_ingress_websockets_url(void **state)
{
    fixture *f = *state;
    /* ready means connected and subscribed over ws://; messages published over TCP arrive */
    expect_exit0(mfpub_start(f, "-t", "t/a", "-n", "20", "-q", "1", "-i", "8", NULL), 10000);
    expect_records_of(f, 8, 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST_ST(test_ingress_records_match_published),
        TEST_ST(test_ingress_oversized_counted_not_written),
        TEST_ST(test_ingress_sigterm_exits_zero),
        cmocka_unit_test_setup_teardown(test_ingress_full_ring_blocks_without_loss,
                                        setup_small_block, teardown),
        cmocka_unit_test_setup_teardown(test_ingress_full_ring_drops_qos0, setup_small_drop,
                                        teardown),
        TEST_ST(test_ingress_reconnects_and_resubscribes),
        TEST_ST(test_ingress_sigterm_while_disconnected_exits_zero),
        cmocka_unit_test_setup_teardown(test_ingress_authenticates_with_username_password,
                                        setup_auth, teardown),
        cmocka_unit_test_setup_teardown(test_ingress_will_published_when_killed, setup_will,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ingress_shared_group_splits_messages, setup_shared,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ingress_full_ring_spools_and_keeps_connection,
                                        setup_clean_keepalive, teardown),
        cmocka_unit_test_setup_teardown(test_ingress_kill9_with_spooled_messages_loses_nothing,
                                        setup_clean_keepalive, teardown),
        cmocka_unit_test_setup_teardown(test_ingress_persistent_session_survives_keepalive_timeout,
                                        setup_persistent_block, teardown),
        TEST_ST(test_ingress_retained_flag_kept),
        cmocka_unit_test_setup_teardown(test_ingress_mqtt5_session_receives_in_order, setup_v5,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ingress_websockets_url, setup_ws, teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    if (getenv("MF_TEST_FILTER")) /* e.g. MF_TEST_FILTER='*full_ring*' */
        cmocka_set_test_filter(getenv("MF_TEST_FILTER"));
    return cmocka_run_group_tests_name("ingress", tests, NULL, NULL);
}
