/* test_relay_spool: the relay's store-and-forward and dead-letter store, with the real
 * mqttflow-relay process against real mosquittos (harness: relay_fixture.h).
 *
 * Two-broker tests: client "a" on broker 0, client "b" on broker 1; push_mix sends ring 0's
 * records alternately to a and b and ring 1's to b, so with broker 1 down, a's records must
 * keep flowing past b's (spooled) ones, and b's must arrive in ring order per topic once
 * broker 1 is back. Broker 1 is persistent and its subscriber a persistent session, so what
 * the relay publishes right after the restart is kept for it.
 */
#include "relay_fixture.h"

#include <dirent.h>
#include <jansson.h>
#include <limits.h>

#include "spool.h"

/* Records pushed for client. */
static size_t pushed_for(fixture *f, int client)
{
    size_t n = 0;
    for (size_t i = 0; i < f->n_pushed; i++)
        n += f->pushed[i].client == client;
    return n;
}

/* Files directly in dir (not counting subfolders), or -1 when dir cannot be read. */
static int count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name), sl = strlen(suffix);
        if (e->d_type == DT_REG && l >= sl && strcmp(e->d_name + l - sl, suffix) == 0)
            n++;
    }
    closedir(d);
    return n;
}

static void spool_dir_of(fixture *f, const char *client, char *out, size_t cap)
{
    snprintf(out, cap, "%s/spool/%s-%s", f->dir, client, f->instance);
}

/* Opens subscriber s on broker 0 and s2 (persistent session) on broker 1, both "t/#". */
static void open_subs(fixture *f)
{
    char id[80];
    snprintf(id, sizeof(id), "sub-%s", f->instance);
    assert_int_equal(sub_open(&f->s, f->port, id, 1, "t/#"), 0);
    snprintf(id, sizeof(id), "sub2-%s", f->instance);
    assert_int_equal(sub_open(&f->s2, f->port_b, id, 0, "t/#"), 0);
}

static int log_has(fixture *f, const char *text)
{
    char path[256], line[1024];
    snprintf(path, sizeof(path), "%s/relay.log", f->dir);
    FILE *l = fopen(path, "r");
    int found = 0;
    while (l && !found && fgets(line, sizeof(line), l))
        found = strstr(line, text) != NULL;
    if (l)
        fclose(l);
    return found;
}

static void test_relay_spool_down_target_spooled_up_target_flows(void **state)
{
    fixture *f = *state;
    open_subs(f);
    assert_int_equal(stop_broker_at(f, 1), 0);
    assert_int_equal(start_relay(f), 0);

    const size_t n = 1000;
    push_mix(f, n, 0);
    size_t n_a = pushed_for(f, 0), n_b = pushed_for(f, 1);
    assert_int_equal(n_a + n_b, n * N_RINGS);
    /* a's records get out while b is down: no head-of-line blocking behind b's */
    if (sub_wait_count(&f->s, n_a, 20000) != n_a)
        dump_state(f, "broker 1 down");
    assert_int_equal(sub_count(&f->s), n_a);
    assert_int_equal(check_delivery_on(f, &f->s, 0), 0);
    /* b's are in b's spool, durable, and the rings are released */
    assert_int_equal(wait_released(f, 20000), 0);
    assert_int_equal(wait_spooled(f, n_b, 5000), 0);
    char dir[300];
    spool_dir_of(f, "b", dir, sizeof(dir));
    assert_true(count_files(dir, ".seg") >= 1);
    assert_int_equal(stats_get(&f->slot->out), n_a);

    /* broker 1 back: b's records arrive, each topic in ring order, nothing lost */
    assert_int_equal(start_broker_at(f, 1), 0);
    size_t dups, wrong, reordered;
    assert_int_equal(wait_missing_on(f, &f->s2, 1, 30000, &dups, &wrong, &reordered), 0);
    assert_int_equal(wrong, 0);
    assert_int_equal(reordered, 0);
    assert_int_equal(dups, 0); /* no crash, no lost connection: exactly once */
    assert_int_equal(check_delivery_on(f, &f->s2, 1), 0);
    assert_int_equal(wait_spooled(f, 0, 5000), 0);

    /* drained: b's new records go straight out again */
    uint64_t out0 = stats_get(&f->slot->out);
    push_mix_range(f, n, 10, 0);
    assert_int_equal(wait_missing_on(f, &f->s2, 1, 10000, &dups, &wrong, &reordered), 0);
    assert_int_equal(reordered, 0);
    assert_int_equal(wait_missing_on(f, &f->s, 0, 10000, &dups, &wrong, &reordered), 0);
    assert_int_equal(stats_get(&f->slot->extra[STATS_RL_SPOOL_NOW]), 0);
    uint64_t end = clock_mono_ns() + 5000000000ull;
    while (stats_get(&f->slot->out) < out0 + 20 && clock_mono_ns() < end)
        sleep_ms(5);
    assert_int_equal(stats_get(&f->slot->out), out0 + 20);
}

static void test_relay_spool_sigkill_while_spooling_and_draining_loses_nothing(void **state)
{
    fixture *f = *state;
    open_subs(f);
    assert_int_equal(stop_broker_at(f, 1), 0);
    assert_int_equal(start_relay(f), 0);

    /* 10 rounds: push a chunk, kill -9 the relay while it appends to b's spool, restart */
    const size_t chunk = 300;
    size_t next = 0;
    for (int k = 0; k < 10; k++) {
        uint64_t before = stats_get(&f->slot->extra[STATS_RL_SPOOL_NOW]);
        push_mix_range(f, next, chunk, 0);
        next += chunk;
        uint64_t end = clock_mono_ns() + 5000000000ull;
        /* kill once it has spooled something of this chunk, at a varying point */
        while (stats_get(&f->slot->extra[STATS_RL_SPOOL_NOW]) <= before && clock_mono_ns() < end)
            sleep_ms(1);
        sleep_ms(k % 4);
        kill_wait(&f->relay);
        assert_int_equal(start_relay(f), 0);
    }
    assert_int_equal(wait_released(f, 20000), 0);
    char dir[300];
    spool_dir_of(f, "b", dir, sizeof(dir));
    assert_true(count_files(dir, ".seg") >= 1);

    /* broker 1 back; 3 more kills while the spool drains */
    assert_int_equal(start_broker_at(f, 1), 0);
    for (int k = 0; k < 3; k++) {
        uint64_t end = clock_mono_ns() + 10000000000ull;
        size_t have = sub_count(&f->s2);
        while (sub_count(&f->s2) < have + 100 && clock_mono_ns() < end)
            sleep_ms(1);
        kill_wait(&f->relay);
        assert_int_equal(start_relay(f), 0);
    }
    size_t dups, wrong, reordered;
    size_t missing = wait_missing_on(f, &f->s2, 1, 40000, &dups, &wrong, &reordered);
    if (missing)
        dump_state(f, "after the kills");
    fprintf(stderr, "b: %zu records, %zu duplicates after 13 kills\n", pushed_for(f, 1), dups);
    assert_int_equal(missing, 0);
    /* duplicates per kill: while spooling, one append batch (SFWD_QUEUE_MAX) plus b's records
     * spooled behind a's unacknowledged ones in ring 0 (at most the outstanding bound);
     * while draining, one drain batch */
    assert_true(dups <= 10 * (256 + 256) + 3 * 128);
    assert_int_equal(wrong, 0);
    /* a's records: at least once too */
    assert_int_equal(wait_missing_on(f, &f->s, 0, 10000, &dups, &wrong, &reordered), 0);
    assert_int_equal(wrong, 0);
    assert_int_equal(wait_spooled(f, 0, 10000), 0);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    if (len)
        assert_int_equal(fwrite(data, 1, len, fp), len);
    fclose(fp);
}

static void test_relay_spool_garbage_files_quarantined_at_start(void **state)
{
    fixture *f = *state;
    char dir[300], path[400];
    /* b's spool holds a garbage segment, an empty one and a garbage checkpoint */
    snprintf(path, sizeof(path), "%s/spool", f->dir);
    assert_int_equal(mkdir(path, 0700), 0);
    spool_dir_of(f, "b", dir, sizeof(dir));
    assert_int_equal(mkdir(dir, 0700), 0);
    unsigned char junk[500];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (unsigned char)(i * 37 + 11);
    snprintf(path, sizeof(path), "%s/0000000000000001.seg", dir);
    write_file(path, junk, sizeof(junk));
    snprintf(path, sizeof(path), "%s/0000000000000100.seg", dir);
    write_file(path, NULL, 0);
    snprintf(path, sizeof(path), "%s/checkpoint", dir);
    write_file(path, junk, 7);

    char id[80];
    snprintf(id, sizeof(id), "sub-%s", f->instance);
    assert_int_equal(sub_open(&f->s, f->port, id, 1, "t/#"), 0);
    assert_int_equal(start_relay(f), 0);
    /* moved aside, reported; the relay runs and delivers */
    snprintf(path, sizeof(path), "%s/quarantine", dir);
    assert_true(count_files(path, "") >= 2);
    assert_int_equal(count_files(dir, ".seg"), 0);
    assert_true(log_has(f, "quarantine"));
    push_mix(f, 200, 1);
    size_t total = 200 * N_RINGS;
    assert_int_equal(sub_wait_count(&f->s, total, 20000), total);
    assert_int_equal(check_delivery(f), 0);
    assert_int_equal(wait_released(f, 5000), 0);
    assert_int_equal(kill(f->relay, 0), 0);
    assert_int_equal(stats_get(&f->slot->extra[STATS_RL_SPOOL_NOW]), 0);
}

static void test_relay_spool_cap_keeps_records_in_ring(void **state)
{
    fixture *f = *state;
    char id[80];
    snprintf(id, sizeof(id), "sub-%s", f->instance);
    assert_int_equal(sub_open(&f->s, f->port, id, 0, "t/#"), 0);
    assert_int_equal(stop_broker(f), 0);
    /* 64 KiB per target spool: room for ~170 of these records */
    snprintf(f->extra_runtime, sizeof(f->extra_runtime), "  spool_max_bytes: 65536\n");
    assert_int_equal(write_yaml(f), 0);
    assert_int_equal(start_relay(f), 0);

    const size_t n = 600;
    size_t total = n * N_RINGS;
    push_mix(f, n, 0);
    /* the spools fill up, the rest waits in the rings (backpressure), nothing dropped */
    uint64_t end = clock_mono_ns() + 10000000000ull;
    while (!log_has(f, "is full") && clock_mono_ns() < end)
        sleep_ms(20);
    assert_true(log_has(f, "is full"));
    sleep_ms(300); /* a few refused retries */
    uint64_t spooled = stats_get(&f->slot->extra[STATS_RL_SPOOL_NOW]);
    assert_true(spooled > 0);
    assert_true(spooled < total);
    assert_int_equal(wait_released(f, 0), -1);
    assert_int_equal(kill(f->relay, 0), 0);

    /* the broker back: the spools drain, make room, and everything arrives in order */
    assert_int_equal(start_broker(f), 0);
    if (sub_wait_count(&f->s, total, 40000) != total)
        dump_state(f, "after the broker restart");
    assert_int_equal(sub_count(&f->s), total);
    assert_int_equal(check_delivery(f), 0);
    assert_int_equal(wait_released(f, 5000), 0);
    assert_int_equal(wait_spooled(f, 0, 5000), 0);
}

/* Appends a REC_PUBLISH for client to spool sp and remembers it as pushed (expected first). */
static void spool_rec(fixture *f, spool *sp, uint16_t client, const char *topic, size_t i)
{
    unsigned char pl[MAX_PAYLOAD], buf[MAX_PAYLOAD + 128];
    size_t len = make_payload(pl, 0, i);
    rec_hdr h = publish_hdr(client, 1, 0, 0);
    long n = rec_encode(buf, sizeof(buf), &h, topic, strlen(topic), pl, len);
    assert_true(n > 0);
    assert_int_equal(spool_append(sp, buf, (size_t)n), 0);
    if (f->n_pushed == f->cap_pushed) {
        f->cap_pushed = f->cap_pushed ? f->cap_pushed * 2 : 1024;
        f->pushed = realloc(f->pushed, f->cap_pushed * sizeof(*f->pushed));
        assert_non_null(f->pushed);
    }
    struct pushed *p = &f->pushed[f->n_pushed++];
    memset(p, 0, sizeof(*p));
    p->ring = 0;
    p->client = client;
    snprintf(p->topic, sizeof(p->topic), "%s", topic);
    memcpy(p->payload, pl, len);
    p->len = len;
    p->qos = 1;
}

static void test_relay_spool_left_records_go_before_new_ones(void **state)
{
    fixture *f = *state;
    char dir[300], id[80];
    spool_dir_of(f, "b", dir, sizeof(dir));
    /* a spool a previous relay left for b: 50 records */
    spool *sp = NULL;
    assert_int_equal(spool_open(dir, NULL, &sp), 0);
    for (size_t i = 0; i < 50; i++)
        spool_rec(f, sp, 1, "t/b", i);
    snprintf(id, sizeof(id), "sub-%s", f->instance);
    assert_int_equal(sub_open(&f->s, f->port, id, 1, "t/#"), 0);
    /* still locked (a relay that has not finished exiting): the new relay cannot open it at
     * start, and b's new records must not overtake the spooled ones meanwhile */
    assert_int_equal(start_relay(f), 0);
    unsigned char pl[MAX_PAYLOAD];
    for (size_t i = 50; i < 100; i++) {
        size_t len = make_payload(pl, 0, i);
        push_rec(f, 0, 1, "t/b", pl, len, 1, 0);
    }
    ring_flush(f->prod[0]);
    sleep_ms(300); /* the relay's turn to (wrongly) publish them, if it would */
    assert_int_equal(sub_count(&f->s), 0);
    spool_close(sp);

    assert_int_equal(sub_wait_count(&f->s, 100, 20000), 100);
    assert_int_equal(check_delivery(f), 0);
    assert_int_equal(wait_released(f, 5000), -1); /* ring 1 never got a record */
    assert_int_equal(wait_released_ring(f, 0, 5000), 0);
    assert_int_equal(wait_spooled(f, 0, 5000), 0);
    assert_true(log_has(f, "cannot be opened")); /* at start: still locked */
    assert_true(log_has(f, "recovered 50 records"));
}

/* ---- dead letters ---- */

static void push_dead(fixture *f, uint16_t rule, uint16_t aux, uint32_t src, const char *topic,
                      const void *payload, size_t len, int qos)
{
    unsigned char buf[512];
    rec_hdr h;
    memset(&h, 0, sizeof(h));
    h.kind = REC_DEAD;
    h.client = (uint16_t)src;
    h.src_client = src;
    h.rule = rule;
    h.step = REC_NONE;
    h.aux = aux;
    h.qos = (uint8_t)qos;
    long n = rec_encode(buf, sizeof(buf), &h, topic, strlen(topic), payload, len);
    assert_true(n > 0);
    int rc;
    while ((rc = ring_push(f->prod[0], buf, (size_t)n)) == -EAGAIN)
        assert_int_not_equal(ring_wait_space(f->prod[0], (size_t)n, 10000), -ETIMEDOUT);
    assert_int_equal(rc, 0);
}

static const char *jstr(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static void test_relay_dead_letters_stored_and_published(void **state)
{
    fixture *f = *state;
    char rp[PATH_MAX], bd[300];
    assert_non_null(realpath(build_dir(), rp));
    assert_true(strlen(rp) < sizeof(bd));
    snprintf(bd, sizeof(bd), "%.299s", rp);
    snprintf(f->extra_top, sizeof(f->extra_top),
             "callbacks:\n"
             "  cb1: {module: \"%s/tests/callbacks/echo.so\", function: \"echo\"}\n"
             "  cb2: {module: \"%s/tests/callbacks/echo.so\", function: \"fail\"}\n"
             "rules:\n"
             "  - {rule: \"r-one\", topic: \"in/#\", callback: \"cb1\"}\n"
             "  - {rule: \"r-chain\", topic: \"in/#\", action: \"ch\"}\n"
             "processing_chains:\n"
             "  ch:\n"
             "    - {step: \"custom_processor\", config: {callback: \"cb2\", topic: \"o\"}}\n",
             bd, bd);
    snprintf(f->extra_runtime, sizeof(f->extra_runtime),
             "  dead_letter: {dir: \"%s/dead/x\", topic: \"dead/letters\", client_id: \"a-%s\"}\n",
             f->dir, f->instance);
    assert_int_equal(write_yaml(f), 0);
    char id[80];
    snprintf(id, sizeof(id), "sub-%s", f->instance);
    assert_int_equal(sub_open(&f->s, f->port, id, 1, "dead/#"), 0);
    assert_int_equal(start_relay(f), 0);

    const char text[] = "hello \"world\" \xc3\xa9";
    const unsigned char bin[] = {0xff, 0x00, 0x01};
    const char nul[] = {'a', 0, 'b'};
    push_dead(f, 0, 3, 1, "in/text", text, strlen(text), 1);
    push_dead(f, 1, 1, 0, "in/bin", bin, sizeof(bin), 0);
    push_dead(f, 0, 2, 0, "in/nul", nul, sizeof(nul), 1);
    push_dead(f, 0, 99, 7, "in/odd", "x", 1, 2);
    push_dead(f, 1, 1 | 11 << 8, 0, "in/segv", "s", 1, 1); /* the signal in aux's high byte */
    push_dead(f, 1, 4, 0, "in/hang", "h", 1, 1);           /* the watchdog's timeout */
    ring_flush(f->prod[0]);

    assert_int_equal(sub_wait_count(&f->s, 6, 10000), 6);
    assert_int_equal(wait_released_ring(f, 0, 5000), 0);
    assert_int_equal(stats_get(&f->slot->extra[STATS_RL_DEAD_IN]), 6);
    assert_int_equal(stats_get(&f->slot->extra[STATS_RL_DEAD_STORED]), 6);

    char path[300];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/dead/x", f->dir);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    snprintf(path, sizeof(path), "%s/dead/x/dead-letters.jsonl", f->dir);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    char line[4096];
    char b_id[80], a_id[80];
    snprintf(a_id, sizeof(a_id), "a-%s", f->instance);
    snprintf(b_id, sizeof(b_id), "b-%s", f->instance);
    struct {
        const char *rule, *callback, *reason, *src, *topic, *payload, *b64;
        int qos;
        size_t len;
    } want[6] = {
        {"r-one", "cb1", "callback error", b_id, "in/text", text, NULL, 1, strlen(text)},
        {"r-chain", "cb2", "crashed the worker 3 times", a_id, "in/bin", NULL, "/wAB", 0, 3},
        {"r-one", "cb1", "oversized", a_id, "in/nul", NULL, NULL, 1, 3},
        {"r-one", "cb1", "unknown reason 99", NULL, "in/odd", "x", NULL, 2, 1},
        {"r-chain", "cb2", "by SIGSEGV", a_id, "in/segv", "s", NULL, 1, 1},
        {"r-chain", "cb2", "timed out", a_id, "in/hang", "h", NULL, 1, 1},
    };
    for (int i = 0; i < 6; i++) {
        assert_non_null(fgets(line, sizeof(line), fp));
        json_error_t err;
        json_t *o = json_loads(line, JSON_ALLOW_NUL, &err);
        assert_non_null(o);
        const char *t = jstr(o, "time");
        assert_non_null(t);
        assert_int_equal(strlen(t), 24); /* 2026-11-27T02:12:35.123Z */
        assert_int_equal(t[10], 'T');
        assert_int_equal(t[23], 'Z');
        assert_string_equal(jstr(o, "instance"), f->instance);
        assert_string_equal(jstr(o, "rule"), want[i].rule);
        assert_string_equal(jstr(o, "callback"), want[i].callback);
        assert_non_null(strstr(jstr(o, "reason"), want[i].reason));
        if (want[i].src)
            assert_string_equal(jstr(o, "source_client"), want[i].src);
        else
            assert_true(json_is_null(json_object_get(o, "source_client")));
        assert_string_equal(jstr(o, "topic"), want[i].topic);
        assert_int_equal(json_integer_value(json_object_get(o, "qos")), want[i].qos);
        assert_int_equal(json_integer_value(json_object_get(o, "payload_len")), want[i].len);
        if (want[i].b64) {
            assert_string_equal(jstr(o, "payload_b64"), want[i].b64);
            assert_null(json_object_get(o, "payload"));
        } else if (want[i].payload) {
            assert_string_equal(jstr(o, "payload"), want[i].payload);
        } else {
            json_t *p = json_object_get(o, "payload");
            assert_true(json_is_string(p));
            assert_int_equal(json_string_length(p), sizeof(nul));
            assert_memory_equal(json_string_value(p), nul, sizeof(nul));
        }
        json_decref(o);
        /* the same line was published on dead/letters, in order */
        size_t l = strlen(line);
        assert_true(l > 0 && line[l - 1] == '\n');
        pthread_mutex_lock(&f->s.mu);
        got *g = &f->s.items[i];
        assert_string_equal(g->topic, "dead/letters");
        assert_int_equal((size_t)g->len, l - 1);
        assert_memory_equal(g->payload, line, l - 1);
        assert_int_equal(g->qos, 1);
        pthread_mutex_unlock(&f->s.mu);
    }
    assert_null(fgets(line, sizeof(line), fp));
    fclose(fp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_relay_spool_down_target_spooled_up_target_flows,
                                        setup_two, teardown),
        cmocka_unit_test_setup_teardown(
            test_relay_spool_sigkill_while_spooling_and_draining_loses_nothing, setup_two,
            teardown),
        cmocka_unit_test_setup_teardown(test_relay_spool_garbage_files_quarantined_at_start, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_relay_spool_left_records_go_before_new_ones, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_relay_spool_cap_keeps_records_in_ring,
                                        setup_persistent, teardown),
        cmocka_unit_test_setup_teardown(test_relay_dead_letters_stored_and_published, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
