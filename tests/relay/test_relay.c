/* test_relay: the real mqttflow-relay process against a real mosquitto.
 *
 * Each test starts a mosquitto on a free 127.0.0.1 port from a test-local config, creates the
 * instance's two worker output rings and the stats segment itself (as the supervisor would),
 * writes a YAML with two clients ("a-*" MQTT 3.1.1 and "b-*" MQTT 5, both on that broker), spawns
 * the relay with MQTTFLOW_READY_FD and waits for "ready", subscribes with paho to "t/#" at QoS 1,
 * then writes REC_PUBLISH records into the rings as the workers would. Every record has its own
 * payload (binary, with NULs); each topic is fed by one ring and one target connection, so the
 * order of arrival per topic must be the order of the ring. Binaries are found under $BUILD.
 */
#include "relay_fixture.h"
#include "ring_layout.h"
#include "tests/tools/ringfault.h"

#include <sys/stat.h>

/* ---- helpers ---- */

/* The test's subscriber f->s, client id "sub-INSTANCE", on filter (clean: as sub_open). */
static void own_sub_open(fixture *f, int clean, const char *filter)
{
    char id[80];
    snprintf(id, sizeof(id), "sub-%s", f->instance);
    assert_int_equal(sub_open(&f->s, f->port, id, clean, filter), 0);
}

/* own_sub_open, then the relay started (ready). */
static void own_sub_and_relay(fixture *f, int clean, const char *filter)
{
    own_sub_open(f, clean, filter);
    assert_int_equal(start_relay(f), 0);
}

/* SIGTERM to the relay, which must exit with status 0 within timeout_ms. */
static void term_relay_exits_0(fixture *f, int timeout_ms)
{
    assert_int_equal(kill(f->relay, SIGTERM), 0);
    int st = wait_exit(f->relay, timeout_ms);
    assert_int_not_equal(st, -1);
    f->relay = 0;
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* ---- tests ---- */

static void test_relay_publishes_in_order_and_releases(void **state)
{
    fixture *f = *state;
    own_sub_and_relay(f, 1, "t/#");
    /* both targets up, in the stats bitmask */
    uint64_t end = clock_mono_ns() + 5000000000ull;
    while (stats_get(&f->slot->connected) != 3 && clock_mono_ns() < end)
        sleep_ms(5);
    assert_int_equal(stats_get(&f->slot->connected), 3);

    const size_t n = 2000;
    push_mix(f, n, 1);
    /* one retained record at the end of ring 1 */
    const char *ret_payload = "retained payload";
    push_rec(f, 1, 0, "t/ret", (const unsigned char *)ret_payload, strlen(ret_payload), 1, 1);
    ring_flush(f->prod[1]);

    size_t total = n * N_RINGS + 1;
    assert_int_equal(sub_wait_count(&f->s, total, 30000), total);
    assert_int_equal(check_delivery(f), 0);
    assert_int_equal(wait_released(f, 5000), 0);
    end = clock_mono_ns() + 5000000000ull;
    while (stats_get(&f->slot->out) < total && clock_mono_ns() < end)
        sleep_ms(5);
    assert_int_equal(stats_get(&f->slot->in), total);
    assert_int_equal(stats_get(&f->slot->out), total);
    assert_int_equal(stats_get(&f->slot->errors), 0);
    assert_true(stats_get(&f->slot->heartbeat_ns) > 0);

    /* nothing more than the records arrived (no duplicates on a healthy broker) */
    sleep_ms(200);
    assert_int_equal(sub_count(&f->s), total);

    /* the retained flag went through: a new subscriber gets the message as retained */
    sub late;
    char id[80];
    snprintf(id, sizeof(id), "late-%s", f->instance);
    assert_int_equal(sub_open(&late, f->port, id, 1, "t/ret"), 0);
    assert_int_equal(sub_wait_count(&late, 1, 5000), 1);
    pthread_mutex_lock(&late.mu);
    assert_int_equal(late.items[0].retained, 1);
    assert_int_equal(late.items[0].len, (int)strlen(ret_payload));
    assert_memory_equal(late.items[0].payload, ret_payload, strlen(ret_payload));
    pthread_mutex_unlock(&late.mu);
    sub_close(&late);

    term_relay_exits_0(f, 10000);
}

static void test_relay_spools_while_broker_down(void **state)
{
    fixture *f = *state;
    /* a persistent session subscribed before the broker goes down: what the relay publishes
     * after the restart is kept for it, whoever reconnects first */
    own_sub_open(f, 0, "t/#");
    assert_int_equal(stop_broker(f), 0);

    /* the relay gets ready although no target can be reached */
    assert_int_equal(start_relay(f), 0);
    assert_int_equal(stats_get(&f->slot->connected), 0);

    /* QoS 1 only: a broker keeps no QoS 0 message for a subscriber that is offline, and the
     * subscriber here may reconnect after the relay published */
    const size_t n = 500;
    push_mix(f, n, 0);
    /* every record goes to its target's spool, and the rings are released once it is there */
    size_t total = n * N_RINGS;
    if (wait_released(f, 20000) != 0)
        dump_state(f, "spooling");
    assert_int_equal(wait_released(f, 0), 0);
    assert_int_equal(wait_spooled(f, total, 5000), 0);
    assert_int_equal(stats_get(&f->slot->out), 0);
    assert_int_equal(kill(f->relay, 0), 0); /* still running */

    assert_int_equal(start_broker(f), 0);
    if (sub_wait_count(&f->s, total, 30000) != total)
        dump_state(f, "after the broker restart");
    assert_int_equal(sub_count(&f->s), total);
    assert_int_equal(check_delivery(f), 0);
    assert_int_equal(wait_spooled(f, 0, 5000), 0);
    uint64_t end = clock_mono_ns() + 5000000000ull;
    while (stats_get(&f->slot->connected) != 3 && clock_mono_ns() < end)
        sleep_ms(5);
    assert_int_equal(stats_get(&f->slot->connected), 3);
}

static void test_relay_sigterm_publishes_ring_before_exit(void **state)
{
    fixture *f = *state;
    own_sub_and_relay(f, 1, "t/#");

    const size_t n = 3000;
    push_mix(f, n, 1);
    /* at once: most records are still in the rings when the signal arrives */
    term_relay_exits_0(f, 15000);

    /* everything was published and released before the exit */
    for (int i = 0; i < N_RINGS; i++) {
        ring_stats rs;
        ring_get_stats(f->owner[i], &rs);
        assert_int_equal(rs.tail, rs.head);
    }
    size_t total = n * N_RINGS;
    assert_int_equal(stats_get(&f->slot->out), total);
    assert_int_equal(sub_wait_count(&f->s, total, 10000), total);
    assert_int_equal(check_delivery(f), 0);
}

static void test_relay_broker_restart_midstream_loses_nothing(void **state)
{
    fixture *f = *state;
    own_sub_and_relay(f, 0, "t/#");

    const size_t n = 4000;
    push_mix(f, n, 1);
    /* restart the broker while the relay is in the middle of the stream */
    uint64_t end = clock_mono_ns() + 10000000000ull;
    while (stats_get(&f->slot->out) < 200 && clock_mono_ns() < end)
        sleep_ms(1);
    assert_true(stats_get(&f->slot->out) >= 200);
    assert_int_equal(stop_broker(f), 0);
    assert_int_equal(start_broker(f), 0);

    if (wait_released(f, 30000) != 0)
        dump_state(f, "after the broker restart");
    assert_int_equal(wait_released(f, 0), 0);
    /* at-least-once: every record arrives; a record in flight at the restart may arrive twice
     * (QoS 0 ones may be lost with the broker: they are not counted here) */
    size_t wrong = 0;
    assert_int_equal(wait_missing_zero(f, 1, &wrong, 20000), 0);
    assert_int_equal(wrong, 0);
}

static void test_relay_sigkill_restart_loses_nothing(void **state)
{
    fixture *f = *state;
    own_sub_and_relay(f, 1, "t/#");

    const size_t n = 4000;
    push_mix(f, n, 1);
    /* kill the relay 5 times in the middle of the stream: whatever it had not released is in
     * the rings, and the next relay publishes it */
    const int kills = 5;
    for (int k = 0; k < kills; k++) {
        uint64_t end = clock_mono_ns() + 10000000000ull;
        size_t have = sub_count(&f->s);
        while (sub_count(&f->s) < have + 300 && clock_mono_ns() < end)
            sleep_ms(1);
        assert_true(sub_count(&f->s) >= have + 300);
        kill_wait(&f->relay);
        assert_int_equal(start_relay(f), 0);
    }

    if (wait_released(f, 30000) != 0)
        dump_state(f, "after the relay restarts");
    assert_int_equal(wait_released(f, 0), 0);
    /* every QoS 1 record arrives at least once (QoS 0 ones are released once written to the
     * socket, and a killed process's socket may be reset with unsent bytes in it: at most
     * once is all QoS 0 promises, so they are not counted). In order: the first arrivals of
     * each topic come in ring order. Duplicates: only what was not released when the relay
     * died, at most the outstanding bound (256) plus one turn's completions per kill. */
    size_t dups, wrong, reordered;
    assert_int_equal(wait_missing_zero(f, 1, &wrong, 20000), 0);
    assert_int_equal(wrong, 0);
    (void)missing_on(f, &f->s, -1, &dups, &wrong, &reordered);
    fprintf(stderr, "%d kills: %zu duplicates, %zu reordered\n", kills, dups, reordered);
    assert_int_equal(reordered, 0);
    assert_true(dups <= (size_t)kills * 512);
}

static void test_relay_sigterm_with_target_down_spools_then_next_relay_delivers(void **state)
{
    fixture *f = *state;
    /* no broker at all: the relay starts, spools everything, and a SIGTERM ends it with exit 0
     * and every record in the spools (the rings released: a clean stop that unlinks them loses
     * nothing) */
    assert_int_equal(start_relay(f), 0);
    const size_t n = 300;
    size_t total = n * N_RINGS;
    push_mix(f, n, 1);
    if (wait_released(f, 20000) != 0)
        dump_state(f, "spooling");
    assert_int_equal(wait_released(f, 0), 0);
    assert_int_equal(wait_spooled(f, total, 5000), 0);
    uint64_t t0 = clock_mono_ns();
    term_relay_exits_0(f, 15000);
    assert_true(clock_mono_ns() - t0 < 10000000000ull);
    assert_int_equal(stats_get(&f->slot->out), 0);
    assert_int_equal(stats_get(&f->slot->connected), 0);

    /* the broker and a new relay: the spools are recovered and published, in order */
    assert_int_equal(start_broker(f), 0);
    own_sub_open(f, 1, "t/#");
    stats_set(&f->slot->out, 0);
    assert_int_equal(start_relay(f), 0);
    if (sub_wait_count(&f->s, total, 20000) != total)
        dump_state(f, "after the new relay");
    assert_int_equal(sub_count(&f->s), total);
    assert_int_equal(check_delivery(f), 0);
    assert_int_equal(wait_spooled(f, 0, 5000), 0);
    assert_int_equal(stats_get(&f->slot->out), total);
}

static void test_relay_skips_record_that_killed_it_max_attempts_times(void **state)
{
    fixture *f = *state;
    own_sub_open(f, 1, "t/#");

    unsigned char pl[MAX_PAYLOAD];
    size_t len = make_payload(pl, 0, 0);
    push_rec(f, 0, 0, "t/poison", pl, len, 1, 0);
    f->n_pushed--; /* not expected to arrive: the next push takes its place in the list */
    len = make_payload(pl, 0, 1);
    /* one topic per target: MQTT orders messages per connection, not across two */
    push_rec(f, 0, 0, "t/good/a", pl, len, 1, 0);
    ring_flush(f->prod[0]);
    /* three consumers "die" while running the first record (begun, never ended), as three
     * relays would that crashed on it (runtime.max_attempts defaults to 3) */
    for (unsigned i = 1; i <= 3; i++) {
        ring *c = NULL;
        const void *buf;
        size_t n;
        assert_int_equal(ring_attach(f->ring_name[0], RING_CONSUMER, &c), 0);
        assert_int_equal(ring_peek(c, &buf, &n), 0);
        assert_int_equal(ring_begin(c), i);
        ring_detach(c);
    }

    assert_int_equal(start_relay(f), 0);
    assert_int_equal(sub_wait_count(&f->s, 1, 10000), 1);
    assert_int_equal(wait_released_ring(f, 0, 5000), 0);
    assert_int_equal(check_delivery(f), 0);
    assert_int_equal(stats_get(&f->slot->dead), 1);
    assert_int_equal(stats_get(&f->slot->out), 1);
    sleep_ms(200);
    assert_int_equal(sub_count(&f->s), 1); /* the poison record was not published */
}

/* Writes raw bytes as one ring record (not remembered as an expected delivery). */
static void push_raw(fixture *f, int ri, const void *data, size_t len)
{
    int rc;
    while ((rc = ring_push(f->prod[ri], data, len)) == -EAGAIN)
        assert_int_not_equal(ring_wait_space(f->prod[ri], len, 10000), -ETIMEDOUT);
    assert_int_equal(rc, 0);
}

/* Encodes a record that is not to be delivered. */
static void push_bad(fixture *f, int ri, uint8_t kind, uint16_t client, const char *topic)
{
    unsigned char buf[256];
    rec_hdr h = publish_hdr(client, 1, 0, 0);
    h.kind = kind;
    long n = rec_encode(buf, sizeof(buf), &h, topic, strlen(topic), "x", 1);
    assert_true(n > 0);
    push_raw(f, ri, buf, (size_t)n);
}

static void test_relay_skips_unpublishable_records(void **state)
{
    fixture *f = *state;
    own_sub_and_relay(f, 1, "#");

    unsigned char pl[MAX_PAYLOAD];
    size_t len = make_payload(pl, 0, 0);
    push_rec(f, 0, 0, "t/good", pl, len, 1, 0);
    push_bad(f, 0, REC_PUBLISH, 7, "t/unknown-client"); /* no client 7 */
    push_bad(f, 0, REC_PUBLISH, 0, "t/+/wildcard");     /* not a topic name: dead-lettered */
    push_bad(f, 0, REC_MSG, 0, "t/msg");                /* not for the relay */
    push_bad(f, 0, REC_DEAD, 0, "t/dead");              /* dead letter: counted */
    unsigned char junk[64];
    memset(junk, 0xa5, sizeof(junk));
    push_raw(f, 0, junk, sizeof(junk)); /* not a record at all */
    len = make_payload(pl, 0, 1);
    push_rec(f, 0, 1, "t/good/b", pl, len, 1, 0);
    ring_flush(f->prod[0]);

    assert_int_equal(sub_wait_count(&f->s, 2, 10000), 2);
    assert_int_equal(wait_released_ring(f, 0, 5000), 0);
    assert_int_equal(check_delivery(f), 0);
    assert_int_equal(stats_get(&f->slot->in), 7);
    assert_int_equal(stats_get(&f->slot->out), 2);
    assert_int_equal(stats_get(&f->slot->errors), 4);
    /* the REC_DEAD record, the invalid topic, the junk, the unknown client and the REC_MSG
     * (issue 8: every drop is a dead letter) */
    assert_int_equal(stats_get(&f->slot->extra[STATS_RL_DEAD_IN]), 5);
    /* nothing else went out (the bad records were not published) */
    sleep_ms(200);
    assert_int_equal(sub_count(&f->s), 2);
}

/* Writes a record into ring 0 whose ring header claims an impossible length. */
static void plant_corrupt(fixture *f)
{
    plant_corrupt_header(f->prod[0], 0x5a);
    ring_flush(f->prod[0]);
}

/* issue 8 item 4: a corrupt record header in a worker's output ring: the damaged region is
 * dead-lettered and released, and the records the worker writes next are published (the
 * ring was left alone for good before, while status said running) */
static void test_relay_corrupt_ring_region_quarantined(void **state)
{
    fixture *f = *state;
    own_sub_and_relay(f, 1, "#");
    plant_corrupt(f);
    uint64_t end = clock_mono_ns() + 10000000000ull;
    while (stats_get(&f->slot->dead) < 1 && clock_mono_ns() < end)
        sleep_ms(10);
    assert_int_equal(stats_get(&f->slot->dead), 1);
    unsigned char pl[MAX_PAYLOAD];
    size_t len = make_payload(pl, 0, 0);
    push_rec(f, 0, 0, "t/after", pl, len, 1, 0);
    ring_flush(f->prod[0]);
    assert_int_equal(sub_wait_count(&f->s, 1, 10000), 1);
    assert_int_equal(wait_released_ring(f, 0, 5000), 0);
    char path[256];
    snprintf(path, sizeof(path), "%s/dead/dead-letters.jsonl", f->dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_size > 0);
}

/* Waits up to 10 s for counter c to reach want. */
static void wait_stat(uint64_t *c, uint64_t want, const char *what)
{
    uint64_t end = clock_mono_ns() + 10000000000ull;
    while (stats_get(c) < want && clock_mono_ns() < end)
        sleep_ms(10);
    if (stats_get(c) < want)
        fail_msg("%s is %llu, expected %llu", what, (unsigned long long)stats_get(c),
                 (unsigned long long)want);
}

/* issue 8: while the dead-letter store cannot take a damaged region (its folder is a file
 * here), the region and what follows it stay in the ring and the store is tried again
 * (backing off); once it works the region is dead-lettered and the ring read on (the relay
 * stopped reading that ring for the rest of its run before) */
static void test_relay_corrupt_region_kept_while_store_fails(void **state)
{
    fixture *f = *state;
    char id[80], path[256];
    snprintf(id, sizeof(id), "sub-%s", f->instance);
    assert_int_equal(sub_open(&f->s, f->port, id, 1, "#"), 0);
    assert_int_equal(start_relay(f), 0);
    snprintf(path, sizeof(path), "%s/dead", f->dir);
    rmdir(path);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("not a folder", fp);
    fclose(fp);
    plant_corrupt(f);
    wait_stat(&f->slot->errors, 2, "errors"); /* the damage and a failed store */
    unsigned char pl[MAX_PAYLOAD];
    size_t len = make_payload(pl, 0, 0);
    push_rec(f, 0, 0, "t/behind", pl, len, 1, 0);
    ring_flush(f->prod[0]);
    wait_stat(&f->slot->errors, 4, "errors"); /* tried again, after the push too */
    assert_int_equal(stats_get(&f->slot->dead), 0);
    assert_int_equal(sub_count(&f->s), 0); /* what follows the region waits for it */
    assert_int_equal(unlink(path), 0);     /* the store works again */
    wait_stat(&f->slot->dead, 1, "dead");
    assert_int_equal(sub_wait_count(&f->s, 1, 10000), 1);
    assert_int_equal(wait_released_ring(f, 0, 5000), 0);
    snprintf(path, sizeof(path), "%s/dead/dead-letters.jsonl", f->dir);
    char text[8192];
    fp = fopen(path, "r");
    assert_non_null(fp);
    size_t nread = fread(text, 1, sizeof(text) - 1, fp);
    text[nread] = '\0';
    fclose(fp);
    assert_non_null(strstr(text, "\"reason\":\"corrupt ring: "));
}

/* issue 8 item 3: a record that does not decode is a dead letter with the decode error, its
 * length and its bytes, whether the relay finds it in a worker's output ring or a worker
 * found it in its input ring (a REC_DEAD record of reason REC_DEAD_UNDECODABLE); it was only
 * counted and logged */
static void test_relay_undecodable_records_are_dead_lettered(void **state)
{
    fixture *f = *state;
    own_sub_and_relay(f, 1, "t/#");
    unsigned char junk[64];
    memset(junk, 0xa5, sizeof(junk));
    push_raw(f, 0, junk, sizeof(junk)); /* lengths that disagree with the record's size */
    /* what a worker hands on for a record of its input ring that did not decode */
    unsigned char buf[256];
    rec_hdr h;
    memset(&h, 0, sizeof(h));
    h.kind = REC_DEAD;
    h.aux = REC_DEAD_AUX(REC_DEAD_UNDECODABLE, REC_BAD_FIELDS);
    h.seq = 80;
    h.client = REC_NONE;
    h.rule = REC_NONE;
    h.step = REC_NONE;
    h.src_client = REC_NONE;
    const char *topic = "$mqttflow/undecodable-record";
    long n = rec_encode(buf, sizeof(buf), &h, topic, strlen(topic), "first-bytes", 11);
    assert_true(n > 0);
    push_raw(f, 1, buf, (size_t)n);
    /* records that decode but cannot be delivered: no target client 7, a kind the relay
     * does not take, and what a worker hands on for a rule it does not have */
    push_bad(f, 0, REC_PUBLISH, 7, "t/unknown-client");
    push_bad(f, 0, REC_MSG, 0, "t/msg");
    h.aux = REC_DEAD_AUX(REC_DEAD_MISPLACED, REC_MISPLACED_RULE);
    h.seq = REC_MISPLACED_SEQ(90, 42);
    n = rec_encode(buf, sizeof(buf), &h, topic, strlen(topic), "rule-bytes", 10);
    assert_true(n > 0);
    push_raw(f, 1, buf, (size_t)n);
    unsigned char pl[MAX_PAYLOAD];
    size_t len = make_payload(pl, 0, 0);
    push_rec(f, 0, 0, "t/after", pl, len, 1, 0);
    ring_flush(f->prod[0]);
    ring_flush(f->prod[1]);
    assert_int_equal(sub_wait_count(&f->s, 1, 10000), 1);
    assert_int_equal(wait_released(f, 10000), 0);
    char path[256], text[8192];
    snprintf(path, sizeof(path), "%s/dead/dead-letters.jsonl", f->dir);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    size_t nread = fread(text, 1, sizeof(text) - 1, fp);
    text[nread] = '\0';
    fclose(fp);
    assert_non_null(strstr(text, "\"reason\":\"undecodable record: 64 bytes"));
    assert_non_null(strstr(text, "topic and payload lengths disagree with the record's size"));
    assert_non_null(strstr(text, "\"payload_b64\":\"paWlpaWl"));
    assert_non_null(strstr(text, "\"reason\":\"undecodable record: 80 bytes"));
    assert_non_null(strstr(text, "kind, qos or retain out of range"));
    assert_non_null(strstr(text, "\"payload\":\"first-bytes\""));
    assert_non_null(strstr(text, "\"reason\":\"unknown target client 7: a record of"));
    assert_non_null(strstr(text, "\"reason\":\"record of kind 1 in worker 0's output ring"));
    assert_non_null(strstr(text, "\"reason\":\"unknown rule 42: a record of 90 bytes in worker "
                                 "1's input ring"));
    assert_non_null(strstr(text, "\"payload\":\"rule-bytes\""));
    /* the relay's own drops (the worker counted its own) */
    assert_int_equal(stats_get(&f->slot->dead), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_relay_publishes_in_order_and_releases, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_relay_corrupt_ring_region_quarantined, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_relay_spools_while_broker_down, setup_persistent,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_relay_sigterm_publishes_ring_before_exit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_relay_broker_restart_midstream_loses_nothing,
                                        setup_persistent, teardown),
        cmocka_unit_test_setup_teardown(test_relay_sigkill_restart_loses_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relay_skips_unpublishable_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relay_corrupt_region_kept_while_store_fails, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_relay_undecodable_records_are_dead_lettered, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_relay_skips_record_that_killed_it_max_attempts_times,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_relay_sigterm_with_target_down_spools_then_next_relay_delivers, setup_no_broker,
            teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
