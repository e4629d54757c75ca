/* conn: the relay's paho MQTTAsync connection to one target client; see conn.h. */
#include "conn.h"

#include "conn_uring.h"
#include "mqttc.h"
#include "nodelay.h"

#include <MQTTAsync.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "mqtt_paho.h"
#include "mqtt_tls.h"
#include "mqtt_why.h"

#define COMP "relay"
/* How long a replaced paho handle is kept before MQTTAsync_destroy: paho calls
 * connectionLost and then still touches its client struct on the way out of the callback. */
#define ZOMBIE_NS         1000000000ull
#define CONNECT_TIMEOUT_S 10
/* MQTT 3.1.1 has no Receive Maximum, yet brokers bound the QoS 2 publishes a client may have
 * between PUBLISH and PUBREL: mosquitto's max_inflight_messages (default 20). With 20 of them
 * unreleased, mosquitto refuses the next QoS 2 and even a QoS 1 (quota exceeded) and, 3.1.1
 * having no reason codes, closes the connection, again each time the relay replays its
 * window (measured, mosquitto 2.0.11). So a QoS 2 publish on a 3.1.1 connection is handed to
 * paho only while fewer than this many QoS>0 publishes are outstanding: QoS 1 and 2 share
 * one count here, which bounds the unreleased QoS 2 to this many, one below the broker's
 * default limit; QoS 1 alone keeps its large window. A broker configured below 20 needs
 * mqtt_version 5, whose Receive Maximum the relay honours exactly. */
#define V311_QOS2_INFLIGHT 19

struct conn {
    const cfg_client *cl;
    const char *instance;
    cq *q;
    uint16_t index;
    int v5;
    enum conn_state state;
    int first_done;
    MQTTAsync h;
    MQTTAsync zombie;
    uint64_t zombie_until;
    uint64_t retry_at;   /* CONN_DOWN: when to connect again */
    uint64_t backoff_ns; /* the next delay after a failure */
    uint64_t min_ns, max_ns;
    unsigned failures; /* consecutive failed attempts, for log rate limiting */
    int recv_max;      /* QoS>0 publishes the server accepts in flight (MQTT 5 CONNACK) */
    int qos_out;       /* QoS>0 publishes handed to paho and not finished */
    char client_id[512];
    mqtt_tls *tls;        /* TLS options; they outlive every connect on both handles */
    conn_uring *u;        /* the io_uring kind (conn_uring.h): no paho handle then */
    int sndbuf;           /* conn_set_sndbuf: send buffer wanted after each connect, 0 = default */
    uint64_t up_ns;       /* monotonic time the current connection came up */
    unsigned short_lived; /* connections in a row that ended within SHORT_LIVED_NS */
};

/* a connection that ends this soon after its connect counts towards a takeover suspicion (as
 * the ingress's, ingress/subscriber.c) */
#define SHORT_LIVED_NS (5ull * 1000000000ull)

/* ---- paho callbacks: paho's threads; they only post to the completion queue ---- */

static void on_conn_ok(void *ctx, MQTTAsync_successData *d)
{
    (void)d;
    cq_conn_event(ctx, CQ_EV_UP, 0);
}

/* the whole failure for the log line, then the event (a code travels with it, as before) */
static void conn_failed(void *ctx, const mqtt_why_fail *f)
{
    cq_conn_why(ctx, f);
    cq_conn_event(ctx, CQ_EV_CONNFAIL, mqtt_why_code(f->code, f->message));
}

static void on_conn_fail(void *ctx, MQTTAsync_failureData *d)
{
    mqtt_why_fail f;
    mqtt_paho_failure(&f, d);
    conn_failed(ctx, &f);
}

static void on_conn_ok5(void *ctx, MQTTAsync_successData5 *d)
{
    /* the server's Receive Maximum (default 65535): paho holds back QoS>0 publishes beyond
     * it, and a held-back one blocks every later publish of the client in paho's queue, QoS 0
     * included; the conn never hands paho more than this (see conn_publish) */
    int rm =
        d ? MQTTProperties_getNumericValue(&d->properties, MQTTPROPERTY_CODE_RECEIVE_MAXIMUM) : 0;
    if (rm <= 0 || rm > 65535)
        rm = 65535;
    cq_conn_event(ctx, CQ_EV_UP, rm);
}

static void on_conn_fail5(void *ctx, MQTTAsync_failureData5 *d)
{
    mqtt_why_fail f;
    mqtt_paho_failure5(&f, d);
    conn_failed(ctx, &f);
}

static void on_lost(void *ctx, char *cause)
{
    (void)cause; /* always NULL in paho 1.3 */
    cq_conn_event(ctx, CQ_EV_LOST, 0);
}

/* MQTT 5: the broker said why it closes the connection (e.g. 0x8E session taken over); paho's
 * connectionLost that follows carries no cause, so the reason is kept for its log line */
static void on_disconnected5(void *ctx, MQTTProperties *props, enum MQTTReasonCodes rc)
{
    (void)props;
    mqtt_why_fail f = {.reason = (int)rc};
    cq_conn_why(ctx, &f);
}

static void on_disc_ok(void *ctx, MQTTAsync_successData *d)
{
    (void)d;
    cq_conn_event(ctx, CQ_EV_DISC, 0);
}

static void on_disc_fail(void *ctx, MQTTAsync_failureData *d)
{
    (void)d;
    cq_conn_event(ctx, CQ_EV_DISC, 0);
}

static void on_disc_ok5(void *ctx, MQTTAsync_successData5 *d)
{
    (void)d;
    cq_conn_event(ctx, CQ_EV_DISC, 0);
}

static void on_disc_fail5(void *ctx, MQTTAsync_failureData5 *d)
{
    (void)d;
    cq_conn_event(ctx, CQ_EV_DISC, 0);
}

static void on_pub_ok(void *ctx, MQTTAsync_successData *d)
{
    (void)d;
    cq_complete(ctx, 1);
}

static void on_pub_fail(void *ctx, MQTTAsync_failureData *d)
{
    (void)d;
    cq_complete(ctx, 0);
}

static void on_pub_ok5(void *ctx, MQTTAsync_successData5 *d)
{
    (void)d;
    cq_complete(ctx, 1);
}

static void on_pub_fail5(void *ctx, MQTTAsync_failureData5 *d)
{
    (void)d;
    cq_complete(ctx, 0);
}

/* paho requires a messageArrived callback; the relay subscribes to nothing */
static int on_msg(void *ctx, char *topic, int topic_len, MQTTAsync_message *m)
{
    (void)ctx;
    (void)topic_len;
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

/* ---- main loop ---- */

static uint64_t secs_to_ns(double s)
{
    if (s <= 0)
        return 1000000; /* 1 ms floor: never a hot reconnect loop */
    return (uint64_t)(s * 1e9);
}

static int make_handle(conn *c, MQTTAsync *out)
{
    int rc;
    MQTTAsync h = NULL;
    if (c->v5) {
        /* createWithOptions defaults maxBufferedMessages to 100, which also applies while
         * connected (BASELINES pitfall 3): lift it; cq bounds what is outstanding */
        MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
        co.maxBufferedMessages = INT_MAX;
        rc = MQTTAsync_createWithOptions(&h, c->cl->uri, c->client_id, MQTTCLIENT_PERSISTENCE_NONE,
                                         NULL, &co);
    } else {
        /* MQTTAsync_create: no buffered-message cap at all (pitfall 3) */
        rc = MQTTAsync_create(&h, c->cl->uri, c->client_id, MQTTCLIENT_PERSISTENCE_NONE, NULL);
    }
    if (rc != MQTTASYNC_SUCCESS) {
        log_error(COMP, "MQTTAsync_create(%s, client id %s): paho error %d%s", c->cl->uri,
                  c->client_id, rc,
                  rc == MQTTASYNC_BAD_PROTOCOL || rc == MQTTASYNC_SSL_NOT_SUPPORTED
                      ? " (this paho library has no TLS: it must be built against "
                        "libpaho-mqtt3as)"
                      : "");
        return -EINVAL;
    }
    rc = MQTTAsync_setCallbacks(h, cq_conn_ctx(c->q, c->index), on_lost, on_msg, NULL);
    if (rc == MQTTASYNC_SUCCESS && c->v5)
        rc = MQTTAsync_setDisconnected(h, cq_conn_ctx(c->q, c->index), on_disconnected5);
    if (rc != MQTTASYNC_SUCCESS) {
        log_error(COMP, "MQTTAsync_setCallbacks(%s): paho error %d", c->client_id, rc);
        MQTTAsync_destroy(&h);
        return -EINVAL;
    }
    *out = h;
    return 0;
}

int conn_create(const cfg_client *cl, uint16_t index, const char *instance,
                enum cfg_mqtt_io mqtt_io, enum conn_uring_io io, int efd, cq *q, conn **out)
{
    *out = NULL;
    conn *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->cl = cl;
    c->instance = instance;
    c->q = q;
    c->index = index;
    c->v5 = cl->mqtt_version == 5;
    c->state = CONN_DOWN;
    c->min_ns = secs_to_ns(cl->reconnect_min);
    c->max_ns = secs_to_ns(cl->reconnect_max);
    if (c->max_ns < c->min_ns)
        c->max_ns = c->min_ns;
    c->backoff_ns = c->min_ns;
    int n = snprintf(c->client_id, sizeof(c->client_id), "%s-relay-%s", cl->client_id, instance);
    if (n < 0 || (size_t)n >= sizeof(c->client_id)) {
        log_error(COMP, "client %s: relay client id too long", cl->client_id);
        free(c);
        return -EINVAL;
    }
    int rc;
    if (mqttc_wanted(mqtt_io, cl, COMP)) {
        if ((rc = conn_uring_create(cl, c->client_id, q, index, io, efd, &c->u)) != 0) {
            free(c);
            return rc;
        }
        *out = c;
        return 0;
    }
    rc = mqtt_tls_create(cl, COMP, &c->tls);
    if (rc) {
        free(c);
        return rc;
    }
    rc = make_handle(c, &c->h);
    if (rc) {
        mqtt_tls_destroy(c->tls);
        free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void conn_destroy(conn *c)
{
    if (!c)
        return;
    conn_uring_destroy(c->u);
    if (c->zombie)
        MQTTAsync_destroy(&c->zombie);
    if (c->h)
        MQTTAsync_destroy(&c->h);
    mqtt_tls_destroy(c->tls); /* after the handles that may still read it */
    free(c);
}

static void schedule_retry(conn *c, uint64_t now, uint64_t delay)
{
    c->state = CONN_DOWN;
    c->retry_at = now + delay;
}

/* code: what MQTTAsync_connect returned, or the failure event's code; paho's own account
 * (cq_conn_why, from onFailure) is preferred when there is one */
static void fail_attempt(conn *c, uint64_t now, int code)
{
    c->first_done = 1;
    c->failures++;
    mqtt_why_fail f;
    cq_conn_why_take(c->q, c->index, &f);
    if (!f.code && !f.reason)
        f.code = code;
    /* the first failure and then every 10th: a broker down for an hour is one line a minute
     * at the default 30 s backoff, not one per attempt */
    char detail[192];
    if (c->failures == 1 || c->failures % 10 == 0)
        log_warn(COMP, "client %s: connect to %s failed: %s (%s, attempt %u); retrying in %.1f s",
                 c->cl->client_id, c->cl->uri, mqtt_paho_why_connect(&f),
                 mqtt_paho_detail(&f, detail, sizeof(detail)), c->failures,
                 (double)c->backoff_ns / 1e9);
    schedule_retry(c, now, c->backoff_ns);
    c->backoff_ns *= 2;
    if (c->backoff_ns > c->max_ns)
        c->backoff_ns = c->max_ns;
}

static void connect_now(conn *c, uint64_t now)
{
    MQTTAsync_connectOptions o = MQTTAsync_connectOptions_initializer;
    MQTTAsync_connectOptions o5 = MQTTAsync_connectOptions_initializer5;
    MQTTAsync_connectOptions *opt = c->v5 ? &o5 : &o;
    void *ctx = cq_conn_ctx(c->q, c->index);

    opt->keepAliveInterval = c->cl->keepalive;
    if (c->v5) {
        opt->cleanstart = c->cl->clean_session;
        opt->MQTTVersion = MQTTVERSION_5;
    } else {
        opt->cleansession = c->cl->clean_session;
        opt->MQTTVersion = MQTTVERSION_3_1_1;
    }
    static const mqtt_paho_cbs cbs = {on_conn_ok, on_conn_fail, on_conn_ok5, on_conn_fail5};
    mqtt_paho_connect(opt, c->v5, &cbs, ctx);
    mqtt_why_fail stale; /* an account of an earlier attempt must not explain this one */
    cq_conn_why_take(c->q, c->index, &stale);
    opt->connectTimeout = CONNECT_TIMEOUT_S;
    opt->automaticReconnect = 0; /* ours: see conn.h */
    opt->username = c->cl->username;
    opt->password = c->cl->password;
    mqtt_tls_apply(c->tls, opt);
    int rc = MQTTAsync_connect(c->h, opt);
    if (rc != MQTTASYNC_SUCCESS) {
        fail_attempt(c, now, rc);
        return;
    }
    c->state = CONN_CONNECTING;
}

void conn_start(conn *c, uint64_t now_ns)
{
    if (c->u) {
        c->state = CONN_CONNECTING;
        if (conn_uring_start(c->u) < 0) {
            c->first_done = 1;
            c->state = CONN_DOWN;
        }
        return;
    }
    connect_now(c, now_ns);
}

static void on_up(conn *c)
{
    c->first_done = 1;
    c->state = CONN_UP;
    c->recv_max = c->v5 ? cq_conn_code(c->q, c->index) : 65535;
    if (c->recv_max <= 0)
        c->recv_max = 65535;
    c->backoff_ns = c->min_ns;
    int n = nodelay_set_peer_port(c->cl->port);
    if (c->sndbuf > 0 && nodelay_set_sndbuf_peer_port(c->cl->port, c->sndbuf) < 1)
        log_info(COMP,
                 "client %s: the socket send buffer stays below the largest record (%d bytes; "
                 "net.core.wmem_max, or CAP_NET_ADMIN): a large publish goes out in several "
                 "turns of paho's thread, about 1 s each",
                 c->cl->client_id, c->sndbuf);
    c->up_ns = clock_mono_ns();
    log_info(COMP, "client %s: connected to %s as %s%s (TCP_NODELAY on %d socket%s)",
             c->cl->client_id, c->cl->uri, c->client_id,
             c->failures ? " after failed attempts" : "", n, n == 1 ? "" : "s");
    c->failures = 0;
}

static void on_connection_lost(conn *c, uint64_t now)
{
    /* the broker's reason (MQTT 5 DISCONNECT), read before the handle's epoch ends */
    mqtt_why_fail f;
    cq_conn_why_take(c->q, c->index, &f);
    /* every publish paho still holds on this handle is given up and published again later,
     * in ring order, on a fresh handle */
    cq_fail_conn(c->q, c->index);
    cq_conn_next_epoch(c->q, c->index);
    if (c->zombie)
        MQTTAsync_destroy(&c->zombie);
    MQTTAsync fresh = NULL;
    if (make_handle(c, &fresh) == 0) {
        c->zombie = c->h;
        c->zombie_until = now + ZOMBIE_NS;
        c->h = fresh;
    }
    /* else: keep the old handle; reconnecting on it still works, only ordering after a
     * loss is weaker */
    uint64_t up_ns = c->up_ns && now > c->up_ns ? now - c->up_ns : 0;
    c->short_lived = up_ns < SHORT_LIVED_NS ? c->short_lived + 1 : 0;
    if (f.reason)
        log_warn(COMP,
                 "client %s: connection to %s lost after %.1f s: the broker disconnected it "
                 "with reason 0x%02x, %s; reconnecting",
                 c->cl->client_id, c->cl->uri, (double)up_ns / 1e9, (unsigned)f.reason,
                 mqtt_why_disconnect_reason(f.reason));
    else
        log_warn(COMP, "client %s: connection to %s lost after %.1f s (%s); reconnecting",
                 c->cl->client_id, c->cl->uri, (double)up_ns / 1e9,
                 mqtt_why_lost((double)up_ns / 1e9, c->short_lived));
    schedule_retry(c, now, c->min_ns);
    c->backoff_ns = c->min_ns * 2 > c->max_ns ? c->max_ns : c->min_ns * 2;
}

/* The io_uring kind reconnects by itself (mqttc); the conn mirrors its state. LOST and UP of
 * one turn may come in either order (a quick reconnect): what is outstanding is failed either
 * way and republished once the connection is up. */
static void uring_events(conn *c, unsigned ev)
{
    if (ev & CQ_EV_LOST) {
        cq_fail_conn(c->q, c->index);
        if (c->state == CONN_UP)
            log_warn(COMP, "client %s: connection to %s lost; reconnecting", c->cl->client_id,
                     c->cl->uri);
        c->state = CONN_DOWN;
    }
    if (ev & CQ_EV_CONNFAIL) {
        c->first_done = 1;
        c->state = CONN_DOWN;
    }
    if (ev & CQ_EV_UP) {
        c->first_done = 1;
        c->state = CONN_UP;
        c->recv_max = cq_conn_code(c->q, c->index);
        if (c->recv_max <= 0 || c->recv_max > 65535)
            c->recv_max = 65535;
        log_info(COMP, "client %s: connected to %s as %s (io_uring)", c->cl->client_id, c->cl->uri,
                 c->client_id);
    }
}

void conn_handle_events(conn *c, unsigned ev, uint64_t now_ns)
{
    if (c->state == CONN_CLOSING || c->state == CONN_CLOSED) {
        if (ev & (CQ_EV_DISC | CQ_EV_LOST)) {
            cq_fail_conn(c->q, c->index);
            c->state = CONN_CLOSED;
        }
        return;
    }
    if (c->u) {
        uring_events(c, ev);
        return;
    }
    /* the bits of one turn have one possible order: a connect attempt ends in exactly one of
     * UP or CONNFAIL, LOST only follows UP, and only this loop starts the next attempt */
    if (ev & CQ_EV_UP)
        on_up(c);
    if (ev & CQ_EV_LOST)
        on_connection_lost(c, now_ns);
    if ((ev & CQ_EV_CONNFAIL) && c->state == CONN_CONNECTING)
        fail_attempt(c, now_ns, cq_conn_code(c->q, c->index));
}

void conn_tick(conn *c, uint64_t now_ns)
{
    if (c->u) { /* mqttc keeps its own timers (run here in one-thread mode) */
        conn_uring_poll(c->u);
        return;
    }
    if (c->zombie && now_ns >= c->zombie_until)
        MQTTAsync_destroy(&c->zombie);
    if (c->state == CONN_DOWN && now_ns >= c->retry_at)
        connect_now(c, now_ns);
}

uint64_t conn_next_timer(const conn *c)
{
    uint64_t t = UINT64_MAX;
    if (c->u)
        return t;
    if (c->zombie)
        t = c->zombie_until;
    if (c->state == CONN_DOWN && c->retry_at < t)
        t = c->retry_at;
    return t;
}

enum conn_state conn_get_state(const conn *c)
{
    return c->state;
}

int conn_is_up(const conn *c)
{
    return c->state == CONN_UP;
}

int conn_first_attempt_done(const conn *c)
{
    return c->first_done;
}

const char *conn_name(const conn *c)
{
    return c->cl->client_id;
}

void conn_flush(conn *c, int progress)
{
    if (c->u)
        conn_uring_flush(c->u, progress != 0);
}

void conn_nap(conn *c, uint64_t ns)
{
    conn_uring_nap(c->u, ns);
}

void conn_wait(conn *c, const uint32_t *const *words, const uint32_t *vals, size_t n,
               int timeout_ms)
{
    conn_uring_wait(c->u, words, vals, n, timeout_ms);
}

void conn_park(conn *c)
{
    if (c->u && c->qos_out > 0)
        conn_uring_park(c->u);
}

int conn_publish(conn *c, const char *topic, const void *payload, size_t len, int qos, int retain,
                 void *ctx)
{
    if (c->state != CONN_UP)
        return -ENOTCONN;
    if (qos > 0 && c->qos_out >= c->recv_max)
        return -EBUSY;
    if (qos == 2 && !c->v5 && c->qos_out >= V311_QOS2_INFLIGHT)
        return -EBUSY; /* completions wake the pump, as above */
    if (len > INT_MAX)
        return -EINVAL;
    if (c->u) {
        int rc = conn_uring_publish(c->u, topic, payload, len, qos, retain, ctx);
        if (rc == 0 && qos > 0)
            c->qos_out++;
        return rc;
    }
    MQTTAsync_message m = MQTTAsync_message_initializer;
    m.payload = (void *)(uintptr_t)payload; /* paho copies it; the cast drops const only */
    m.payloadlen = (int)len;
    m.qos = qos;
    m.retained = retain;
    static const mqtt_paho_cbs cbs = {on_pub_ok, on_pub_fail, on_pub_ok5, on_pub_fail5};
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    mqtt_paho_response(&ro, c->v5, &cbs, ctx);
    int rc = MQTTAsync_sendMessage(c->h, topic, &m, &ro);
    switch (rc) {
    case MQTTASYNC_SUCCESS:
        if (qos > 0)
            c->qos_out++;
        return 0;
    case MQTTASYNC_DISCONNECTED:
        return -ENOTCONN;
    case MQTTASYNC_MAX_MESSAGES_INFLIGHT:
    case MQTTASYNC_NO_MORE_MSGIDS:
    case MQTTASYNC_MAX_BUFFERED_MESSAGES:
    case MQTTASYNC_MAX_BUFFERED:
        return -EAGAIN;
    default:
        return -EINVAL;
    }
}

void conn_set_sndbuf(conn *c, size_t bytes)
{
    c->sndbuf = bytes > INT_MAX / 2 ? INT_MAX / 2 : (int)bytes;
}

int conn_qos_outstanding(const conn *c)
{
    return c->qos_out;
}

void conn_qos_done(conn *c)
{
    if (c->qos_out > 0)
        c->qos_out--;
}

int conn_disconnect(conn *c, int timeout_ms)
{
    if (c->u && c->state != CONN_CLOSED) { /* CQ_EV_DISC follows in every state */
        conn_uring_disconnect(c->u, timeout_ms);
        c->state = CONN_CLOSING;
        return 0;
    }
    if (c->state != CONN_UP) {
        c->state = CONN_CLOSED;
        return 1;
    }
    MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
    MQTTAsync_disconnectOptions d5 = MQTTAsync_disconnectOptions_initializer5;
    MQTTAsync_disconnectOptions *opt = c->v5 ? &d5 : &d;
    opt->timeout = timeout_ms;
    static const mqtt_paho_cbs cbs = {on_disc_ok, on_disc_fail, on_disc_ok5, on_disc_fail5};
    mqtt_paho_disconnect(opt, c->v5, &cbs, cq_conn_ctx(c->q, c->index));
    if (MQTTAsync_disconnect(c->h, opt) != MQTTASYNC_SUCCESS) {
        c->state = CONN_CLOSED;
        return 1;
    }
    c->state = CONN_CLOSING;
    return 0;
}
