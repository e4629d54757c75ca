/* mfpub: the test publisher of the integration, fault and benchmark tests (paho MQTTAsync).
 *
 * Publishes N messages of S bytes, round-robin over one or more topics, each carrying a test
 * payload (testlib.h: source id, per-source sequence 0..N-1, monotonic send time, checksum),
 * either as fast as possible with a bounded in-flight window counted through
 * onSuccess/onFailure (BASELINES pitfall 1: an unbounded paho queue collapses QoS 1), or at a
 * fixed rate. Waits for every completion (PUBACK at QoS 1) before it exits.
 *
 * usage: mfpub [-H host] [-p port] [-c client_id] [-t topic]... [-T prefix -k K] [-n N]
 *              [-s size] [-q qos] [-r rate] [-w window] [-i source_id] [-R] [-W secs] [-A]
 *              [-j [-J field] [-V v1,v2,...]] [-m text] [-u user:password]
 * -m: every payload is this text (no test header: mfsub counts it as "other").
 * -A (broker restart tests): paho reconnects automatically (1-2 s) and every message whose
 * publish failed or was refused while disconnected is published again (same sequence number,
 * new send time), so the subscriber sees each of 0..N-1 at least once; `resent` counts them.
 * Last line: RESULT sent=.. ok=.. fail=.. send_err=.. resent=.. timed_out=.. secs=.. rate=..;
 * exit 0 when all N were completed (PUBACKed at QoS 1) within -W seconds (default 120).
 */
#include "testlib.h"
#include "toolconn.h"

#include <MQTTAsync.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <unistd.h>

#define MAX_TOPICS 4096

/* Shared with paho's threads; everything under mu. */
typedef struct pub_state {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long ok, fail, requeued;
    int connected, conn_failed, disconnected;
    int online;  /* connected now (-A: between connectionLost and the reconnect) */
    int autore;  /* -A: reconnect and publish failed messages again */
    long *retry; /* -A: sequence numbers whose publish failed, to send again */
    size_t n_retry, cap_retry;
    int port;
} pub_state;

/* Per-message context of paho's callbacks: which sequence number completed. */
typedef struct msg_ctx {
    pub_state *st;
    long seq;
} msg_ctx;

static void cv_wait_ms(pub_state *st, int ms)
{
    toolconn_cond_wait_ms(&st->cv, &st->mu, ms);
}

static void bump(pub_state *st, long *counter)
{
    pthread_mutex_lock(&st->mu);
    (*counter)++;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
}

static void on_pub_ok(void *ctx, MQTTAsync_successData *r)
{
    (void)r;
    msg_ctx *m = ctx;
    bump(m->st, &m->st->ok);
}

/* Under mu: queue seq to be published again (-A). 0, or -1 when out of memory. */
static int requeue(pub_state *st, long seq)
{
    if (st->n_retry == st->cap_retry) {
        size_t cap = st->cap_retry ? st->cap_retry * 2 : 256;
        long *p = realloc(st->retry, cap * sizeof(*p));
        if (!p)
            return -1;
        st->retry = p;
        st->cap_retry = cap;
    }
    st->retry[st->n_retry++] = seq;
    return 0;
}

static void on_pub_fail(void *ctx, MQTTAsync_failureData *r)
{
    msg_ctx *m = ctx;
    pub_state *st = m->st;
    static int logged;
    pthread_mutex_lock(&st->mu);
    if (!logged++)
        fprintf(stderr, "mfpub: publish of seq %ld failed rc=%d%s\n", m->seq, r ? r->code : -1,
                st->autore ? " (will publish it again)" : "");
    if (st->autore && requeue(st, m->seq) == 0)
        st->requeued++;
    else
        st->fail++;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
}

static void set_flag(pub_state *st, int *flag)
{
    toolconn_set_flag(&st->mu, &st->cv, flag);
}

static void on_conn_ok(void *ctx, MQTTAsync_successData *r)
{
    (void)r;
    pub_state *st = ctx;
    testlib_nodelay_peer_port(st->port);
    pthread_mutex_lock(&st->mu);
    st->connected = st->online = 1;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
}

/* After every connect, the first included (paho's automatic reconnect under -A). */
static void on_connected(void *ctx, char *cause)
{
    (void)cause;
    pub_state *st = ctx;
    /* a new socket: Nagle is back on (BASELINES pitfall 5) */
    testlib_nodelay_peer_port(st->port);
    set_flag(st, &st->online);
}

static void on_conn_fail(void *ctx, MQTTAsync_failureData *r)
{
    pub_state *st = ctx;
    fprintf(stderr, "mfpub: connect failed rc=%d %s\n", r ? r->code : -1,
            r && r->message ? r->message : "");
    set_flag(st, &st->conn_failed);
}

static void on_disc(void *ctx, MQTTAsync_successData *r)
{
    (void)r;
    pub_state *st = ctx;
    set_flag(st, &st->disconnected);
}

static void on_disc_fail(void *ctx, MQTTAsync_failureData *r)
{
    (void)r;
    pub_state *st = ctx;
    set_flag(st, &st->disconnected);
}

static void conn_lost(void *ctx, char *cause)
{
    pub_state *st = ctx;
    fprintf(stderr, "mfpub: connection lost: %s%s\n", cause ? cause : "?",
            st->autore ? " (reconnecting)" : "");
    pthread_mutex_lock(&st->mu);
    st->online = 0;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
}

static int msg_arrived(void *ctx, char *topic, int tlen, MQTTAsync_message *m)
{
    (void)ctx;
    (void)tlen;
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: mfpub [-H host] [-p port] [-c client_id] [-t topic]... [-T prefix -k K]\n"
            "             [-n N] [-s size>=%d] [-q 0|1|2] [-r msg/s (0: window)] [-w window]\n"
            "             [-i source_id] [-R (retain)] [-W max_secs]\n"
            "             [-A (reconnect and publish failed messages again)]\n"
            "             [-u user:password] [-m text (literal payload, no test header)]\n"
            "             [-j (JSON payload) [-J value_field] [-V v1,v2,... (values, cycled)]]\n",
            TESTLIB_MIN_PAYLOAD);
}

int main(int argc, char **argv)
{
    const char *prefix = NULL, *vfield = "v", *text = NULL;
    char *values = NULL;
    const char *topics[MAX_TOPICS];
    toolconn tc = TOOLCONN_INIT("mfpub", topics);
    long n = 1000, size = 64, window = 500, k = 0;
    int retain = 0, json = 0, autore = 0, opt;
    uint32_t src = 0;
    double rate = 0, max_secs = 120;

    while ((opt = getopt(argc, argv, "H:p:c:t:T:k:n:s:q:r:w:i:RW:jJ:V:Au:m:h")) != -1) {
        switch (opt) {
        case 'T':
            prefix = optarg;
            break;
        case 'k':
            k = atol(optarg);
            break;
        case 'n':
            n = atol(optarg);
            break;
        case 's':
            size = atol(optarg);
            break;
        case 'r':
            rate = atof(optarg);
            break;
        case 'w':
            window = atol(optarg);
            break;
        case 'i':
            src = (uint32_t)strtoul(optarg, NULL, 0);
            break;
        case 'R':
            retain = 1;
            break;
        case 'W':
            max_secs = atof(optarg);
            break;
        case 'j':
            json = 1;
            break;
        case 'J':
            vfield = optarg;
            break;
        case 'V':
            values = optarg;
            break;
        case 'A':
            autore = 1;
            break;
        case 'm':
            text = optarg;
            break;
        default:
            if (toolconn_opt(&tc, opt, optarg) > 0)
                break;
            usage();
            return 2;
        }
    }
    size_t n_topics = tc.n_topics;
    int qos = tc.qos;
    /* -T prefix -k K: K generated topics; they are kept in one heap block for the run */
    char *gen = NULL;
    if (prefix) {
        if (k < 1 || (size_t)k + n_topics > MAX_TOPICS) {
            fprintf(stderr, "mfpub: -T needs -k 1..%d\n", MAX_TOPICS);
            return 2;
        }
        size_t each = strlen(prefix) + 24;
        gen = malloc(each * (size_t)k);
        if (!gen)
            return 1;
        for (long i = 0; i < k; i++) {
            snprintf(gen + each * (size_t)i, each, "%s%ld", prefix, i);
            topics[n_topics++] = gen + each * (size_t)i;
        }
    }
    if (n_topics == 0)
        topics[n_topics++] = "test/mfpub";
    if ((!json && !text && size < TESTLIB_MIN_PAYLOAD) || qos < 0 || qos > 2 || n < 0 ||
        window < 1) {
        usage();
        free(gen);
        return 2;
    }

    /* -V: comma-separated values inserted verbatim as the JSON value field, cycled */
    char *vals[256];
    size_t n_vals = 0;
    if (values) {
        for (char *save = NULL, *v = strtok_r(values, ",", &save); v && n_vals < 256;
             v = strtok_r(NULL, ",", &save))
            vals[n_vals++] = v;
    }

    toolconn_finish(&tc);

    pub_state st = {.mu = PTHREAD_MUTEX_INITIALIZER,
                    .cv = PTHREAD_COND_INITIALIZER,
                    .autore = autore,
                    .port = tc.port};
    MQTTAsync c;
    if (toolconn_create(&tc, &c) < 0) {
        free(gen);
        return 1;
    }
    MQTTAsync_setCallbacks(c, &st, conn_lost, msg_arrived, NULL);
    MQTTAsync_setConnected(c, &st, on_connected);

    MQTTAsync_connectOptions co = toolconn_options(&tc);
    co.keepAliveInterval = 60;
    co.cleansession = 1;
    co.maxInflight = window > 65535 ? 65535 : (int)(window < 10 ? 10 : window);
    co.onSuccess = on_conn_ok;
    co.onFailure = on_conn_fail;
    co.context = &st;
    if (autore) {
        co.automaticReconnect = 1;
        co.minRetryInterval = 1; /* paho's unit is whole seconds */
        co.maxRetryInterval = 2;
    }
    int rc = MQTTAsync_connect(c, &co);
    if (rc != MQTTASYNC_SUCCESS) {
        fprintf(stderr, "mfpub: MQTTAsync_connect rc=%d\n", rc);
        MQTTAsync_destroy(&c);
        free(gen);
        return 1;
    }
    uint64_t t_conn = testlib_now_ns();
    pthread_mutex_lock(&st.mu);
    while (!st.connected && !st.conn_failed && testlib_now_ns() - t_conn < 10000000000ull)
        cv_wait_ms(&st, 50);
    int connected = st.connected;
    pthread_mutex_unlock(&st.mu);
    if (!connected) {
        fprintf(stderr, "mfpub: not connected to %s\n", tc.uri);
        printf("RESULT sent=0 ok=0 fail=0 send_err=0 resent=0 timed_out=0 secs=0 rate=0 qos=%d "
               "size=0 topics=%zu src=%u\n",
               qos, n_topics, src);
        MQTTAsync_destroy(&c);
        free(gen);
        return 1;
    }

    size_t cap = text ? strlen(text) + 1 : json ? 512 : (size_t)size;
    unsigned char *buf = calloc(1, cap);
    if (!buf) {
        MQTTAsync_destroy(&c);
        free(gen);
        return 1;
    }
    msg_ctx *ctxs = calloc(n > 0 ? (size_t)n : 1, sizeof(*ctxs));
    if (!ctxs) {
        MQTTAsync_destroy(&c);
        free(buf);
        free(gen);
        return 1;
    }
    uint64_t t0 = testlib_now_ns();
    uint64_t deadline = t0 + (uint64_t)(max_secs * 1e9);
    double period_ns = rate > 0 ? 1e9 / rate : 0;
    long sent = 0, send_err = 0, next = 0, resent = 0;
    int timed_out = 0, gave_up = 0;

    /* Each sequence number ends as ok, fail (no -A) or send_err (no -A); with -A a failed one
     * goes back into st.retry and is published again after the reconnect. */
    for (;;) {
        long seq;
        pthread_mutex_lock(&st.mu);
        for (;;) {
            long final = st.ok + st.fail + send_err;
            long outstanding = sent - st.ok - st.fail - st.requeued;
            if (final >= n || gave_up) {
                seq = -1;
                break;
            }
            if (testlib_now_ns() >= deadline) {
                timed_out = 1;
                seq = -1;
                break;
            }
            int can_send = outstanding < window && (st.online || !autore);
            if (can_send && st.n_retry > 0) {
                seq = st.retry[--st.n_retry];
                resent++;
                break;
            }
            if (can_send && next < n) {
                seq = next++;
                break;
            }
            cv_wait_ms(&st, 10);
        }
        pthread_mutex_unlock(&st.mu);
        if (seq < 0)
            break;
        if (rate > 0 && seq == next - 1)
            testlib_sleep_until_ns(t0 + (uint64_t)(period_ns * (double)seq));

        MQTTAsync_message m = MQTTAsync_message_initializer;
        m.qos = qos;
        m.retained = retain;
        m.payload = buf;
        uint64_t now = testlib_now_ns();
        if (text) {
            memcpy(buf, text, cap);
            m.payloadlen = (int)(cap - 1);
        } else if (json) {
            char vbuf[32];
            const char *v = vbuf;
            if (n_vals)
                v = vals[(size_t)seq % n_vals];
            else
                snprintf(vbuf, sizeof vbuf, "%ld", seq);
            int len =
                snprintf((char *)buf, cap, "{\"src\":%u,\"seq\":%ld,\"t\":%" PRIu64 ",\"%s\":%s}",
                         src, seq, now, vfield, v);
            m.payloadlen = len < (int)cap ? len : (int)cap - 1;
        } else {
            testlib_fill(buf, cap, src, (uint64_t)seq, now);
            m.payloadlen = (int)cap;
        }
        const char *topic = topics[(size_t)seq % n_topics];
        MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
        ro.onSuccess = on_pub_ok;
        ro.onFailure = on_pub_fail;
        ctxs[seq].st = &st;
        ctxs[seq].seq = seq;
        ro.context = &ctxs[seq];
        int tries = 0;
        while ((rc = MQTTAsync_sendMessage(c, topic, &m, &ro)) != MQTTASYNC_SUCCESS) {
            /* a full paho queue (rare with the window) is retried; anything else ends it */
            if (rc == MQTTASYNC_DISCONNECTED || ++tries > 1000 || testlib_now_ns() >= deadline)
                break;
            usleep(1000);
        }
        if (rc == MQTTASYNC_SUCCESS) {
            sent++;
            continue;
        }
        pthread_mutex_lock(&st.mu);
        if (autore && rc == MQTTASYNC_DISCONNECTED && requeue(&st, seq) == 0) {
            st.online = 0; /* wait for on_connected */
        } else {
            if (!send_err++)
                fprintf(stderr, "mfpub: sendMessage rc=%d at seq %ld\n", rc, seq);
            if (rc == MQTTASYNC_DISCONNECTED)
                gave_up = 1;
        }
        pthread_mutex_unlock(&st.mu);
    }

    /* every submitted message completes (PUBACK, or written for QoS 0) or fails */
    pthread_mutex_lock(&st.mu);
    while (sent - st.ok - st.fail - st.requeued > 0 && testlib_now_ns() < deadline + 10000000000ull)
        cv_wait_ms(&st, 10);
    long ok = st.ok, fail = st.fail;
    pthread_mutex_unlock(&st.mu);
    double secs = (double)(testlib_now_ns() - t0) / 1e9;

    printf("RESULT sent=%ld ok=%ld fail=%ld send_err=%ld resent=%ld timed_out=%d secs=%.3f "
           "rate=%.0f qos=%d size=%ld topics=%zu src=%u\n",
           sent, ok, fail, send_err, resent, timed_out, secs, secs > 0 ? (double)ok / secs : 0.0,
           qos,
           text   ? (long)strlen(text)
           : json ? 0
                  : size,
           n_topics, src);
    fflush(stdout);

    MQTTAsync_disconnectOptions dopt = MQTTAsync_disconnectOptions_initializer;
    dopt.timeout = 2000;
    dopt.onSuccess = on_disc;
    dopt.onFailure = on_disc_fail;
    dopt.context = &st;
    if (MQTTAsync_disconnect(c, &dopt) == MQTTASYNC_SUCCESS) {
        uint64_t t_d = testlib_now_ns();
        pthread_mutex_lock(&st.mu);
        while (!st.disconnected && testlib_now_ns() - t_d < 3000000000ull)
            cv_wait_ms(&st, 20);
        pthread_mutex_unlock(&st.mu);
    }
    MQTTAsync_destroy(&c);
    free(ctxs);
    free(st.retry);
    free(buf);
    free(gen);
    return (ok == n && fail == 0) ? 0 : 1;
}
