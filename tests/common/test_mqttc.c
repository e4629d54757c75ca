/* mqttc against a real mosquitto on loopback (log_type all, so every packet it receives is in
 * its log): QoS 0/1/2 both ways in MQTT 3.1.1 and 5 with exact counts and per-QoS order,
 * acknowledgements only after batch_done, keepalive over an idle period, and a persistent
 * session across a broker crash with the unacknowledged QoS 1 publishes sent again with DUP
 * and none lost. Both ends are mqttc clients driven from this one thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <cmocka.h>

#include "../tools/testlib.h"
#include "cfg.h"
#include "clock.h"
#include "futex.h"
#include "mqttc.h"

#define N_MSGS 3000

typedef struct broker {
    char dir[64], log[128];
    int port;
    pid_t pid;
} broker;

typedef struct peer {
    mqttc *m;
    cfg_client c;
    char id[64];
    /* received */
    unsigned got[3];    /* per QoS */
    int last_seq[3];    /* order check per QoS */
    unsigned reordered; /* a sequence number not above the last of its QoS */
    unsigned dups_seen; /* PUBLISH with DUP */
    unsigned char seen[N_MSGS];
    unsigned batches;
    /* sent */
    unsigned published[3], refused;
    /* ack-after-batch probe */
    const broker *watch;
    int acked_before_batch_done;
    int batch_sleep_ms;
} peer;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int count_in_log(const broker *b, const char *text)
{
    static char buf[1 << 22];
    FILE *in = fopen(b->log, "r");
    size_t n = in ? fread(buf, 1, sizeof(buf) - 1, in) : 0;
    if (in)
        fclose(in);
    buf[n] = 0;
    int c = 0;
    for (const char *p = buf; (p = strstr(p, text)) != NULL; p += strlen(text))
        c++;
    return c;
}

/* The fixture library's broker (testlib_broker_start: dir/broker.conf, written again at each
 * start): persistent in dir (the crash test restarts it from the session saved at a clean stop),
 * every packet logged to b->log. */
static int broker_start(broker *b)
{
    char extra[256];
    snprintf(extra, sizeof(extra), "max_inflight_messages 0\nlog_type all\nlog_dest file %s\n",
             b->log);
    return testlib_broker_start(b->dir, "broker", b->port, b->dir, extra, &b->pid);
}

static void broker_stop(broker *b, int sig)
{
    if (b->pid > 0) {
        kill(b->pid, sig);
        waitpid(b->pid, NULL, 0);
        b->pid = 0;
    }
}

static int setup(void **state)
{
    broker *b = calloc(1, sizeof(*b));
    *state = b;
    if (!b)
        return -1;
    snprintf(b->dir, sizeof(b->dir), "/tmp/mf-test-mqttc.XXXXXX");
    if (!mkdtemp(b->dir) || (b->port = testlib_free_port()) <= 0)
        return -1;
    snprintf(b->log, sizeof(b->log), "%s/mosquitto.log", b->dir);
    return broker_start(b);
}

static int teardown(void **state)
{
    broker *b = *state;
    if (!b)
        return 0;
    broker_stop(b, SIGKILL);
    if (b->dir[0] && !getenv("MF_TEST_KEEP")) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", b->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", b->dir);
    }
    free(b);
    return 0;
}

/* payload "<qos>:<seq>" */
static int on_message(void *arg, const mqtt_pkt *p)
{
    peer *pe = arg;
    char s[32];
    size_t n = p->payload_len < sizeof(s) - 1 ? p->payload_len : sizeof(s) - 1;
    memcpy(s, p->payload, n);
    s[n] = 0;
    int q = -1, seq = -1;
    if (sscanf(s, "%d:%d", &q, &seq) != 2 || q != p->qos || seq < 0 || seq >= N_MSGS)
        fail_msg("unexpected payload \"%s\" at QoS %d", s, p->qos);
    pe->got[q]++;
    if (seq <= pe->last_seq[q])
        pe->reordered++;
    pe->last_seq[q] = seq;
    pe->dups_seen += p->dup;
    pe->seen[seq]++;
    return 0;
}

static void on_batch_done(void *arg)
{
    peer *pe = arg;
    pe->batches++;
    if (pe->watch && pe->batch_sleep_ms) {
        /* the PUBACK of what was just delivered must not reach the broker before we return */
        sleep_ms(pe->batch_sleep_ms);
        if (count_in_log(pe->watch, "Received PUBACK from ") > 0)
            pe->acked_before_batch_done = 1;
        pe->batch_sleep_ms = 0;
    }
}

static void on_published(void *arg, void *ctx, int rc)
{
    peer *pe = arg;
    int q = (int)(intptr_t)ctx - 1;
    if (rc != 0)
        pe->refused++;
    else
        pe->published[q]++;
}

static unsigned next_coalesce_us; /* opts.rx_coalesce_us of the next peer_init */
/* peer_init gives the next client the relay's options (relay/conn_uring.c): receives paced,
 * publishes dropped rather than kept for redelivery on a lost connection */
static bool next_relay_opts;
/* the next peer_init gets the ingress's options (ingress/sub_uring.c): quiet_send */
static bool next_ingress_opts;

/* A peer's client settings, not yet connected (peer_start does that). */
static void peer_setup(peer *pe, const broker *b, const char *id, int version, bool clean)
{
    memset(pe, 0, sizeof(*pe));
    for (int q = 0; q < 3; q++)
        pe->last_seq[q] = -1;
    snprintf(pe->id, sizeof(pe->id), "%s", id);
    pe->c = (cfg_client){.client_id = pe->id,
                         .scheme = CFG_MQTT,
                         .host = "127.0.0.1",
                         .port = b->port,
                         .uri = "tcp://127.0.0.1",
                         .keepalive = 30,
                         .clean_session = clean,
                         .mqtt_version = version,
                         .reconnect_min = 0.05,
                         .reconnect_max = 0.2};
}

/* Creates and starts the peer's client, subscribed to filter (NULL: none) at sub_qos, with
 * message for what arrives. */
static void peer_start(peer *pe, const char *filter, int sub_qos,
                       int (*message)(void *arg, const mqtt_pkt *p))
{
    const char *filters[] = {filter};
    int qos[] = {sub_qos};
    mqttc_opts o = {.c = &pe->c,
                    .client_id = pe->id,
                    .filters = filter ? filters : NULL,
                    .qos = qos,
                    .n_filters = filter ? 1 : 0,
                    .log_comp = "test",
                    .rx_coalesce_us = next_coalesce_us,
                    .arg = pe,
                    .message = message,
                    .batch_done = on_batch_done,
                    .published = on_published};
    o.quiet_send = next_ingress_opts;
    next_ingress_opts = false;
    if (next_relay_opts) {
        o.recv_pace_us = 1000;
        o.drop_on_loss = true;
        next_relay_opts = false;
    }
    assert_int_equal(mqttc_create(&o, &pe->m), 0);
    mqttc_start(pe->m);
}

static void peer_init(peer *pe, const broker *b, const char *id, int version, bool clean,
                      const char *filter, int sub_qos)
{
    peer_setup(pe, b, id, version, clean);
    peer_start(pe, filter, sub_qos, on_message);
}

/* Runs both clients until cond(arg) or timeout; 0 or -1. */
static int run_until(peer *a, peer *b, int (*cond)(peer *, peer *), int timeout_ms)
{
    uint64_t end = clock_mono_ns() + (uint64_t)timeout_ms * 1000000ull;
    while (!cond(a, b)) {
        if (clock_mono_ns() > end)
            return -1;
        if (a)
            (void)mqttc_run(a->m, b ? 0 : 10);
        if (b)
            (void)mqttc_run(b->m, 1);
    }
    return 0;
}

static int both_up(peer *a, peer *b)
{
    return (!a || mqttc_get_state(a->m) == MQTTC_UP) && (!b || mqttc_get_state(b->m) == MQTTC_UP);
}

static unsigned total_got(const peer *p)
{
    return p->got[0] + p->got[1] + p->got[2];
}

static int all_done(peer *sub, peer *pub)
{
    return total_got(sub) >= N_MSGS &&
           pub->published[0] + pub->published[1] + pub->published[2] + pub->refused >= N_MSGS;
}

/* Publishes N_MSGS (QoS i % 3) as fast as the window allows, driving both clients. */
static void publish_all(peer *sub, peer *pub)
{
    for (int i = 0; i < N_MSGS;) {
        int q = i % 3;
        char pl[32];
        int n = snprintf(pl, sizeof(pl), "%d:%d", q, i);
        int rc =
            mqttc_publish(pub->m, "q/t", 3, pl, (size_t)n, q, false, (void *)(intptr_t)(q + 1));
        if (rc == 0) {
            i++;
            continue;
        }
        assert_true(rc == -EBUSY || rc == -EAGAIN);
        (void)mqttc_run(pub->m, 0);
        (void)mqttc_run(sub->m, 0);
    }
}

static int sub_acks_logged(peer *a, peer *b)
{
    (void)b;
    return count_in_log(a->watch, "Received PUBCOMP from mqttc-sub") >= N_MSGS / 3 &&
           count_in_log(a->watch, "Received PUBACK from mqttc-sub") >= N_MSGS / 3;
}

static void qos_both_ways(void **state, int version, bool relay_pub)
{
    broker *b = *state;
    peer sub, pub;
    next_ingress_opts = version == 4; /* 3.1.1: the subscriber as the ingress has it */
    peer_init(&sub, b, "mqttc-sub", version, true, "q/#", 2);
    next_relay_opts = relay_pub;
    peer_init(&pub, b, "mqttc-pub", version, true, NULL, 0);
    assert_int_equal(run_until(&sub, &pub, both_up, 10000), 0);
    publish_all(&sub, &pub);
    int done = run_until(&sub, &pub, all_done, 30000);
    if (done < 0)
        fprintf(stderr, "got %u/%u/%u published %u/%u/%u refused %u inflight %zu\n", sub.got[0],
                sub.got[1], sub.got[2], pub.published[0], pub.published[1], pub.published[2],
                pub.refused, mqttc_inflight(pub.m));
    assert_int_equal(done, 0);
    /* exact: every message once, in order within its QoS, every publish acknowledged */
    assert_int_equal(sub.got[0], N_MSGS / 3);
    assert_int_equal(sub.got[1], N_MSGS / 3);
    assert_int_equal(sub.got[2], N_MSGS / 3);
    assert_int_equal(sub.reordered, 0);
    assert_int_equal(pub.published[0] + pub.published[1] + pub.published[2], N_MSGS);
    assert_int_equal(pub.refused, 0);
    assert_int_equal(mqttc_inflight(pub.m), 0);
    /* the broker sees the whole QoS 2 exchange from both: PUBREL from the publisher, PUBREC
     * and PUBCOMP from the subscriber (the last ones may still be on their way) */
    sub.watch = b;
    assert_int_equal(run_until(&sub, &pub, sub_acks_logged, 5000), 0);
    assert_int_equal(count_in_log(b, "Received PUBREL from mqttc-pub"), N_MSGS / 3);
    assert_int_equal(count_in_log(b, "Received PUBCOMP from mqttc-sub"), N_MSGS / 3);
    assert_int_equal(count_in_log(b, "Received PUBACK from mqttc-sub"), N_MSGS / 3);
    /* many packets per receive: far fewer batches than messages */
    assert_true(sub.batches < N_MSGS);
    assert_int_equal(mqttc_disconnect(pub.m, 2000), 0);
    assert_int_equal(mqttc_disconnect(sub.m, 2000), 0);
    assert_int_equal(mqttc_get_state(sub.m), MQTTC_CLOSED);
    mqttc_destroy(sub.m);
    mqttc_destroy(pub.m);
    /* written before mqttc_disconnect returned; the broker logs it a moment later */
    uint64_t end = clock_mono_ns() + 5000000000ull;
    while (count_in_log(b, "Received DISCONNECT from mqttc-pub") == 0 && clock_mono_ns() < end)
        sleep_ms(10);
    assert_int_equal(count_in_log(b, "Received DISCONNECT from mqttc-pub"), 1);
}

static void test_mqttc_qos_both_ways_v311(void **state)
{
    qos_both_ways(state, 4, false);
}

static void test_mqttc_qos_both_ways_v5(void **state)
{
    qos_both_ways(state, 5, false);
}

/* The relay's publisher (receives paced, no copy kept per publish): every PUBACK, PUBREC and
 * PUBCOMP is still read and every publish completes, exactly once. */
static void test_mqttc_qos_both_ways_paced_v5(void **state)
{
    qos_both_ways(state, 5, true);
}

static int drop_down(peer *a, peer *b)
{
    (void)b;
    return mqttc_get_state(a->m) == MQTTC_DOWN;
}

static int pub_up_again(peer *a, peer *b)
{
    (void)b;
    return mqttc_get_state(a->m) == MQTTC_UP;
}

/* drop_on_loss: QoS 1 publishes in flight when the broker dies complete with -ENOTCONN (the
 * relay publishes them again itself), none is left in flight or sent again by mqttc. */
static void test_mqttc_drop_on_loss(void **state)
{
    broker *b = *state;
    peer pub;
    next_relay_opts = true;
    peer_init(&pub, b, "mqttc-drop", 4, false, NULL, 0);
    assert_int_equal(run_until(&pub, NULL, pub_up_again, 10000), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(mqttc_publish(pub.m, "d/1", 3, "1:0", 3, 1, false, (void *)2), 0);
    assert_int_equal(mqttc_inflight(pub.m), 10);
    broker_stop(b, SIGKILL);
    assert_int_equal(run_until(&pub, NULL, drop_down, 10000), 0);
    assert_int_equal(pub.refused + pub.published[1], 10);
    assert_int_equal(mqttc_inflight(pub.m), 0);
    assert_int_equal(broker_start(b), 0);
    assert_int_equal(run_until(&pub, NULL, pub_up_again, 10000), 0);
    assert_int_equal(mqttc_inflight(pub.m), 0);
    assert_int_equal(mqttc_publish(pub.m, "d/1", 3, "1:1", 3, 1, false, (void *)2), 0);
    unsigned before = pub.published[1];
    uint64_t end = clock_mono_ns() + 5000000000ull;
    mqttc_recv_now(pub.m); /* the next turn waits for the PUBACK, not for the pause's end */
    while (pub.published[1] == before && clock_mono_ns() < end)
        (void)mqttc_run(pub.m, 10);
    assert_int_equal(pub.published[1], before + 1);
    mqttc_destroy(pub.m);
}

/* A publish larger than the write queue can ever hold is refused for good (-EMSGSIZE), up or
 * not: -EAGAIN ("try after a turn") made the relay retry it for ever, every record behind it
 * waiting. The payload is never read when refused (a short buffer stands for it; ASan would
 * see a read). */
static void test_mqttc_oversized_publish_refused_for_good(void **state)
{
    broker *b = *state;
    peer pub;
    peer_init(&pub, b, "mqttc-big", 4, true, NULL, 0);
    static const char pl[8];
    size_t over = MQTTC_PACKET_MAX; /* with its header, over the bound */
    assert_int_equal(mqttc_publish(pub.m, "b/1", 3, pl, over, 1, false, (void *)2), -EMSGSIZE);
    assert_int_equal(run_until(&pub, NULL, pub_up_again, 10000), 0);
    assert_int_equal(mqttc_publish(pub.m, "b/1", 3, pl, over, 0, false, NULL), -EMSGSIZE);
    assert_int_equal(mqttc_publish(pub.m, "b/1", 3, pl, over, 1, false, (void *)2), -EMSGSIZE);
    assert_int_equal(mqttc_inflight(pub.m), 0);
    mqttc_destroy(pub.m);
}

static int sub_has_one(peer *a, peer *b)
{
    (void)b;
    return total_got(a) >= 1 && a->batches >= 1;
}

static int puback_logged(peer *a, peer *b)
{
    (void)b;
    return count_in_log(a->watch, "Received PUBACK from mqttc-ack") > 0;
}

/* The PUBACK of a QoS 1 message leaves only after batch_done returned (ack after commit). */
static void test_mqttc_puback_after_batch_done(void **state)
{
    broker *b = *state;
    peer sub, pub;
    peer_init(&sub, b, "mqttc-ack", 4, true, "a/#", 1);
    peer_init(&pub, b, "mqttc-ackpub", 4, true, NULL, 0);
    sub.watch = b;
    sub.batch_sleep_ms = 500;
    assert_int_equal(run_until(&sub, &pub, both_up, 10000), 0);
    assert_int_equal(mqttc_publish(pub.m, "a/1", 3, "1:0", 3, 1, false, (void *)2), 0);
    assert_int_equal(run_until(&sub, &pub, sub_has_one, 10000), 0);
    assert_int_equal(sub.acked_before_batch_done, 0);
    assert_int_equal(run_until(&sub, NULL, puback_logged, 5000), 0);
    mqttc_destroy(sub.m);
    mqttc_destroy(pub.m);
}

#define N_PACED 20
static unsigned paced_target;

static int paced_acked(peer *a, peer *b)
{
    (void)a;
    return b->published[1] >= paced_target;
}

static int paced_got(peer *a, peer *b)
{
    (void)b;
    return a->got[1] >= N_PACED;
}

static int paced_pubacks(peer *a, peer *b)
{
    (void)b;
    return count_in_log(a->watch, "Received PUBACK from mqttc-co ") >= N_PACED;
}

/* opts.rx_coalesce_us: QoS 1 messages published one at a time (each only once the broker has
 * the one before, so each reaches the subscriber's socket on its own) are handed over in a
 * few batches, every one of them, in order, each acknowledged. Without the delay each message
 * is a receive and a batch of its own. */
static void test_mqttc_rx_coalesce(void **state)
{
    broker *b = *state;
    peer sub, pub;
    next_coalesce_us = 300000; /* far above a publish's round trip through the broker */
    peer_init(&sub, b, "mqttc-co", 4, true, "c/#", 1);
    next_coalesce_us = 0;
    peer_init(&pub, b, "mqttc-copub", 4, true, NULL, 0);
    assert_int_equal(run_until(&sub, &pub, both_up, 10000), 0);
    for (unsigned i = 0; i < N_PACED; i++) {
        char pl[32];
        int n = snprintf(pl, sizeof(pl), "1:%u", i);
        assert_int_equal(mqttc_publish(pub.m, "c/t", 3, pl, (size_t)n, 1, false, (void *)2), 0);
        paced_target = i + 1;
        assert_int_equal(run_until(&sub, &pub, paced_acked, 10000), 0);
    }
    assert_int_equal(run_until(&sub, &pub, paced_got, 10000), 0);
    assert_int_equal(sub.got[1], N_PACED);
    assert_int_equal(sub.reordered, 0);
    assert_int_equal(sub.dups_seen, 0);
    assert_true(sub.batches <= N_PACED / 4);
    sub.watch = b;
    assert_int_equal(run_until(&sub, NULL, paced_pubacks, 5000), 0);
    assert_int_equal(count_in_log(b, "Received PUBACK from mqttc-co "), N_PACED);
    mqttc_destroy(sub.m);
    mqttc_destroy(pub.m);
}

static unsigned quiet_target;

static int quiet_got(peer *a, peer *b)
{
    (void)b;
    return a->got[1] >= quiet_target;
}

static int quiet_acked(peer *a, peer *b)
{
    (void)b;
    return count_in_log(a->watch, "Received PUBACK from mqttc-qs ") >= (int)quiet_target;
}

/* opts.quiet_send (the ingress's): the turn that sends a PUBACK is also the wait for the next
 * packet, one io_uring_enter; the send's completion does not end that wait (it ran to its
 * timeout here, as nothing else came), yet the PUBACK reached the broker at once. Without the
 * option the send's completion ends the wait and a second enter waits for the packet. */
static void test_mqttc_quiet_send(void **state)
{
    broker *b = *state;
    peer sub, pub;
    next_ingress_opts = true;
    peer_init(&sub, b, "mqttc-qs", 4, true, "s/#", 1);
    peer_init(&pub, b, "mqttc-qspub", 4, true, NULL, 0);
    sub.watch = b;
    assert_int_equal(run_until(&sub, &pub, both_up, 10000), 0);
    for (unsigned i = 0; i < 3; i++) {
        char pl[32];
        int n = snprintf(pl, sizeof(pl), "1:%u", i);
        assert_int_equal(mqttc_publish(pub.m, "s/t", 3, pl, (size_t)n, 1, false, (void *)2), 0);
        quiet_target = i + 1;
        assert_int_equal(run_until(&sub, &pub, quiet_got, 10000), 0);
        /* the PUBACK is queued, not sent: this turn sends it and waits */
        uint64_t t0 = clock_mono_ns();
        assert_int_equal(mqttc_run(sub.m, 300), 1); /* the send's completion, seen at the end */
        assert_true(clock_mono_ns() - t0 >= 300000000ull);
        assert_int_equal(run_until(&sub, NULL, quiet_acked, 5000), 0);
    }
    assert_int_equal(count_in_log(b, "Received PUBACK from mqttc-qs "), 3);
    assert_int_equal(sub.reordered, 0);
    mqttc_destroy(sub.m);
    mqttc_destroy(pub.m);
}

static int idle_pings(peer *a, peer *b)
{
    (void)b;
    return count_in_log(a->watch, "Received PINGREQ from mqttc-idle") >= 3;
}

/* Keepalive 1 s over an idle period: PINGREQs go out, the connection stays up, the broker
 * never times us out. */
static void test_mqttc_keepalive_idle(void **state)
{
    broker *b = *state;
    peer sub;
    peer_setup(&sub, b, "mqttc-idle", 4, true);
    sub.c.keepalive = 1;
    peer_start(&sub, "i/#", 0, on_message);
    sub.watch = b;
    assert_int_equal(run_until(&sub, NULL, both_up, 10000), 0);
    uint64_t t0 = clock_mono_ns();
    assert_int_equal(run_until(&sub, NULL, idle_pings, 6000), 0);
    assert_true(clock_mono_ns() - t0 >= 1000000000ull); /* not a ping per turn */
    assert_int_equal(mqttc_get_state(sub.m), MQTTC_UP);
    assert_int_equal(count_in_log(b, "mqttc-idle has exceeded timeout"), 0);
    assert_int_equal(count_in_log(b, "Client mqttc-idle disconnected"), 0);
    mqttc_destroy(sub.m);
}

static int got_all_10(peer *a, peer *b)
{
    unsigned distinct = 0;
    for (int i = 0; i < 10; i++)
        distinct += a->seen[i] > 0;
    return distinct == 10 && mqttc_inflight(b->m) == 0;
}

static int pub_down(peer *a, peer *b)
{
    (void)a;
    return mqttc_get_state(b->m) == MQTTC_DOWN;
}

static int both_down(peer *a, peer *b)
{
    return mqttc_get_state(a->m) == MQTTC_DOWN && mqttc_get_state(b->m) == MQTTC_DOWN;
}

/* Persistent sessions across a broker crash: the publisher's 10 QoS 1 publishes that the
 * (stopped) broker never acknowledged go out again with DUP after the restart, and the
 * persistent subscriber gets all 10. */
static void test_mqttc_persistent_session_redelivers_with_dup(void **state)
{
    broker *b = *state;
    peer sub, pub;
    peer_init(&sub, b, "mqttc-psub", 4, false, "p/#", 1);
    peer_init(&pub, b, "mqttc-ppub", 4, false, NULL, 0);
    assert_int_equal(run_until(&sub, &pub, both_up, 10000), 0);
    /* a clean stop saves both sessions to the broker's persistence file */
    broker_stop(b, SIGTERM);
    assert_int_equal(run_until(&sub, &pub, both_down, 5000), 0);
    assert_int_equal(broker_start(b), 0);
    assert_int_equal(run_until(&sub, &pub, both_up, 10000), 0);
    assert_true(mqttc_session_present(pub.m));
    /* stopped: it takes nothing from its sockets, so nothing is acknowledged */
    kill(b->pid, SIGSTOP);
    for (int i = 0; i < 10; i++) {
        char pl[16];
        int n = snprintf(pl, sizeof(pl), "1:%d", i);
        assert_int_equal(mqttc_publish(pub.m, "p/x", 3, pl, (size_t)n, 1, false, (void *)2), 0);
    }
    for (int i = 0; i < 20; i++)
        (void)mqttc_run(pub.m, 5);
    assert_int_equal(mqttc_inflight(pub.m), 10);
    broker_stop(b, SIGKILL); /* the crash: the sessions on disk are those of the clean stop */
    assert_int_equal(run_until(&sub, &pub, pub_down, 5000), 0);
    assert_int_equal(broker_start(b), 0);
    assert_int_equal(run_until(&sub, &pub, got_all_10, 15000), 0);
    assert_true(mqttc_session_present(pub.m));
    assert_int_equal(pub.published[1], 10);
    assert_int_equal(count_in_log(b, "Received PUBLISH from mqttc-ppub (d1, q1"), 10);
    mqttc_destroy(sub.m);
    mqttc_destroy(pub.m);
}

static size_t big_got;
static int on_big(void *arg, const mqtt_pkt *p)
{
    (void)arg;
    for (size_t i = 0; i < p->payload_len; i++)
        if (p->payload[i] != (uint8_t)(i * 7))
            fail_msg("byte %zu of the large payload differs", i);
    big_got = p->payload_len;
    return 0;
}

static int big_arrived(peer *a, peer *b)
{
    (void)a, (void)b;
    return big_got != 0;
}

/* A packet larger than the 256 KiB read buffer: it grows, the packet arrives whole, and the
 * next small one still decodes. */
static void test_mqttc_large_packet(void **state)
{
    broker *b = *state;
    peer sub, pub;
    peer_setup(&sub, b, "mqttc-bigsub", 5, true);
    peer_start(&sub, "big", 1, on_big);
    peer_init(&pub, b, "mqttc-bigpub", 5, true, NULL, 0);
    assert_int_equal(run_until(&sub, &pub, both_up, 10000), 0);
    size_t n = 3u << 20;
    uint8_t *pl = malloc(n);
    assert_non_null(pl);
    for (size_t i = 0; i < n; i++)
        pl[i] = (uint8_t)(i * 7);
    big_got = 0;
    assert_int_equal(mqttc_publish(pub.m, "big", 3, pl, n, 1, false, (void *)2), 0);
    assert_int_equal(run_until(&sub, &pub, big_arrived, 20000), 0);
    assert_int_equal(big_got, n);
    big_got = 0;
    assert_int_equal(mqttc_publish(pub.m, "big", 3, pl, 10, 1, false, (void *)2), 0);
    assert_int_equal(run_until(&sub, &pub, big_arrived, 10000), 0);
    assert_int_equal(big_got, 10);
    free(pl);
    mqttc_destroy(sub.m);
    mqttc_destroy(pub.m);
}

/* mqttc_arm_futexv (the relay's one-thread wait, IORING_OP_FUTEX_WAITV filled by hand): the
 * armed wait completes on a FUTEX_WAKE of its word, or at once when the word is not at its
 * expected value; until it completed, arming again says -EALREADY. No broker needed: the
 * client is never started. */
static void test_mqttc_futexv_wait(void **state)
{
    broker *b = *state;
    if (!mqttc_futexv_supported())
        skip(); /* Linux < 6.7: the relay keeps its I/O threads */
    peer pe;
    peer_setup(&pe, b, "mqttc-futex", 5, true);
    mqttc_opts o = {.c = &pe.c, .client_id = pe.id, .log_comp = "test", .arg = &pe};
    assert_int_equal(mqttc_create(&o, &pe.m), 0);
    uint32_t word = 5;
    struct futex_waitv v = {.val = 5, .uaddr = (uint64_t)(uintptr_t)&word, .flags = FUTEX_32};
    assert_int_equal(mqttc_arm_futexv(pe.m, &v, 1), 0);
    assert_int_equal(mqttc_arm_futexv(pe.m, &v, 1), -EALREADY);
    assert_int_equal(mqttc_wait(pe.m, 0), 0); /* submitted: the kernel waits on word now */
    assert_int_equal(mqttc_reap(pe.m), 0);
    assert_int_equal(mqttc_arm_futexv(pe.m, &v, 1), -EALREADY);
    __atomic_fetch_add(&word, 1, __ATOMIC_SEQ_CST);
    futex_wake(&word, 1);
    assert_int_equal(mqttc_wait(pe.m, 10000), 0);
    assert_int_equal(mqttc_reap(pe.m), 1);
    /* a word already past its expected value: completes at once */
    assert_int_equal(mqttc_arm_futexv(pe.m, &v, 1), 0);
    assert_int_equal(mqttc_wait(pe.m, 10000), 0);
    assert_int_equal(mqttc_reap(pe.m), 1);
    assert_int_equal(mqttc_arm_futexv(pe.m, &v, 0), -EINVAL);
    mqttc_destroy(pe.m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST_ST(test_mqttc_qos_both_ways_v311),
        TEST_ST(test_mqttc_qos_both_ways_v5),
        TEST_ST(test_mqttc_qos_both_ways_paced_v5),
        TEST_ST(test_mqttc_drop_on_loss),
        TEST_ST(test_mqttc_oversized_publish_refused_for_good),
        TEST_ST(test_mqttc_puback_after_batch_done),
        TEST_ST(test_mqttc_keepalive_idle),
        TEST_ST(test_mqttc_rx_coalesce),
        TEST_ST(test_mqttc_quiet_send),
        TEST_ST(test_mqttc_large_packet),
        TEST_ST(test_mqttc_persistent_session_redelivers_with_dup),
        TEST_ST(test_mqttc_futexv_wait),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
