/* mqttflow-ingress CONFIG INGRESS_INDEX: one MQTT client's subscriptions -> its ingress ring.
 *
 * Wiring only (STYLE 13): load the config, attach the ring and the stats slot the supervisor
 * created, open the ingress's spool (runtime.spool_dir/ingress<i>.<instance>/, for messages that
 * find the ring full), connect the subscriber (ingress/subscriber) whose messages go through intake
 * (ingress/intake) into the ring or the spool, report ready once subscribed, then keep the
 * heartbeat and the connection state and drain the spool into the ring until SIGTERM; on stop
 * disconnect first (nothing more arrives), drain the spool for a bounded time (what is left stays
 * on disk for the next start), then flush and detach. Exit codes: common/exitcode.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "clock.h"
#include "exitcode.h"
#include "intake.h"
#include "log.h"
#include "names.h"
#include "ring.h"
#include "shm.h"
#include "spool.h"
#include "stage.h"
#include "stats.h"
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

typedef struct ingress_app {
    cfg *conf;
    size_t index; /* ingress index (ring in<index>) */
    int client;   /* cfg client index */
    ring *r;
    stats *st;
    stats_slot *slot;
    intake *in;
    spool *sp;
    const sub_ops *ops; /* the broker connection's kind (sub_ops.h: paho or io_uring) */
    void *sub;
} ingress_app;

static int on_message(void *arg, const char *topic, size_t topic_len, const void *payload,
                      size_t payload_len, int qos, int retain)
{
    ingress_app *app = arg;
    int rc = intake_message(app->in, topic, topic_len, payload, payload_len, qos, retain);
    return rc == INTAKE_REFUSED ? SUBSCRIBER_MSG_REFUSED : rc;
}

/* io_uring kind: the batch's messages are committed; publish them to the router before the
 * subscriber acknowledges them */
static void on_batch_done(void *arg)
{
    ingress_app *app = arg;
    intake_flush(app->in);
}

static int load_config(ingress_app *app, const char *path, const char *index_arg)
{
    cfg_diag diag = {0};
    int rc = cfg_load(path, 0, &app->conf, &diag);
    for (size_t i = 0; i < diag.n_errors; i++)
        log_error(LOG_COMP, "%s", diag.errors[i]);
    cfg_diag_fini(&diag);
    if (rc < 0) {
        log_error(LOG_COMP, "cannot load %s: %s", path, strerror(-rc));
        return MF_EXIT_CONFIG;
    }
    log_set_default(app->conf->logging.default_level);
    for (size_t i = 0; i < app->conf->logging.n_levels; i++) {
        int lv = log_parse_level(app->conf->logging.levels[i].value);
        if (lv >= 0)
            log_set_level(app->conf->logging.levels[i].key, lv);
    }
    char *end;
    errno = 0;
    unsigned long idx = strtoul(index_arg, &end, 10);
    if (errno || *end || end == index_arg || idx >= cfg_ingress_count(app->conf)) {
        log_error(LOG_COMP, "ingress index \"%s\": the config has %zu client(s) with topics",
                  index_arg, cfg_ingress_count(app->conf));
        return MF_EXIT_CONFIG;
    }
    app->index = idx;
    app->client = cfg_ingress_client(app->conf, idx);
    /* name lines after the client, as the supervisor does ("ingress src"); no thread runs yet */
    char pname[64];
    snprintf(pname, sizeof(pname), "ingress %.48s", app->conf->clients[app->client].client_id);
    log_init(pname);
    return 0;
}

static int attach_segments(ingress_app *app)
{
    const char *inst = app->conf->runtime.instance;
    char name[SHM_NAME_MAX];
    int rc = names_ingress_ring(name, sizeof(name), inst, app->index);
    if (rc == 0 && (rc = ring_attach(name, RING_PRODUCER, &app->r)) < 0)
        log_error(LOG_COMP, "ring_attach(%s) as producer: %s", name, strerror(-rc));
    if (rc < 0)
        return rc;
    rc = names_stats(name, sizeof(name), inst);
    if (rc == 0 && (rc = stats_attach(name, &app->st)) < 0)
        log_error(LOG_COMP, "stats_attach(%s): %s", name, strerror(-rc));
    if (rc < 0)
        return rc;
    size_t slot = stats_slot_index(STATS_INGRESS, app->index, cfg_ingress_count(app->conf));
    if (slot >= stats_slot_count(app->st)) {
        log_error(LOG_COMP, "stats segment %s has %zu slots, ingress %zu needs slot %zu", name,
                  stats_slot_count(app->st), app->index, slot);
        return -EPROTO;
    }
    app->slot = stats_slot_at(app->st, slot);
    stats_set(&app->slot->pid, (uint64_t)getpid());
    return 0;
}

/* Until stopped: report ready once subscribed, keep heartbeat and connection state. */
static void run(ingress_app *app)
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
static void open_spool(ingress_app *app, const cfg_client *cl)
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
static void drain_on_stop(ingress_app *app)
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

int main(int argc, char **argv)
{
    ingress_app app = {0};
    int code = MF_EXIT_FAILED, rc;

    if (argc != 3) {
        fprintf(stderr, "usage: %s CONFIG INGRESS_INDEX\n", argv[0]);
        return MF_EXIT_CONFIG;
    }
    char pname[32];
    snprintf(pname, sizeof(pname), "ingress %.20s", argv[2]);
    if ((rc = stage_init(pname)) < 0) {
        log_error(LOG_COMP, "stage_init: %s", strerror(-rc));
        return MF_EXIT_FAILED;
    }
    if ((code = load_config(&app, argv[1], argv[2])) != 0)
        goto out_cfg;
    code = MF_EXIT_FAILED;
    stage_pin(app.conf->runtime.cpu_ingress);
    if (attach_segments(&app) < 0)
        goto out_segments;
    const cfg_client *cl = &app.conf->clients[app.client];
    rc = intake_create(app.r, app.slot, (size_t)app.client, app.conf->runtime.max_payload,
                       app.conf->runtime.overflow, &app.in);
    if (rc < 0) {
        log_error(LOG_COMP, "intake_create: %s", strerror(-rc));
        goto out_segments;
    }
    open_spool(&app, cl);
    if (intake_set_deadletter(app.in, app.conf->runtime.dead_letter_dir, app.conf->runtime.instance,
                              cl->client_id) < 0)
        log_warn(LOG_COMP, "intake_set_deadletter: out of memory; refused messages are only "
                           "counted");
    /* never hold the MQTT client's thread (it sends the PINGREQs) past half the keepalive: 40%
     * leaves room for the spool's fsync that may follow the wait; resume once the spool is half
     * drained, so the broker's queue does not grow for the whole drain */
    if (cl->keepalive > 0)
        intake_set_stall(app.in, cl->keepalive * 1000 * 2 / 5,
                         app.conf->runtime.spool_max_bytes / 2);
    app.ops = sub_ops_select(app.conf, cl);
    sub_cbs cbs = {.message = on_message,
                   .batch_done = on_batch_done,
                   .rx_coalesce_us = (unsigned)app.conf->runtime.ingress_coalesce_us,
                   .arg = &app};
    rc = app.ops->create(cl, app.conf->runtime.instance, &cbs, &app.sub);
    if (rc < 0) {
        code = rc == -EINVAL ? MF_EXIT_CONFIG : MF_EXIT_FAILED;
        goto out_intake;
    }
    if (app.ops->batches)
        intake_set_deferred_flush(app.in, 1);
    log_info(LOG_COMP, "MQTT data path for %s: %s", cl->uri, app.ops->name);
    app.ops->start(app.sub); /* a failure is retried by the next poll */
    run(&app);

    log_info(LOG_COMP, "stopping: disconnecting from %s", cl->uri);
    if (app.ops->stop(app.sub, STOP_WAIT_MS) < 0)
        log_warn(LOG_COMP, "no answer to DISCONNECT from %s within %d ms", cl->uri, STOP_WAIT_MS);
    app.ops->destroy(app.sub); /* waits for a message still being written */
    app.sub = NULL;
    drain_on_stop(&app); /* no message thread any more: the main thread is the producer */
    ring_flush(app.r);
    stats_set(&app.slot->connected, 0);
    log_info(LOG_COMP, "stopped after %llu record(s) in this ring",
             (unsigned long long)intake_next_seq(app.in));
    code = MF_EXIT_OK;

out_intake:
    if (app.ops)
        app.ops->destroy(app.sub);
    intake_destroy(app.in);
    spool_close(app.sp);
out_segments:
    if (app.slot)
        stats_set(&app.slot->pid, 0);
    stats_detach(app.st);
    ring_detach(app.r);
out_cfg:
    cfg_destroy(app.conf);
    return code;
}
