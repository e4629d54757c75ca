/* sub_uring: the ingress's broker connection on common/mqttc (io_uring, main thread), for
 * mqtt:// and tcp:// brokers; the kind "uring" of ingress/sub_ops.h.
 *
 * The same MQTT client id rule, filters ($share/<group>/ with shared_group), will, session and
 * backoff as ingress/subscriber.h. Per received batch (one socket read, any number of
 * packets): every PUBLISH goes through the message function (intake: ring commit without
 * flush, or the spool), then batch_done flushes the ring once, and only then are the batch's
 * PUBACK/PUBRECs queued; they leave with the next loop turn's io_uring_enter. Cost at full
 * speed: one io_uring_enter per loop turn for a whole batch (receive completion + the acks
 * of the previous batch), and one ring flush (a futex wake only when the router parks) per
 * batch, against paho's 3 recvfrom + 2 poll + a futex per message. At a low rate (a batch
 * of one message) that enter also waits for the next PUBLISH (mqttc.h opts.quiet_send): one
 * io_uring_enter per message at QoS 1, where the acks' send used to end the wait and cost a
 * second one. The price: a send that cannot complete (the broker stopped reading, so its
 * socket is full) holds the next received batch until it does, or until the loop turn's
 * timeout or mqttc's next timer (at most ingress_loop.c's LOOP_MS, 200 ms): later, never
 * earlier, and only while the broker itself is stuck.
 *
 * Receive coalescing (runtime.ingress_coalesce_us, default 500 us): on a dense stream the next
 * receive starts that long after a batch, so one wake-up takes everything that came meanwhile
 * (one receive, one ring flush, one send of all the acknowledgements). At QoS 1 mosquitto
 * sends each PUBLISH as it gets it and the ingress woke for every one or two of them: a
 * wake-up, a receive and a PUBACK send each, about 5 us per message; with 500 us about 2
 * (docs/performance.md). A message waits at most that much more, only on a dense stream. With
 * mosquitto's default window of 20 QoS>0 messages in flight the delay would bound one
 * subscription to about 20 per interval, so a batch of 16 or more (a window nearly used up)
 * is received again at once (common/mqttc_int.h RX_BATCH_ENOUGH). The acknowledgements are
 * never held: they leave with the turn that follows the batch.
 *
 * A full ring: the message function waits as with paho (intake.h: at most spill_wait_ms, then
 * the spool); here that is the thread that also sends PINGREQs, exactly as paho's receive
 * thread is, so the same bound (keepalive / 4, at most 100 ms) keeps the connection alive.
 */
#include "sub_ops.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "mqttc.h"

#define LOG_COMP "ingress"

typedef struct sub_uring {
    mqttc *m;
    sub_cbs cb;
    const cfg_client *c;
    bool refused;     /* the intake refused a message in this turn: cut the connection after it */
    bool paused;      /* cut with the session kept; no reconnect until uring_resume */
    bool tried;       /* a connection attempt ended (up or failed): subscriber_first_attempt_done */
    bool ever_up;     /* a session was established once: a reconnect expects it back */
    uint64_t down_ns; /* when the last connection ended */
    char last_cause[64]; /* how it ended, for the lost-session line */
} sub_uring;

/* SUBSCRIBER_MSG_REFUSED (ring and spool full past the stall limit, subscriber.h "Pause"):
 * mqttc sends no acknowledgement for it and hands over nothing more of that read; the turn
 * ends with a clean DISCONNECT (uring_poll) so the broker keeps the session and queues. */
static int on_message(void *arg, const mqtt_pkt *p)
{
    sub_uring *s = arg;
    int rc = s->cb.message(s->cb.arg, p->topic, p->topic_len, p->payload, p->payload_len, p->qos,
                           p->retain);
    if (rc != SUBSCRIBER_MSG_REFUSED)
        return 0;
    s->refused = true;
    return 1;
}

static void on_state(void *arg, enum mqttc_state st)
{
    sub_uring *s = arg;
    if (st == MQTTC_UP || st == MQTTC_DOWN)
        s->tried = true;
    if ((st == MQTTC_DOWN || st == MQTTC_CLOSED) && s->ever_up && !s->down_ns)
        s->down_ns = clock_mono_ns();
    if (st != MQTTC_SUBSCRIBING) /* the CONNACK was accepted: is our session still there? */
        return;
    /* what was published to our subscriptions while we were away is gone */
    subscriber_session_check(s->cb.slot, s->c->client_id, s->c->uri, s->c->clean_session,
                             mqttc_session_present(s->m), s->ever_up, s->last_cause,
                             s->down_ns ? (double)(clock_mono_ns() - s->down_ns) / 1e9 : 0.0);
    s->ever_up = true;
    s->down_ns = 0;
    snprintf(s->last_cause, sizeof(s->last_cause), "connection lost");
}

static void on_batch_done(void *arg)
{
    sub_uring *s = arg;
    if (s->cb.batch_done)
        s->cb.batch_done(s->cb.arg);
}

static void free_strs(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

static int uring_create(const cfg_client *c, const char *instance, const sub_cbs *cb, void **out)
{
    if (!c || !cb || !cb->message || !instance || c->n_topics == 0)
        return -EINVAL;
    sub_uring *s = calloc(1, sizeof(*s));
    char **filters = calloc(c->n_topics, sizeof(*filters));
    int *qos = calloc(c->n_topics, sizeof(*qos));
    char *id = NULL;
    int rc = -ENOMEM;
    if (!s || !filters || !qos)
        goto out;
    s->cb = *cb;
    s->c = c;
    for (size_t i = 0; i < c->n_topics; i++) {
        int n = c->shared_group
                    ? asprintf(&filters[i], "$share/%s/%s", c->shared_group, c->topics[i].name)
                    : asprintf(&filters[i], "%s", c->topics[i].name);
        if (n < 0) {
            filters[i] = NULL;
            goto out;
        }
        qos[i] = c->topics[i].qos;
    }
    /* subscriber.h: members of a shared group need distinct client ids */
    if ((c->shared_group ? asprintf(&id, "%s-%s", c->client_id, instance)
                         : asprintf(&id, "%s", c->client_id)) < 0) {
        id = NULL;
        goto out;
    }
    mqttc_opts o = {.c = c,
                    .client_id = id,
                    .will = true,
                    .filters = (const char *const *)filters,
                    .qos = qos,
                    .n_filters = c->n_topics,
                    /* no bound of our own, as with paho: the intake counts, logs and
                     * acknowledges a message above max_payload; refusing the packet here
                     * would drop the connection and the broker would send it again, forever */
                    .max_packet = MQTT_PKT_MAX_REMAIN,
                    .log_comp = LOG_COMP,
                    .rx_coalesce_us = cb->rx_coalesce_us,
                    /* we send only acknowledgements: their send and the wait for the next
                     * PUBLISH are one io_uring_enter (mqttc.h) */
                    .quiet_send = true,
                    .arg = s,
                    .message = on_message,
                    .batch_done = on_batch_done,
                    .state = on_state};
    rc = mqttc_create(&o, &s->m); /* copies id and filters */
out:
    free(id);
    free_strs(filters, c->n_topics);
    free(qos);
    if (rc < 0) {
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

static int uring_start(void *v)
{
    mqttc_start(((sub_uring *)v)->m);
    return 0;
}

/* One loop turn of the client: at most timeout_ms of waiting, returns after the first batch
 * of completions so the ingress's loop keeps its heartbeat and spool drain. */
static void uring_poll(void *v, int timeout_ms)
{
    sub_uring *s = v;
    int rc = mqttc_run(s->m, timeout_ms);
    if (rc < 0 && rc != -EINTR)
        log_error(LOG_COMP, "io_uring_enter for %s: %s", s->c->uri, strerror(-rc));
    if (s->refused) {
        /* the acknowledgements of what was stored go first, then DISCONNECT: the broker
         * keeps the persistent session and sends the refused message again later */
        s->refused = false;
        s->paused = true;
        subscriber_log_pause(s->c->client_id, s->c->uri, s->c->clean_session);
        snprintf(s->last_cause, sizeof(s->last_cause),
                 "paused by the ingress: its ring and spool were full");
        (void)mqttc_disconnect(s->m, 1000);
    }
}

static bool uring_first_attempt_done(const void *v)
{
    return ((const sub_uring *)v)->tried;
}

static bool uring_is_paused(const void *v)
{
    return ((const sub_uring *)v)->paused;
}

static void uring_resume(void *v)
{
    sub_uring *s = v;
    if (!s->paused)
        return;
    s->paused = false;
    log_info(LOG_COMP, "the pipeline has room again: reconnecting %s to %s", s->c->client_id,
             s->c->uri);
    mqttc_start(s->m);
}

static bool uring_is_ready(const void *v)
{
    return mqttc_get_state(((const sub_uring *)v)->m) == MQTTC_UP;
}

static bool uring_is_connected(const void *v)
{
    enum mqttc_state st = mqttc_get_state(((const sub_uring *)v)->m);
    return st == MQTTC_SUBSCRIBING || st == MQTTC_UP;
}

static int uring_stop(void *v, int timeout_ms)
{
    return mqttc_disconnect(((sub_uring *)v)->m, timeout_ms);
}

static void uring_destroy(void *v)
{
    sub_uring *s = v;
    if (!s)
        return;
    mqttc_destroy(s->m);
    free(s);
}

const sub_ops sub_uring_ops = {
    .name = "uring",
    .batches = true,
    .create = uring_create,
    .start = uring_start,
    .poll = uring_poll,
    .is_ready = uring_is_ready,
    .is_connected = uring_is_connected,
    .first_attempt_done = uring_first_attempt_done,
    .is_paused = uring_is_paused,
    .resume = uring_resume,
    .stop = uring_stop,
    .destroy = uring_destroy,
};
