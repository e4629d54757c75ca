/* relay_fixture: the harness of the relay tests (test_relay.c, test_relay_spool.c).
 *
 * Each test starts a mosquitto on a free 127.0.0.1 port from a test-local config (a second one
 * for client "b" when the test asks for two brokers), creates the instance's two worker output
 * rings and the stats segment itself (as the supervisor would), writes a YAML with two clients
 * ("a-*" MQTT 3.1.1 and "b-*" MQTT 5), spool and dead-letter dirs in the test's folder, spawns
 * the relay with MQTTFLOW_READY_FD and waits for "ready", subscribes with paho, then writes
 * REC_PUBLISH records into the rings as the workers would. Every record has its own payload
 * (binary, with NULs); each topic is fed by one ring and one target connection, so the order
 * of arrival per topic must be the order of the ring. Binaries are found under $BUILD.
 * Helpers are static inline: each test file uses a different subset.
 */
#ifndef MF_TESTS_RELAY_FIXTURE_H
#define MF_TESTS_RELAY_FIXTURE_H

#include <MQTTAsync.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cfg.h"
#include "clock.h"
#include "names.h"
#include "rec.h"
#include "ring.h"
#include "shm.h"
#include "stats.h"

#define N_RINGS     2
#define MAX_PAYLOAD 300

#include "relay_sub.h"

/* ---- processes ---- */

typedef struct fixture {
    char dir[128];
    char instance[40];
    char yaml[256];
    char ring_name[N_RINGS][SHM_NAME_MAX];
    char stats_name[SHM_NAME_MAX];
    int port;
    int port_b; /* client "b"'s broker when the test has two (else 0: b is on port) */
    int persistent_broker;
    pid_t broker, broker_b, relay;
    char extra_runtime[512]; /* more lines under runtime: (write_yaml) */
    char extra_top[2048];    /* more top-level YAML (callbacks, rules) */
    ring *owner[N_RINGS];
    ring *prod[N_RINGS];
    stats *st;
    stats_slot *slot;
    sub s, s2;
    /* what was pushed, in push order: ring, topic index, payload */
    struct pushed {
        int ring;
        uint16_t client;
        char topic[64];
        unsigned char payload[MAX_PAYLOAD];
        size_t len;
        int qos, retain;
    } * pushed;
    size_t n_pushed, cap_pushed;
} fixture;

/* Starts broker 0 (port) or, with b, broker 1 (port_b); persistent_broker: with a store in
 * the test's folder, kept across stop_broker_at and a new start. */
static inline int start_broker_at(fixture *f, int b)
{
    char name[32], db[200];
    snprintf(name, sizeof(name), "mosquitto%d", b);
    snprintf(db, sizeof(db), "%s/db%d", f->dir, b);
    if (f->persistent_broker)
        mkdir(db, 0700);
    return testlib_broker_start(f->dir, name, b ? f->port_b : f->port,
                                f->persistent_broker ? db : NULL, NULL,
                                b ? &f->broker_b : &f->broker);
}

static inline int start_broker(fixture *f)
{
    return start_broker_at(f, 0);
}

/* Waits until the relay's "spooled now" counter (stats extra[STATS_RL_SPOOL_NOW]) is n. */
static inline int wait_spooled(fixture *f, uint64_t n, int timeout_ms)
{
    uint64_t end = clock_mono_ns() + (uint64_t)timeout_ms * 1000000ull;
    while (stats_get(&f->slot->extra[STATS_RL_SPOOL_NOW]) != n) {
        if (clock_mono_ns() >= end)
            return -1;
        sleep_ms(10);
    }
    return 0;
}

/* SIGTERM (mosquitto saves its persistent sessions on the way out) and wait. */
static inline int stop_broker_at(fixture *f, int b)
{
    pid_t *pid = b ? &f->broker_b : &f->broker;
    if (*pid <= 0)
        return -1;
    kill(*pid, SIGTERM);
    int st = wait_exit(*pid, 10000);
    if (st == -1)
        kill_wait(pid);
    *pid = 0;
    return st == -1 ? -1 : 0;
}

static inline int stop_broker(fixture *f)
{
    return stop_broker_at(f, 0);
}

/* Spawns the relay and waits for "ready" on its notification pipe. 0 or -1. */
static inline int start_relay(fixture *f)
{
    char bin[256], log[256];
    snprintf(bin, sizeof(bin), "%s/bin/mqttflow-relay", build_dir());
    snprintf(log, sizeof(log), "%s/relay.log", f->dir);
    char *argv[] = {bin, f->yaml, NULL};
    return testlib_spawn_ready(argv, log, 20000, &f->relay);
}

static inline int teardown(void **state);

/* The header of a REC_PUBLISH to client (as a worker writes it: no rule, no step). */
static inline rec_hdr publish_hdr(uint16_t client, int qos, int retain, uint64_t seq)
{
    rec_hdr h;
    memset(&h, 0, sizeof(h));
    h.kind = REC_PUBLISH;
    h.client = client;
    h.rule = REC_NONE;
    h.step = REC_NONE;
    h.qos = (uint8_t)qos;
    h.retain = (uint8_t)retain;
    h.seq = seq;
    return h;
}

/* with_broker: start mosquitto now (else the test starts it); persistent: with persistence,
 * for the tests that stop and restart it */
/* (Re)writes the YAML from the fixture's fields and checks it with the real loader (the relay
 * would exit 2 on a bad one). 0 or -1. */
static inline int write_yaml(fixture *f)
{
    FILE *y = fopen(f->yaml, "w");
    if (!y)
        return -1;
    fprintf(y,
            "mqtt_clients:\n"
            "  - client_id: \"a-%s\"\n"
            "    broker_url: \"mqtt://127.0.0.1\"\n"
            "    port: %d\n"
            "    reconnect: {min_delay: 0.05, max_delay: 0.2}\n"
            "  - client_id: \"b-%s\"\n"
            "    broker_url: \"mqtt://127.0.0.1\"\n"
            "    port: %d\n"
            "    mqtt_version: 5\n"
            "    reconnect: {min_delay: 0.05, max_delay: 0.2}\n"
            "%s"
            "runtime:\n"
            "  instance: \"%s\"\n"
            "  workers: %d\n"
            "  spool_dir: \"%s/spool\"\n"
            "%s",
            f->instance, f->port, f->instance, f->port_b ? f->port_b : f->port, f->extra_top,
            f->instance, N_RINGS, f->dir, f->extra_runtime);
    if (!strstr(f->extra_runtime, "dead_letter:"))
        fprintf(y, "  dead_letter: {dir: \"%s/dead\"}\n", f->dir);
    fclose(y);
    return stage_fixture_check_config(f->yaml);
}

/* with_broker: start mosquitto now (else the test starts it); persistent: with persistence;
 * two: client "b" gets a broker of its own (started with the first). */
static inline int setup_with(void **state, int with_broker, int persistent, int two)
{
    fixture *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    f->persistent_broker = persistent;
    snprintf(f->dir, sizeof(f->dir), "/tmp/mf-test-relay.XXXXXX");
    if (!mkdtemp(f->dir))
        goto fail;
    snprintf(f->instance, sizeof(f->instance), "tr%d%ld", (int)getpid(),
             (long)(clock_mono_ns() % 100000));
    f->port = free_port();
    if (f->port <= 0 || (with_broker && start_broker(f) < 0))
        goto fail;
    if (two && ((f->port_b = free_port()) <= 0 || start_broker_at(f, 1) < 0))
        goto fail;
    snprintf(f->yaml, sizeof(f->yaml), "%s/config.yaml", f->dir);
    if (write_yaml(f) < 0)
        goto fail;

    for (int i = 0; i < N_RINGS; i++) {
        if (names_worker_out(f->ring_name[i], SHM_NAME_MAX, f->instance, (size_t)i) < 0 ||
            ring_create(f->ring_name[i], 1u << 20, 1u << 16, &f->owner[i]) < 0 ||
            ring_attach(f->ring_name[i], RING_PRODUCER, &f->prod[i]) < 0)
            goto fail;
    }
    if (names_stats(f->stats_name, sizeof(f->stats_name), f->instance) < 0 ||
        stats_create(f->stats_name, stats_slot_total(0, N_RINGS), &f->st) < 0)
        goto fail;
    f->slot = stats_slot_at(f->st, stats_slot_index(STATS_RELAY, 0, 0));
    *state = f;
    return 0;
fail:
    /* cmocka skips the teardown of a failed setup: clean up here */
    *state = f;
    teardown(state);
    *state = NULL;
    return -1;
}

static inline int setup(void **state)
{
    return setup_with(state, 1, 0, 0);
}

static inline int setup_no_broker(void **state)
{
    return setup_with(state, 0, 0, 0);
}

static inline int setup_persistent(void **state)
{
    return setup_with(state, 1, 1, 0);
}

static inline int setup_two(void **state)
{
    return setup_with(state, 1, 1, 1);
}

static inline int teardown(void **state)
{
    fixture *f = *state;
    if (!f)
        return 0;
    kill_wait(&f->relay);
    sub_close(&f->s);
    sub_close(&f->s2);
    kill_wait(&f->broker);
    kill_wait(&f->broker_b);
    for (int i = 0; i < N_RINGS; i++) {
        ring_detach(f->prod[i]);
        ring_detach(f->owner[i]);
        if (f->ring_name[i][0])
            ring_unlink(f->ring_name[i]);
    }
    stats_detach(f->st);
    if (f->stats_name[0])
        shm_unlink_name(f->stats_name);
    testlib_remove_dir(f->dir);
    free(f->pushed);
    free(f);
    return 0;
}

/* ---- records ---- */

/* Writes one REC_PUBLISH into ring ri (waiting for room) and remembers it. */
static inline void push_rec(fixture *f, int ri, uint16_t client, const char *topic,
                            const unsigned char *payload, size_t len, int qos, int retain)
{
    if (f->n_pushed == f->cap_pushed) {
        f->cap_pushed = f->cap_pushed ? f->cap_pushed * 2 : 1024;
        f->pushed = realloc(f->pushed, f->cap_pushed * sizeof(*f->pushed));
        assert_non_null(f->pushed);
    }
    struct pushed *p = &f->pushed[f->n_pushed++];
    p->ring = ri;
    p->client = client;
    snprintf(p->topic, sizeof(p->topic), "%s", topic);
    memcpy(p->payload, payload, len);
    p->len = len;
    p->qos = qos;
    p->retain = retain;

    rec_hdr h = publish_hdr(client, qos, retain, f->n_pushed);
    size_t need = rec_size(strlen(topic), len);
    void *buf;
    int rc;
    while ((rc = ring_reserve(f->prod[ri], need, &buf)) == -EAGAIN)
        assert_int_not_equal(ring_wait_space(f->prod[ri], need, 10000), -ETIMEDOUT);
    assert_int_equal(rc, 0);
    long n = rec_encode(buf, need, &h, topic, strlen(topic), payload, len);
    assert_true(n > 0);
    ring_commit(f->prod[ri], (size_t)n);
}

/* A payload unique to (ring, i): text header, then binary bytes including NULs. */
static inline size_t make_payload(unsigned char *p, int ri, size_t i)
{
    size_t len = 24 + (i * 37 + (size_t)ri * 11) % (MAX_PAYLOAD - 24);
    int h = snprintf((char *)p, len, "r%d-i%zu:", ri, i);
    for (size_t k = (size_t)h; k < len; k++)
        p[k] = (unsigned char)(i * 131 + k * 7 + (size_t)ri);
    return len;
}

/* n records per ring: ring 0 alternates both targets and (with_qos0) QoS 0/1, ring 1 is
 * QoS 1 on "b". Topics name ring, target and QoS, so each topic has one ring and one
 * connection. */
static inline void push_mix_range(fixture *f, size_t first, size_t n, int with_qos0)
{
    unsigned char pl[MAX_PAYLOAD];
    char topic[64];
    for (size_t i = first; i < first + n; i++) {
        for (int ri = 0; ri < N_RINGS; ri++) {
            uint16_t client = ri == 0 ? (uint16_t)(i % 2) : 1;
            int qos = ri == 0 && with_qos0 ? (int)((i / 2) % 2) : 1;
            snprintf(topic, sizeof(topic), "t/r%d/c%u/q%d", ri, (unsigned)client, qos);
            size_t len = make_payload(pl, ri, i);
            push_rec(f, ri, client, topic, pl, len, qos, 0);
        }
    }
    for (int ri = 0; ri < N_RINGS; ri++)
        ring_flush(f->prod[ri]);
}

/* push_mix for indices [0, n): call push_mix_range with the next index to push more. */
static inline void push_mix(fixture *f, size_t n, int with_qos0)
{
    push_mix_range(f, 0, n, with_qos0);
}

/* Every pushed record arrived exactly once with its exact payload, and per topic in push
 * order: per topic, the arrivals are compared one by one with the records pushed on it.
 * Returns the number of mismatches (0 = all good); prints the first few. */
static inline size_t check_delivery_on(fixture *f, sub *sb, int client)
{
    size_t bad = 0;
    const char *topics[64];
    size_t n_topics = 0;
    for (size_t i = 0; i < f->n_pushed && n_topics < 64; i++) {
        if (client >= 0 && f->pushed[i].client != client)
            continue;
        size_t t = 0;
        while (t < n_topics && strcmp(topics[t], f->pushed[i].topic) != 0)
            t++;
        if (t == n_topics)
            topics[n_topics++] = f->pushed[i].topic;
    }
    pthread_mutex_lock(&sb->mu);
    size_t matched = 0;
    for (size_t t = 0; t < n_topics; t++) {
        size_t j = 0;
        for (size_t i = 0; i < f->n_pushed; i++) {
            struct pushed *p = &f->pushed[i];
            if (strcmp(p->topic, topics[t]) != 0)
                continue;
            while (j < sb->n && strcmp(sb->items[j].topic, topics[t]) != 0)
                j++;
            if (j == sb->n) {
                if (bad++ < 5)
                    fprintf(stderr, "record %zu (topic %s): missing\n", i, p->topic);
                continue;
            }
            got *g = &sb->items[j++];
            if ((size_t)g->len != p->len || memcmp(g->payload, p->payload, p->len) != 0) {
                if (bad++ < 5)
                    fprintf(stderr, "record %zu (topic %s): wrong payload or order\n", i, p->topic);
                continue;
            }
            matched++;
        }
    }
    if (matched + bad < sb->n) {
        fprintf(stderr, "%zu unexpected arrivals\n", sb->n - matched - bad);
        bad += sb->n - matched - bad;
    }
    pthread_mutex_unlock(&sb->mu);
    return bad;
}

static inline size_t check_delivery(fixture *f)
{
    return check_delivery_on(f, &f->s, -1);
}

/* Waits until ring ri's tail reached its head (the relay released everything). */
static inline int wait_released_ring(fixture *f, int ri, int timeout_ms)
{
    uint64_t end = clock_mono_ns() + (uint64_t)timeout_ms * 1000000ull;
    for (;;) {
        ring_stats rs;
        ring_get_stats(f->owner[ri], &rs);
        if (rs.tail == rs.head && rs.head > 0)
            return 0;
        if (clock_mono_ns() >= end)
            return -1;
        sleep_ms(10);
    }
}

/* Waits until every ring's tail reached its head (the relay released everything). */
static inline int wait_released(fixture *f, int timeout_ms)
{
    uint64_t end = clock_mono_ns() + (uint64_t)timeout_ms * 1000000ull;
    for (;;) {
        int all = 1;
        for (int i = 0; i < N_RINGS; i++) {
            ring_stats rs;
            ring_get_stats(f->owner[i], &rs);
            all &= rs.tail == rs.head && rs.head > 0;
        }
        if (all)
            return 0;
        if (clock_mono_ns() >= end)
            return -1;
        sleep_ms(10);
    }
}

/* Prints the relay's counters and the rings' positions (to read a failure). */
static inline void dump_state(fixture *f, const char *when)
{
    fprintf(stderr, "%s: relay in %llu out %llu errors %llu connected %llu; sub has %zu;", when,
            (unsigned long long)stats_get(&f->slot->in),
            (unsigned long long)stats_get(&f->slot->out),
            (unsigned long long)stats_get(&f->slot->errors),
            (unsigned long long)stats_get(&f->slot->connected), sub_count(&f->s));
    for (int i = 0; i < N_RINGS; i++) {
        ring_stats rs;
        ring_get_stats(f->owner[i], &rs);
        fprintf(stderr, " ring %d head %llu tail %llu;", i, (unsigned long long)rs.head,
                (unsigned long long)rs.tail);
    }
    fprintf(stderr, "\n");
}

/* At-least-once check for push_mix records: how many pushed records never arrived (QoS 0
 * ones ignored when skip_qos0); *wrong counts arrivals that match no pushed record. */
static inline size_t count_missing(fixture *f, int skip_qos0, size_t *wrong)
{
    uint8_t *seen = calloc(f->n_pushed ? f->n_pushed : 1, 1);
    assert_non_null(seen);
    *wrong = 0;
    pthread_mutex_lock(&f->s.mu);
    for (size_t j = 0; j < f->s.n; j++) {
        got *g = &f->s.items[j];
        int ri;
        size_t i;
        char hdr[40] = {0};
        memcpy(hdr, g->payload, g->len < 39 ? (size_t)g->len : 39);
        size_t k = SIZE_MAX;
        if (sscanf(hdr, "r%d-i%zu:", &ri, &i) == 2 && ri >= 0 && ri < N_RINGS)
            k = i * N_RINGS + (size_t)ri; /* push_mix's order */
        if (k >= f->n_pushed || strcmp(f->pushed[k].topic, g->topic) != 0 ||
            (size_t)g->len != f->pushed[k].len ||
            memcmp(g->payload, f->pushed[k].payload, f->pushed[k].len) != 0) {
            if ((*wrong)++ < 3)
                fprintf(stderr, "unexpected arrival %zu on %s (%d bytes, \"%.12s\")\n", j, g->topic,
                        g->len, hdr);
            continue;
        }
        seen[k] = 1;
    }
    pthread_mutex_unlock(&f->s.mu);
    size_t missing = 0;
    for (size_t k = 0; k < f->n_pushed; k++)
        missing += !(skip_qos0 && f->pushed[k].qos == 0) && !seen[k];
    free(seen);
    return missing;
}

/* Polls count_missing until nothing is missing (duplicates make a plain count reach the
 * total early). Returns what is still missing at the deadline; *wrong as count_missing. */
static inline size_t wait_missing_zero(fixture *f, int skip_qos0, size_t *wrong, int timeout_ms)
{
    uint64_t end = clock_mono_ns() + (uint64_t)timeout_ms * 1000000ull;
    size_t missing;
    while ((missing = count_missing(f, skip_qos0, wrong)) != 0 && clock_mono_ns() < end)
        sleep_ms(50);
    return missing;
}

/* At-least-once check of the push_mix records of client (-1: all) on subscriber sb: returns how
 * many never arrived; *dups = arrivals beyond the first of a record, *wrong = arrivals matching no
 * record, *reordered = arrivals of a topic older than one already seen first. */
static inline size_t missing_on(fixture *f, sub *sb, int client, size_t *dups, size_t *wrong,
                                size_t *reordered)
{
    uint8_t *seen = calloc(f->n_pushed ? f->n_pushed : 1, 1);
    size_t *last = calloc(64, sizeof(*last)); /* per topic slot: highest first-seen index + 1 */
    assert_non_null(seen);
    assert_non_null(last);
    *dups = *wrong = *reordered = 0;
    pthread_mutex_lock(&sb->mu);
    for (size_t j = 0; j < sb->n; j++) {
        got *g = &sb->items[j];
        int ri;
        size_t i, k = SIZE_MAX;
        char hdr[40] = {0};
        memcpy(hdr, g->payload, g->len < 39 ? (size_t)g->len : 39);
        if (sscanf(hdr, "r%d-i%zu:", &ri, &i) == 2 && ri >= 0 && ri < N_RINGS)
            k = i * N_RINGS + (size_t)ri;
        if (k >= f->n_pushed || (client >= 0 && f->pushed[k].client != client) ||
            strcmp(f->pushed[k].topic, g->topic) != 0 || (size_t)g->len != f->pushed[k].len ||
            memcmp(g->payload, f->pushed[k].payload, f->pushed[k].len) != 0) {
            (*wrong)++;
            continue;
        }
        if (seen[k]) {
            (*dups)++;
            continue;
        }
        seen[k] = 1;
        /* first arrivals of one topic must come in push order (k grows with it) */
        /* one slot per push_mix topic (ring, client, qos) */
        size_t slot =
            (size_t)ri * 4 + (size_t)(f->pushed[k].client % 2) * 2 + (size_t)(f->pushed[k].qos % 2);
        if (k + 1 < last[slot])
            (*reordered)++;
        else
            last[slot] = k + 1;
    }
    pthread_mutex_unlock(&sb->mu);
    size_t missing = 0;
    for (size_t k = 0; k < f->n_pushed; k++)
        missing += (client < 0 || f->pushed[k].client == client) && !seen[k];
    free(seen);
    free(last);
    return missing;
}

static inline size_t wait_missing_on(fixture *f, sub *sb, int client, int timeout_ms, size_t *dups,
                                     size_t *wrong, size_t *reordered)
{
    uint64_t end = clock_mono_ns() + (uint64_t)timeout_ms * 1000000ull;
    size_t m;
    while ((m = missing_on(f, sb, client, dups, wrong, reordered)) != 0 && clock_mono_ns() < end)
        sleep_ms(50);
    return m;
}

#endif
