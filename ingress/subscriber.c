#include "subscriber.h"

#include "nodelay.h"

#include <MQTTAsync.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "clock.h"
#include "hash.h"
#include "log.h"
#include "mqtt_paho.h"
#include "mqtt_tls.h"
#include "mqtt_why.h"

#define LOG_COMP        "ingress"
#define CONNECT_TIMEOUT 10 /* seconds paho waits for CONNACK */
#define SUBACK_FAILURE  0x80

/* Connection states. Every transition happens under mu; paho callbacks move the state
 * forward, the main thread (subscriber_poll) starts attempts when a DOWN/SUB_FAILED state's
 * backoff has expired. */
enum sub_state {
    ST_DOWN,        /* not connected; connect at next_ns */
    ST_CONNECTING,  /* MQTTAsync_connect issued */
    ST_SUBSCRIBING, /* connected, SUBSCRIBE sent */
    ST_SUB_FAILED,  /* connected, the broker refused a subscription; retry at next_ns */
    ST_READY,       /* connected and subscribed */
    ST_STOPPING,    /* subscriber_stop: no more attempts */
};

struct subscriber {
    MQTTAsync h;
    const cfg_client *c;
    subscriber_msg_fn fn;
    void *arg;
    char **filters; /* topic filters as subscribed ($share/<group>/ prefixed) */
    int *qos;
    int *granted; /* scratch for the SUBACK (one SUBSCRIBE is outstanding at a time) */
    int n_filters;
    bool v5;       /* mqtt_version: 5 */
    mqtt_tls *tls; /* TLS options; they must outlive every connect (mqtt_tls.h) */
    char *mqtt_id; /* the MQTT client id (subscriber_create's rule) */

    pthread_mutex_t mu;
    pthread_cond_t cv;
    enum sub_state st;
    bool connected;
    bool disconnected; /* subscriber_stop's DISCONNECT completed */
    uint64_t next_ns;  /* monotonic time of the next attempt */
    double delay_s;    /* current backoff */
    unsigned failures; /* consecutive failed connects, to quiet repeated log lines */
    /* pause (subscriber.h "Pause"): paused = no reconnect until subscriber_resume; cutting =
     * the current connection is being cut, so messages paho still hands over are ignored
     * (their PUBACK can no longer reach the broker, which sends them again) */
    bool paused, cutting;
    bool ever_connected;  /* a session was established once: a reconnect expects it back */
    uint64_t up_ns;       /* when the current connection came up */
    uint64_t down_ns;     /* when the last connection ended */
    unsigned short_lived; /* connections in a row that ended within SHORT_LIVED_NS */
    char last_cause[160]; /* how the last connection ended, for the lost-session line */
    stats_slot *slot;     /* subscriber_set_stats; NULL = none */
};

/* a connection that ends this soon after its connect counts towards a takeover suspicion */
#define SHORT_LIVED_NS (5ull * 1000000000ull)

static const int stop_signals[] = {SIGTERM, SIGINT, SIGHUP};

/* paho creates its threads inside some of its calls; they inherit the caller's signal mask,
 * so those calls run with the stop signals blocked (see subscriber.h) */
static void block_signals(sigset_t *old)
{
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < sizeof(stop_signals) / sizeof(stop_signals[0]); i++)
        sigaddset(&set, stop_signals[i]);
    pthread_sigmask(SIG_BLOCK, &set, old);
}

static void restore_signals(const sigset_t *old)
{
    pthread_sigmask(SIG_SETMASK, old, NULL);
}

/* Under mu: schedule the next attempt after the current backoff, then double it. */
static void schedule_retry(subscriber *s)
{
    s->next_ns = clock_mono_ns() + (uint64_t)(s->delay_s * 1e9);
    s->delay_s *= 2;
    if (s->delay_s > s->c->reconnect_max)
        s->delay_s = s->c->reconnect_max;
}

static void set_state(subscriber *s, enum sub_state st)
{
    s->st = st;
    pthread_cond_broadcast(&s->cv);
}

/* ---- paho callbacks (paho's threads) ---- */

/* nodelay_each_peer_port callback: DISCONNECT (plain TCP only: on TLS or WebSocket two raw
 * bytes would be garbage inside the stream, so the broker sees a dropped connection there and
 * publishes the will), then shut the socket both ways so no PUBACK leaves it. */
static int cut_fd(int fd, void *arg)
{
    static const unsigned char disconnect[2] = {0xE0, 0x00}; /* 3.1.1 and 5: normal */
    if (*(const bool *)arg)
        (void)send(fd, disconnect, sizeof(disconnect), MSG_NOSIGNAL | MSG_DONTWAIT);
    return shutdown(fd, SHUT_RDWR);
}

/* paho's receive thread, inside the message callback, the message not stored: end the
 * connection before paho can acknowledge it. paho has no call for this: MQTTAsync_disconnect
 * is carried out by paho's other thread after this callback has returned and paho has sent
 * the PUBACK, and its completion is reported on this very thread (waiting for it here would
 * deadlock). Only paho's threads write to the socket and the send thread has nothing to send
 * for a subscriber (no publishes), so the two bytes cannot land inside another packet. */
void subscriber_log_pause(const char *mqtt_id, const char *uri, bool clean_session)
{
    if (clean_session)
        log_warn(LOG_COMP,
                 "ring and spool full: disconnecting %s from %s to keep the broker's keepalive; "
                 "its session is clean (clean_session: true), so the broker discards what "
                 "arrives meanwhile: remove clean_session: true to keep it",
                 mqtt_id, uri);
    else
        log_warn(LOG_COMP,
                 "ring and spool full: disconnecting %s from %s with the session kept (the "
                 "broker queues for it); reconnecting when the pipeline has room",
                 mqtt_id, uri);
}

void subscriber_log_session_lost(const char *mqtt_id, const char *uri, const char *cause,
                                 double down_s)
{
    char down[48] = "disconnected for an unknown time";
    if (down_s >= 0)
        snprintf(down, sizeof(down), "%.1f s disconnected", down_s);
    log_error(LOG_COMP,
              "session of %s on %s was lost: the broker had no session for it when it "
              "reconnected (%s, %s), so messages published to its subscriptions meanwhile "
              "were not kept. The broker restarted without persistence, expired the session "
              "(MQTT 5 session_expiry, mosquitto persistent_client_expiration), or another "
              "client connected with this client id and a clean session",
              mqtt_id, uri, cause && *cause ? cause : "first reconnect", down);
}

/* The project's hash (hash.h) over "uri\0id", never 0 (0 = no session recorded). Only compared
 * within one stats segment (the supervisor makes it anew each run): no stored format. */
static uint64_t session_key(const char *mqtt_id, const char *uri)
{
    uint64_t h = hash_fnv1a(uri, strlen(uri) + 1);
    return hash_fnv1a_add(h, mqtt_id, strlen(mqtt_id)) | 1;
}

bool subscriber_session_check(stats_slot *slot, const char *mqtt_id, const char *uri,
                              bool clean_session, bool session_present, bool ever_here,
                              const char *cause, double down_s)
{
    uint64_t key = session_key(mqtt_id, uri);
    bool before = slot && stats_get(&slot->extra[STATS_I_SESSION]) == key;
    bool lost = !clean_session && !session_present && (ever_here || before);
    if (lost) {
        /* an earlier process had it: it ended (crash, kill, restart) while connected or
         * reconnecting, and this one cannot know for how long the client was away */
        if (!ever_here)
            subscriber_log_session_lost(mqtt_id, uri,
                                        "the ingress's previous process ended meanwhile", -1);
        else
            subscriber_log_session_lost(mqtt_id, uri, cause, down_s);
        if (slot)
            stats_add(&slot->extra[STATS_I_SESSIONS_LOST], 1);
    }
    if (slot)
        stats_set(&slot->extra[STATS_I_SESSION], clean_session ? 0 : key);
    return lost;
}

/* false when no socket could be cut: then nothing stops paho from acknowledging, so the
 * caller must store the message after all (block) and the pause is undone */
static bool cut_connection(subscriber *s)
{
    pthread_mutex_lock(&s->mu);
    s->cutting = true;
    s->paused = true;
    snprintf(s->last_cause, sizeof(s->last_cause),
             "paused by the ingress: its ring and spool were full");
    pthread_mutex_unlock(&s->mu);
    bool raw = !mqtt_tls_is_enabled(s->tls) && s->c->scheme == CFG_MQTT;
    subscriber_log_pause(s->mqtt_id, s->c->uri, s->c->clean_session);
    if (nodelay_each_peer_port(s->c->port, cut_fd, &raw) >= 1)
        return true;
    log_error(LOG_COMP,
              "found no socket to %s to cut: blocking until the message is stored instead "
              "(paho would acknowledge it)",
              s->c->uri);
    pthread_mutex_lock(&s->mu);
    s->cutting = false;
    s->paused = false;
    pthread_mutex_unlock(&s->mu);
    return false;
}

static int on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *m)
{
    subscriber *s = ctx;
    size_t tl = topic_len > 0 ? (size_t)topic_len : strlen(topic);
    pthread_mutex_lock(&s->mu);
    bool cutting = s->cutting;
    pthread_mutex_unlock(&s->mu);
    size_t pl = m->payloadlen > 0 ? (size_t)m->payloadlen : 0;
    if (!cutting &&
        s->fn(s->arg, topic, tl, m->payload, pl, m->qos, m->retained) == SUBSCRIBER_MSG_REFUSED &&
        !cut_connection(s))
        /* paho acknowledges what we return from: store it first, however long that takes */
        while (s->fn(s->arg, topic, tl, m->payload, pl, m->qos, m->retained) ==
               SUBSCRIBER_MSG_REFUSED)
            ;
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1; /* 0 would park the message inside paho (BASELINES pitfall 2) */
}

static void on_connection_lost(void *ctx, char *cause)
{
    subscriber *s = ctx;
    pthread_mutex_lock(&s->mu);
    s->connected = false;
    uint64_t now = clock_mono_ns();
    s->down_ns = now;
    if (s->st != ST_STOPPING && s->paused) {
        log_info(LOG_COMP, "connection of %s to %s paused until the pipeline has room", s->mqtt_id,
                 s->c->uri);
        s->next_ns = UINT64_MAX; /* subscriber_resume sets it */
        set_state(s, ST_DOWN);
    } else if (s->st != ST_STOPPING) {
        double up_s = (double)(now - s->up_ns) / 1e9;
        s->short_lived = now - s->up_ns < SHORT_LIVED_NS ? s->short_lived + 1 : 0;
        const char *why = cause ? cause : mqtt_why_lost(up_s, s->short_lived);
        snprintf(s->last_cause, sizeof(s->last_cause), "connection lost after %.1f s up", up_s);
        log_warn(LOG_COMP, "connection of %s to %s lost after %.1f s: %s; reconnecting in %.1fs",
                 s->mqtt_id, s->c->uri, up_s, why, s->delay_s);
        schedule_retry(s);
        set_state(s, ST_DOWN);
    }
    pthread_mutex_unlock(&s->mu);
}

/* The SUBACK: granted[i] is the granted QoS of filter i (MQTT 5: the reason code), a value
 * >= SUBACK_FAILURE when refused, or -1 when paho did not report it. */
static void sub_acked(subscriber *s, const int *granted)
{
    int refused = 0;
    for (int i = 0; i < s->n_filters; i++) {
        if (granted[i] >= SUBACK_FAILURE) {
            log_error(LOG_COMP, "broker %s refused the subscription of %s to \"%s\" (code 0x%x)",
                      s->c->uri, s->c->client_id, s->filters[i], (unsigned)granted[i]);
            refused++;
        } else if (granted[i] >= 0 && granted[i] < s->qos[i]) {
            log_warn(LOG_COMP, "broker %s granted QoS %d instead of %d on \"%s\"", s->c->uri,
                     granted[i], s->qos[i], s->filters[i]);
        }
    }
    pthread_mutex_lock(&s->mu);
    if (s->st == ST_SUBSCRIBING) {
        if (refused) {
            schedule_retry(s);
            set_state(s, ST_SUB_FAILED);
        } else {
            s->delay_s = s->c->reconnect_min;
            s->failures = 0;
            log_info(LOG_COMP, "subscribed to %d topic(s) on %s", s->n_filters, s->c->uri);
            set_state(s, ST_READY);
        }
    }
    pthread_mutex_unlock(&s->mu);
}

static void sub_failed(subscriber *s, int code, const char *message)
{
    pthread_mutex_lock(&s->mu);
    if (s->st == ST_SUBSCRIBING) {
        log_error(LOG_COMP, "subscribe of %s on %s failed (paho rc %d%s%s); retrying in %.1fs",
                  s->c->client_id, s->c->uri, code, message ? ": " : "", message ? message : "",
                  s->delay_s);
        schedule_retry(s);
        set_state(s, ST_SUB_FAILED);
    }
    pthread_mutex_unlock(&s->mu);
}

static void on_sub_ok(void *ctx, MQTTAsync_successData *r)
{
    subscriber *s = ctx;
    for (int i = 0; i < s->n_filters; i++) {
        int g = -1;
        if (r && s->n_filters == 1)
            g = r->alt.qos;
        else if (r && r->alt.qosList)
            g = r->alt.qosList[i];
        s->granted[i] = g;
    }
    sub_acked(s, s->granted);
}

static void on_sub_ok5(void *ctx, MQTTAsync_successData5 *r)
{
    subscriber *s = ctx;
    for (int i = 0; i < s->n_filters; i++) {
        int g = -1;
        if (r && s->n_filters == 1)
            g = (int)r->reasonCode;
        else if (r && i < r->alt.sub.reasonCodeCount && r->alt.sub.reasonCodes)
            g = (int)r->alt.sub.reasonCodes[i];
        s->granted[i] = g;
    }
    sub_acked(s, s->granted);
}

static void on_sub_fail(void *ctx, MQTTAsync_failureData *r)
{
    sub_failed(ctx, r ? r->code : 0, r ? r->message : NULL);
}

static void on_sub_fail5(void *ctx, MQTTAsync_failureData5 *r)
{
    sub_failed(ctx, r ? r->code : 0, r ? r->message : NULL);
}

/* Sends SUBSCRIBE for every filter; state SUBSCRIBING. Called without mu: paho may hold its
 * own mutex while it runs our callbacks, which take mu, so holding mu across a paho call could
 * deadlock (lock order: paho's, then ours; never the reverse). */
static void subscribe_all(subscriber *s)
{
    static const mqtt_paho_cbs cbs = {on_sub_ok, on_sub_fail, on_sub_ok5, on_sub_fail5};
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    mqtt_paho_response(&ro, s->v5, &cbs, s);
    int rc = MQTTAsync_subscribeMany(s->h, s->n_filters, s->filters, s->qos, &ro);
    if (rc != MQTTASYNC_SUCCESS) {
        pthread_mutex_lock(&s->mu);
        if (s->st == ST_SUBSCRIBING) {
            log_error(LOG_COMP, "MQTTAsync_subscribeMany(%d topics) on %s: paho rc %d",
                      s->n_filters, s->c->uri, rc);
            schedule_retry(s);
            set_state(s, ST_SUB_FAILED);
        }
        pthread_mutex_unlock(&s->mu);
    }
}

static void connected(subscriber *s, bool session_present)
{
    if (nodelay_set_peer_port(s->c->port) < 1)
        log_warn(LOG_COMP, "could not set TCP_NODELAY on the socket to %s", s->c->uri);
    pthread_mutex_lock(&s->mu);
    s->connected = true;
    s->cutting = false;
    bool go = s->st == ST_CONNECTING;
    if (go) {
        uint64_t now = clock_mono_ns();
        log_info(LOG_COMP, "connected to %s as %s (MQTT %s%s%s)", s->c->uri, s->mqtt_id,
                 s->v5 ? "5" : "3.1.1", mqtt_tls_is_enabled(s->tls) ? ", TLS" : "",
                 s->c->clean_session ? ", clean session"
                 : session_present   ? ", session resumed"
                                     : ", new session");
        /* a persistent session the broker no longer has: what was published to our
         * subscriptions while we were away is gone, and only the broker knew it */
        subscriber_session_check(s->slot, s->mqtt_id, s->c->uri, s->c->clean_session,
                                 session_present, s->ever_connected, s->last_cause,
                                 (double)(now - s->down_ns) / 1e9);
        s->ever_connected = true;
        s->up_ns = now;
        set_state(s, ST_SUBSCRIBING);
    }
    pthread_mutex_unlock(&s->mu);
    /* subscribe again on every connection: a clean session (or a broker restart without
     * persistence) has forgotten the subscriptions */
    if (go)
        subscribe_all(s);
}

static void connect_failed(subscriber *s, const mqtt_why_fail *f)
{
    pthread_mutex_lock(&s->mu);
    if (s->st == ST_CONNECTING) {
        /* the first failure and then every 10th: a broker down for long must not flood logs */
        char detail[192];
        if (s->failures++ % 10 == 0)
            log_warn(LOG_COMP, "connect of %s to %s failed: %s (%s; failure %u); retrying in %.1fs",
                     s->mqtt_id, s->c->uri, mqtt_paho_why_connect(f),
                     mqtt_paho_detail(f, detail, sizeof(detail)), s->failures, s->delay_s);
        schedule_retry(s);
        set_state(s, ST_DOWN);
    }
    pthread_mutex_unlock(&s->mu);
}

static void on_connect_ok(void *ctx, MQTTAsync_successData *r)
{
    connected(ctx, r && r->alt.connect.sessionPresent);
}

static void on_connect_ok5(void *ctx, MQTTAsync_successData5 *r)
{
    connected(ctx, r && r->alt.connect.sessionPresent);
}

static void on_connect_fail(void *ctx, MQTTAsync_failureData *r)
{
    mqtt_why_fail f;
    mqtt_paho_failure(&f, r);
    connect_failed(ctx, &f);
}

static void on_connect_fail5(void *ctx, MQTTAsync_failureData5 *r)
{
    mqtt_why_fail f;
    mqtt_paho_failure5(&f, r);
    connect_failed(ctx, &f);
}

/* MQTT 5: the broker said why it closed the connection (e.g. 0x8E session taken over);
 * paho's connectionLost that follows carries no cause, so the reason is kept for it. */
static void on_disconnected5(void *ctx, MQTTProperties *props, enum MQTTReasonCodes rc)
{
    (void)props;
    subscriber *s = ctx;
    log_warn(LOG_COMP, "broker %s disconnected %s: reason 0x%02x, %s", s->c->uri, s->mqtt_id,
             (unsigned)rc, mqtt_why_disconnect_reason((int)rc));
}

static void on_disconnect_done(void *ctx, MQTTAsync_successData *r)
{
    (void)r;
    subscriber *s = ctx;
    pthread_mutex_lock(&s->mu);
    s->disconnected = true;
    s->connected = false;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void on_disconnect_fail(void *ctx, MQTTAsync_failureData *r)
{
    (void)r;
    on_disconnect_done(ctx, NULL);
}

/* ---- main thread ---- */

static void free_filters(subscriber *s)
{
    for (int i = 0; s->filters && i < s->n_filters; i++)
        free(s->filters[i]);
    free(s->filters);
    free(s->qos);
    free(s->granted);
}

int subscriber_create(const cfg_client *c, const char *instance, subscriber_msg_fn fn, void *arg,
                      subscriber **out)
{
    int err = 0;
    if (!c || !fn || c->n_topics == 0 || c->n_topics > INT32_MAX)
        return -EINVAL;
    if (!instance)
        return -EINVAL;
    subscriber *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->c = c;
    s->fn = fn;
    s->arg = arg;
    s->st = ST_DOWN;
    s->delay_s = c->reconnect_min > 0 ? c->reconnect_min : 0.1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);

    s->n_filters = (int)c->n_topics;
    s->filters = calloc(c->n_topics, sizeof(*s->filters));
    s->qos = calloc(c->n_topics, sizeof(*s->qos));
    s->granted = calloc(c->n_topics, sizeof(*s->granted));
    if (!s->filters || !s->qos || !s->granted) {
        err = -ENOMEM;
        goto err_filters;
    }
    for (size_t i = 0; i < c->n_topics; i++) {
        const char *name = c->topics[i].name;
        int n = c->shared_group ? asprintf(&s->filters[i], "$share/%s/%s", c->shared_group, name)
                                : asprintf(&s->filters[i], "%s", name);
        if (n < 0) {
            s->filters[i] = NULL;
            err = -ENOMEM;
            goto err_filters;
        }
        s->qos[i] = c->topics[i].qos;
    }
    s->v5 = c->mqtt_version == 5;
    /* see subscriber.h: members of a shared group need distinct ids, or the broker keeps only
     * the newest session and the instances knock each other off in turn */
    int n = c->shared_group ? asprintf(&s->mqtt_id, "%s-%s", c->client_id, instance)
                            : asprintf(&s->mqtt_id, "%s", c->client_id);
    if (n < 0) {
        s->mqtt_id = NULL;
        err = -ENOMEM;
        goto err_filters;
    }
    if ((err = mqtt_tls_create(c, LOG_COMP, &s->tls)) < 0)
        goto err_filters;

    /* plain MQTTAsync_create: createWithOptions' default maxBufferedMessages=100 (BASELINES
     * pitfall 3); this client never publishes anyway */
    sigset_t old;
    block_signals(&old);
    int rc;
    if (s->v5) {
        /* MQTT 5 needs createWithOptions; lift its default cap of 100 buffered messages
         * (BASELINES pitfall 3) even though this client never publishes */
        MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
        co.maxBufferedMessages = 65535;
        rc = MQTTAsync_createWithOptions(&s->h, c->uri, s->mqtt_id, MQTTCLIENT_PERSISTENCE_NONE,
                                         NULL, &co);
    } else {
        rc = MQTTAsync_create(&s->h, c->uri, s->mqtt_id, MQTTCLIENT_PERSISTENCE_NONE, NULL);
    }
    if (rc == MQTTASYNC_SUCCESS)
        rc = MQTTAsync_setCallbacks(s->h, s, on_connection_lost, on_message, NULL);
    if (rc == MQTTASYNC_SUCCESS && s->v5)
        rc = MQTTAsync_setDisconnected(s->h, s, on_disconnected5);
    restore_signals(&old);
    if (rc != MQTTASYNC_SUCCESS) {
        log_error(LOG_COMP, "MQTTAsync_create(%s, %s): paho rc %d%s", c->uri, s->mqtt_id, rc,
                  rc == MQTTASYNC_BAD_PROTOCOL || rc == MQTTASYNC_SSL_NOT_SUPPORTED
                      ? " (this paho library has no TLS: link libpaho-mqtt3as)"
                      : "");
        err = -EINVAL;
        goto err_client;
    }
    *out = s;
    return 0;

err_client:
    if (s->h)
        MQTTAsync_destroy(&s->h);
err_filters:
    mqtt_tls_destroy(s->tls);
    free(s->mqtt_id);
    free_filters(s);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
    return err;
}

/* Issues MQTTAsync_connect; called without mu (see subscribe_all) in state CONNECTING. */
static int connect_now(subscriber *s)
{
    const cfg_client *c = s->c;
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
    MQTTAsync_connectOptions co5 = MQTTAsync_connectOptions_initializer5;
    MQTTAsync_willOptions will = MQTTAsync_willOptions_initializer;
    MQTTProperties props = MQTTProperties_initializer;
    if (s->v5) {
        co = co5;
        co.cleanstart = c->clean_session;
        if (!c->clean_session) {
            /* MQTT 5 ends a session at disconnect unless it has an expiry: keep it as 3.1.1
             * clean_session: false would (session_expiry, default 0xFFFFFFFF = never) */
            MQTTProperty p = {.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL};
            p.value.integer4 = c->session_expiry;
            MQTTProperties_add(&props, &p);
            co.connectProperties = &props;
        }
    } else {
        co.cleansession = c->clean_session;
        co.MQTTVersion = MQTTVERSION_3_1_1;
    }
    static const mqtt_paho_cbs cbs = {on_connect_ok, on_connect_fail, on_connect_ok5,
                                      on_connect_fail5};
    mqtt_paho_connect(&co, s->v5, &cbs, s);
    co.keepAliveInterval = c->keepalive;
    co.connectTimeout = CONNECT_TIMEOUT;
    co.automaticReconnect = 0; /* ours: sub-second min_delay, resubscribe (see subscriber.h) */
    co.username = c->username;
    co.password = c->password;
    if (c->will.enabled) {
        will.topicName = c->will.topic;
        will.message = c->will.payload ? c->will.payload : "";
        will.qos = c->will.qos;
        will.retained = c->will.retain;
        co.will = &will;
    }
    mqtt_tls_apply(s->tls, &co);
    sigset_t old;
    block_signals(&old);
    int rc = MQTTAsync_connect(s->h, &co);
    restore_signals(&old);
    MQTTProperties_free(&props); /* paho copied them */
    if (rc != MQTTASYNC_SUCCESS) {
        pthread_mutex_lock(&s->mu);
        if (s->st == ST_CONNECTING) {
            log_error(LOG_COMP, "MQTTAsync_connect(%s): paho rc %d; retrying in %.1fs", c->uri, rc,
                      s->delay_s);
            schedule_retry(s);
            set_state(s, ST_DOWN);
        }
        pthread_mutex_unlock(&s->mu);
        return -EIO;
    }
    return 0;
}

void subscriber_set_stats(subscriber *s, stats_slot *slot)
{
    s->slot = slot;
}

int subscriber_start(subscriber *s)
{
    pthread_mutex_lock(&s->mu);
    bool go = s->st == ST_DOWN;
    if (go)
        set_state(s, ST_CONNECTING);
    pthread_mutex_unlock(&s->mu);
    return go ? connect_now(s) : 0;
}

void subscriber_poll(subscriber *s, int timeout_ms)
{
    pthread_mutex_lock(&s->mu);
    uint64_t now = clock_mono_ns();
    uint64_t until = now + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000ull;
    bool waiting = s->st == ST_DOWN || s->st == ST_SUB_FAILED;
    if (waiting && s->next_ns < until)
        until = s->next_ns;
    if (until > now) {
        struct timespec ts = {(time_t)(until / 1000000000ull), (long)(until % 1000000000ull)};
        enum sub_state before = s->st;
        /* one wait: any state change (broadcast) or the deadline ends it */
        while (s->st == before && clock_mono_ns() < until)
            if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) == ETIMEDOUT)
                break;
    }
    now = clock_mono_ns();
    enum sub_state next = s->st;
    if (s->st == ST_DOWN && now >= s->next_ns)
        next = ST_CONNECTING;
    else if (s->st == ST_SUB_FAILED && now >= s->next_ns)
        next = ST_SUBSCRIBING;
    bool act = next != s->st;
    if (act)
        set_state(s, next);
    pthread_mutex_unlock(&s->mu);
    if (act && next == ST_CONNECTING)
        connect_now(s);
    else if (act)
        subscribe_all(s);
}

bool subscriber_is_ready(const subscriber *s)
{
    subscriber *m = (subscriber *)s; /* locking does not change the observable state */
    pthread_mutex_lock(&m->mu);
    bool r = m->st == ST_READY;
    pthread_mutex_unlock(&m->mu);
    return r;
}

bool subscriber_first_attempt_done(const subscriber *s)
{
    subscriber *m = (subscriber *)s;
    pthread_mutex_lock(&m->mu);
    bool r = m->ever_connected || m->failures > 0;
    pthread_mutex_unlock(&m->mu);
    return r;
}

bool subscriber_is_paused(const subscriber *s)
{
    subscriber *m = (subscriber *)s;
    pthread_mutex_lock(&m->mu);
    bool r = m->paused;
    pthread_mutex_unlock(&m->mu);
    return r;
}

void subscriber_resume(subscriber *s)
{
    pthread_mutex_lock(&s->mu);
    if (s->paused) {
        s->paused = false;
        if (s->st == ST_DOWN) {
            log_info(LOG_COMP, "the pipeline has room again: reconnecting %s to %s", s->mqtt_id,
                     s->c->uri);
            s->next_ns = clock_mono_ns();
            set_state(s, ST_DOWN); /* wakes subscriber_poll */
        }
    }
    pthread_mutex_unlock(&s->mu);
}

bool subscriber_is_connected(const subscriber *s)
{
    subscriber *m = (subscriber *)s;
    pthread_mutex_lock(&m->mu);
    bool r = m->connected;
    pthread_mutex_unlock(&m->mu);
    return r;
}

int subscriber_stop(subscriber *s, int timeout_ms)
{
    pthread_mutex_lock(&s->mu);
    set_state(s, ST_STOPPING);
    pthread_mutex_unlock(&s->mu);
    MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
    d.timeout = timeout_ms;
    d.onSuccess = on_disconnect_done;
    d.onFailure = on_disconnect_fail;
    d.context = s;
    int err = 0;
    /* not connected (or a connect in flight): paho answers MQTTASYNC_DISCONNECTED and the
     * destroy that follows closes whatever is half-open */
    int rc = MQTTAsync_disconnect(s->h, &d);
    pthread_mutex_lock(&s->mu);
    if (rc == MQTTASYNC_SUCCESS) {
        uint64_t until = clock_mono_ns() + (uint64_t)timeout_ms * 1000000ull;
        struct timespec ts = {(time_t)(until / 1000000000ull), (long)(until % 1000000000ull)};
        while (!s->disconnected)
            if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) == ETIMEDOUT) {
                err = -ETIMEDOUT;
                break;
            }
    }
    s->connected = false;
    pthread_mutex_unlock(&s->mu);
    return err;
}

void subscriber_destroy(subscriber *s)
{
    if (!s)
        return;
    MQTTAsync_destroy(&s->h);
    mqtt_tls_destroy(s->tls); /* after the handle: paho may read the options until then */
    free(s->mqtt_id);
    free_filters(s);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
