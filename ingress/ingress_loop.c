/* ingress_loop: the ingress's life (see ingress_loop.h). */
#include "ingress_loop.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "intake.h"
#include "log.h"
#include "names.h"
#include "shm.h"
#include "spool.h"
#include "stage.h"
#include "sub_ops.h"
#include "subscriber.h"

#define LOG_COMP          "ingress"
#define LOOP_MS           200  /* bounds how late a missed stop signal is seen */
#define STOP_WAIT_MS      3000 /* broker's answer to DISCONNECT */
#define DRAIN_MS          20   /* loop turn while the spool holds records */
#define STOP_DRAIN_MS     2000 /* on stop, how long the spool may drain into the ring */
#define SPILL_WAIT_MAX_MS 100
/* connecting failed this long after start: report ready anyway (well under the supervisor's
 * 30 s ready timeout) */
#define READY_UNCONNECTED_MS 5000

struct ingress_loop {
    const cfg *conf;
    size_t index; /* ingress index (ring in<index>) */
    int client;   /* cfg client index */
    ring *r;
    stats_slot *slot; /* stage.h's, borrowed */
    intake *in;
    spool *sp;
    const sub_ops *ops; /* the broker connection's kind (sub_ops.h: paho or io_uring) */
    void *sub;
};

static int on_message(void *arg, const char *topic, size_t topic_len, const void *payload,
                      size_t payload_len, int qos, int retain)
{
    ingress_loop *app = arg;
    int rc = intake_message(app->in, topic, topic_len, payload, payload_len, qos, retain);
    return rc == INTAKE_REFUSED ? SUBSCRIBER_MSG_REFUSED : rc;
}

/* io_uring kind: the batch's messages are committed; publish them to the router before the
 * subscriber acknowledges them */
static void on_batch_done(void *arg)
{
    ingress_loop *app = arg;
    intake_flush(app->in);
}

/* Until stopped: report ready once subscribed, keep heartbeat and connection state. */
static void serve(ingress_loop *app)
{
    int ready_sent = 0, poll_ms = LOOP_MS;
    uint64_t started_ns = clock_mono_ns();
    while (!stage_stop_flag) {
        app->ops->poll(app->sub, poll_ms);
        /* ready once subscribed, or once connecting has failed for READY_UNCONNECTED_MS: the
         * stage is up and retries by itself, as the relay does; holding the instance in
         * "starting" got the ingress SIGKILLed every 30 s for a broker that is down, which
         * fixes nothing. The grace keeps "ready = subscribed" for a broker that is only
         * slow to come up (tests publish right after ready) */
        if (!ready_sent && (app->ops->is_ready(app->sub) ||
                            (app->ops->first_attempt_done(app->sub) &&
                             clock_mono_ns() - started_ns >= READY_UNCONNECTED_MS * 1000000ull))) {
            int rc = stage_ready();
            if (rc < 0)
                log_warn(LOG_COMP, "stage_ready: %s", strerror(-rc));
            if (!app->ops->is_ready(app->sub))
                log_warn(LOG_COMP,
                         "ready without a broker connection to %s: the instance runs, this "
                         "ingress keeps retrying (see the connect error above; 'mqttflow "
                         "status' shows CONN 0 until it is connected)",
                         app->conf->clients[app->client].uri);
            ready_sent = 1;
        }
        if (app->ops->is_paused(app->sub) && intake_has_room(app->in))
            app->ops->resume(app->sub);
        stats_set(&app->slot->connected, app->ops->is_connected(app->sub) ? 1 : 0);
        stats_set(&app->slot->heartbeat_ns, clock_mono_ns());
        uint64_t left = 0;
        intake_drain(app->in, &left);
        poll_ms = left ? DRAIN_MS : LOOP_MS;
    }
}

/* The spool is an addition: without it (no disk, no io_uring) the ingress still runs, a full
 * ring then blocks paho's thread as before. */
static void open_spool(ingress_loop *app, const cfg_client *cl)
{
    char dir[4096], name[96];
    /* the instance in the name: several instances may share one spool_dir (a spool has one
     * owner; a second one would wait for the lock and run without a spool) */
    snprintf(dir, sizeof(dir), "%s/ingress%zu.%s", app->conf->runtime.spool_dir, app->index,
             app->conf->runtime.instance);
    snprintf(name, sizeof(name), "ingress %.64s", cl->client_id);
    spool_opts o = {.max_bytes = app->conf->runtime.spool_max_bytes, .name = name};
    int rc = spool_open(dir, &o, &app->sp);
    if (rc < 0) {
        log_error(LOG_COMP,
                  "spool_open(%s): %s; running without a spool (a full ring will "
                  "block the broker connection)",
                  dir, strerror(-rc));
        return;
    }
    /* well under keepalive / 2: paho's receive thread also sends the PINGREQs */
    int wait_ms = cl->keepalive > 0 ? cl->keepalive * 1000 / 4 : SPILL_WAIT_MAX_MS;
    if (wait_ms > SPILL_WAIT_MAX_MS)
        wait_ms = SPILL_WAIT_MAX_MS;
    if ((rc = intake_set_spool(app->in, app->sp, wait_ms)) < 0) {
        log_error(LOG_COMP, "intake_set_spool: %s; running without a spool", strerror(-rc));
        spool_close(app->sp);
        app->sp = NULL;
        return;
    }
    uint64_t n = spool_count(app->sp);
    if (n)
        log_info(LOG_COMP, "%llu message(s) waiting in the spool %s go to the ring first",
                 (unsigned long long)n, dir);
}

/* After the subscriber stopped: let the spool drain while the consumer makes room, bounded. */
static void drain_on_stop(ingress_loop *app)
{
    uint64_t left = 0, end = clock_mono_ns() + STOP_DRAIN_MS * 1000000ull;
    intake_drain(app->in, &left);
    while (left && clock_mono_ns() < end) {
        (void)ring_wait_space(app->r, ring_max_record(app->r), DRAIN_MS);
        intake_drain(app->in, &left);
    }
    if (left)
        log_info(LOG_COMP, "%llu message(s) stay in the spool for the next start",
                 (unsigned long long)left);
}

void ingress_loop_destroy(ingress_loop *app)
{
    if (!app)
        return;
    if (app->ops)
        app->ops->destroy(app->sub);
    intake_destroy(app->in);
    spool_close(app->sp);
    ring_detach(app->r);
    free(app);
}

int ingress_loop_create(const cfg *c, size_t index, stats_slot *slot, ingress_loop **out)
{
    char name[SHM_NAME_MAX];
    int rc;
    ingress_loop *app = calloc(1, sizeof(*app));
    *out = NULL;
    if (!app)
        return -ENOMEM;
    app->conf = c;
    app->index = index;
    app->client = cfg_ingress_client(c, index);
    app->slot = slot;
    rc = names_ingress_ring(name, sizeof(name), c->runtime.instance, index);
    if (rc == 0 && (rc = ring_attach(name, RING_PRODUCER, &app->r)) < 0)
        log_error(LOG_COMP, "ring_attach(%s) as producer: %s", name, strerror(-rc));
    if (rc < 0)
        goto fail;
    const cfg_client *cl = &c->clients[app->client];
    rc = intake_create(app->r, app->slot, (size_t)app->client, c->runtime.max_payload,
                       c->runtime.overflow, &app->in);
    if (rc < 0) {
        log_error(LOG_COMP, "intake_create: %s", strerror(-rc));
        goto fail;
    }
    open_spool(app, cl);
    if (intake_set_deadletter(app->in, c->runtime.dead_letter_dir, c->runtime.instance,
                              cl->client_id) < 0)
        log_warn(LOG_COMP, "intake_set_deadletter: out of memory; refused messages are only "
                           "counted");
    /* never hold the MQTT client's thread (it sends the PINGREQs) past half the keepalive: 40%
     * leaves room for the spool's fsync that may follow the wait; resume once the spool is half
     * drained, so the broker's queue does not grow for the whole drain */
    if (cl->keepalive > 0)
        intake_set_stall(app->in, cl->keepalive * 1000 * 2 / 5, c->runtime.spool_max_bytes / 2);
    app->ops = sub_ops_select(c, cl);
    sub_cbs cbs = {.message = on_message,
                   .batch_done = on_batch_done,
                   .rx_coalesce_us = (unsigned)c->runtime.ingress_coalesce_us,
                   .arg = app,
                   .slot = app->slot};
    rc = app->ops->create(cl, c->runtime.instance, &cbs, &app->sub);
    if (rc < 0)
        goto fail; /* -EINVAL: a client the MQTT library refuses (a configuration error) */
    if (app->ops->batches)
        intake_set_deferred_flush(app->in, 1);
    *out = app;
    return 0;
fail:
    ingress_loop_destroy(app);
    return rc;
}

int ingress_loop_run(ingress_loop *app)
{
    const cfg_client *cl = &app->conf->clients[app->client];
    log_info(LOG_COMP, "MQTT data path for %s: %s", cl->uri, app->ops->name);
    app->ops->start(app->sub); /* a failure is retried by the next poll */
    serve(app);

    log_info(LOG_COMP, "stopping: disconnecting from %s", cl->uri);
    if (app->ops->stop(app->sub, STOP_WAIT_MS) < 0)
        log_warn(LOG_COMP, "no answer to DISCONNECT from %s within %d ms", cl->uri, STOP_WAIT_MS);
    app->ops->destroy(app->sub); /* waits for a message still being written */
    app->sub = NULL;
    drain_on_stop(app); /* no message thread any more: the main thread is the producer */
    ring_flush(app->r);
    stats_set(&app->slot->connected, 0);
    log_info(LOG_COMP, "stopped after %llu record(s) in this ring",
             (unsigned long long)intake_next_seq(app->in));
    return 0;
}
