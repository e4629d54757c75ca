#include "run.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chain.h"
#include "clock.h"
#include "ctx.h"
#include "deadrec.h"
#include "loader.h"
#include "log.h"
#include "names.h"
#include "out.h"
#include "rec.h"
#include "ring.h"
#include "rtime.h"
#include "shm.h"
#include "stage.h"
#include "stats.h"
#include "watchdog.h"
#include "wstate.h"
#include "ring_layout.h"

#define COMP "worker"

struct run {
    const cfg *c;
    size_t worker;
    ctx_env env;
    loader *ld;
    chain_set *cs;
    ring *in, *outr;
    out o;
    stats *st;             /* the stats segment (stage.h's, borrowed), from run_attach */
    stats_slot local_slot; /* counters until run_attach hands the worker's slot */
    ctx_busy busy;
    watchdog *wd;
    wstate *ws;         /* the worker's state segment (run_attach) */
    uint16_t crash_aux; /* REC_DEAD aux for a record past max_attempts: the last death's cause */
    rtime rt;           /* processing times of `status --rules` */
};

static void flush_out(void *arg)
{
    out_flush(arg);
}

int run_create(const cfg *c, size_t worker, run **out_r)
{
    int rc;
    run *r = calloc(1, sizeof(*r));

    *out_r = NULL;
    if (!r)
        return -ENOMEM;
    r->c = c;
    r->worker = worker;
    r->env.c = c;
    r->env.append = out_append;
    r->env.append_arg = &r->o;
    r->env.flush = flush_out;
    r->env.slot = &r->local_slot;
    r->busy.rule = -1;
    r->crash_aux = REC_DEAD_AUX(REC_DEAD_CRASHED, 0);
    r->env.busy = &r->busy;
    if ((rc = loader_create(&r->env, &r->ld)) < 0)
        goto fail;
    if ((rc = chain_set_create(&r->env, r->ld, &r->cs)) < 0)
        goto fail;
    *out_r = r;
    return 0;
fail:
    run_destroy(r);
    return rc;
}

/* Opens the state segment and rebuilds the chains over it (run_create built them over
 * private memory to find configuration problems before anything is attached). The input
 * ring's creator identifies the ring the stored input positions refer to. */
static int attach_state(run *r, const char *in_name)
{
    shm *in_seg = NULL;
    wstate_input in = {0};
    ring_stats rs;
    int rc = shm_attach(in_name, SHM_KIND_RING, RING_LAYOUT_VERSION, &in_seg);
    if (rc == 0) {
        const shm_hdr *h = shm_base(in_seg);
        in.pid = h->owner_pid;
        in.start = h->owner_start;
        shm_detach(in_seg);
    } else {
        log_warn(COMP, "cannot read the owner of input ring %s: %s", in_name, strerror(-rc));
    }
    ring_get_stats(r->in, &rs);
    in.tail = rs.tail;
    if ((rc = wstate_open(r->c, r->worker, &in, &r->ws)) < 0)
        return rc;
    chain_set_destroy(r->cs);
    r->cs = NULL;
    r->env.state = r->ws;
    if ((rc = chain_set_create(&r->env, r->ld, &r->cs)) < 0)
        log_error(COMP, "chains over the state segment: %s", strerror(-rc));
    return rc;
}

/* Why the predecessor in this slot died (stats.h STATS_W_*), as the aux of the records it
 * leaves dead. Only the last death is known: a record dead after max_attempts deaths names
 * the cause of the last one. The timeout mark is cleared so it describes one death only. */
static void note_last_death(run *r)
{
    stats_slot *s = r->env.slot;
    uint64_t death = stats_get(&s->extra[STATS_W_DEATH]);
    unsigned sig = (unsigned)(death & STATS_W_DEATH_SIG);
    int timeout =
        stats_get(&s->extra[STATS_W_TIMEOUT_NS]) != 0 || (death & STATS_W_DEATH_BACKSTOP) != 0;

    r->crash_aux = REC_DEAD_AUX(timeout ? REC_DEAD_TIMEOUT : REC_DEAD_CRASHED, sig);
    stats_set(&s->extra[STATS_W_TIMEOUT_NS], 0);
}

int run_attach(run *r, stats *st, stats_slot *slot)
{
    char name[SHM_NAME_MAX];
    const char *inst = r->c->runtime.instance;
    int rc;

    if ((rc = names_worker_out(name, sizeof(name), inst, r->worker)) < 0 ||
        (rc = ring_attach(name, RING_PRODUCER, &r->outr)) < 0) {
        log_error(COMP, "attach of output ring %s as producer: %s", name, strerror(-rc));
        return rc;
    }
    out_init(&r->o, r->outr);
    if ((rc = names_worker_in(name, sizeof(name), inst, r->worker)) < 0 ||
        (rc = ring_attach(name, RING_CONSUMER, &r->in)) < 0) {
        log_error(COMP, "attach of input ring %s as consumer: %s", name, strerror(-rc));
        return rc;
    }
    if ((rc = attach_state(r, name)) < 0)
        return rc;
    r->st = st;
    r->env.slot = slot;
    stats_set(&r->env.slot->busy_since_ns, 0); /* a dead predecessor may have left it set */
    r->env.busy_floor_ns = clock_mono_ns();    /* after the supervisor's spawn time (ctx.h) */
    note_last_death(r);
    rc = watchdog_start(&r->env, r->c->runtime.callback_timeout_ms, &r->wd);
    if (rc < 0)
        log_error(COMP, "pthread_create of the callback watchdog: %s", strerror(-rc));
    return rc;
}

void run_destroy(run *r)
{
    if (!r)
        return;
    watchdog_stop(r->wd);
    if (r->outr)
        ring_flush(r->outr);
    chain_set_destroy(r->cs);
    wstate_close(r->ws);
    loader_destroy(r->ld);
    ring_detach(r->in);
    ring_detach(r->outr);
    free(r);
}

/* What a rule runs, for logs: its callback's or its chain's name. */
static const char *rule_target(const cfg *c, const cfg_rule *rule)
{
    if (rule->callback >= 0 && (size_t)rule->callback < c->n_callbacks)
        return c->callbacks[rule->callback].name;
    if (rule->chain >= 0 && (size_t)rule->chain < c->n_chains)
        return c->chains[rule->chain].name;
    return "?";
}

/* The per-rule dead-letter count of `status --rules` (stats.h), when the rule is counted. */
static void count_rule_dead(run *r, size_t rule)
{
    stats_rule_row *row = r->st ? stats_rule_row_at(r->st, r->worker, rule) : NULL;
    if (row)
        stats_add(&row->dead, 1);
}

/* Counts the open group of processing times (rtime.h): one fine clock read per group. */
static void timer_close(run *r)
{
    if (!r->rt.n)
        return;
    stats_rule_row *row = r->st ? stats_rule_row_at(r->st, r->worker, r->rt.rule) : NULL;
    rtime_close(&r->rt, clock_mono_ns(), row);
}

/* Runs one input record through its rule. Per record (STYLE 25), in bench_pipeline's
 * forwarding chain (one custom_processor, echo with a prefix) about 95-115 ns of CPU: no system
 * call and no wake-up (those are per batch: the output ring's flush, ring_wait_paced in
 * run_loop); one coarse clock read (ctx_call's busy mark, 5 ns); a fine one only per group of
 * records (rtime.h, about 1 ns per record); one topic check of the emitted topic (mf_emit;
 * ctx_write at the chain's end trusts it, ctx.c); the record's decode and the output's
 * encode (a copy of topic and payload each); the rest is the callback's own work and the
 * calls between the steps. */
static void handle(run *r, const void *buf, size_t len)
{
    const cfg *c = r->c;
    stats_slot *slot = r->env.slot;
    rec_view v;
    unsigned att = ring_begin(r->in);
    enum rec_bad why = rec_check(buf, len, &v);
    int rc;

    stats_add(&slot->in, 1);
    if (why != REC_BAD_NONE) {
        /* issue 8 item 3: no topic to file it under, but its bytes and length are kept */
        rc = deadrec_undecodable(&r->env, buf, len, why);
        log_error(COMP, "input record of %zu bytes does not decode (%s): %s", len,
                  rec_bad_text(why),
                  rc == 0 ? "dead-lettered (first bytes kept)" : "NOT dead-lettered");
        stats_add(&slot->errors, 1);
        stats_add(&slot->dead, 1);
        goto done;
    }
    if (v.h.kind != REC_MSG || v.h.rule >= c->n_rules) {
        /* issue 8 item 3: a dead letter that says which, with its bytes */
        int kind = v.h.kind != REC_MSG;
        rc = deadrec_misplaced(&r->env, buf, len, kind ? REC_MISPLACED_KIND : REC_MISPLACED_RULE,
                               kind ? v.h.kind : v.h.rule);
        log_error(COMP, "input record of kind %u for rule %u: not a message of a known rule: %s",
                  v.h.kind, v.h.rule,
                  rc == 0 ? "dead-lettered (its bytes kept)" : "NOT dead-lettered");
        stats_add(&slot->errors, 1);
        stats_add(&slot->dead, 1);
        goto done;
    }
    const cfg_rule *rule = &c->rules[v.h.rule];
    if (v.h.payload_len > c->runtime.max_payload) {
        /* the ingress refuses these; one that got here anyway is not given to a callback */
        log_error(COMP,
                  "dead message: rule %s, topic \"%s\": payload of %u bytes exceeds "
                  "runtime.max_payload (%zu)",
                  rule->name, v.topic, v.h.payload_len, c->runtime.max_payload);
        stats_add(&slot->dead, 1);
        count_rule_dead(r, v.h.rule);
        deadrec_message(&r->env, &v, REC_DEAD_AUX(REC_DEAD_TOO_LARGE, 0));
        goto done;
    }
    if (c->runtime.max_attempts > 0 && att > (unsigned)c->runtime.max_attempts) {
        /* its processing killed this worker max_attempts times: skip it so the rest flows */
        log_error(COMP,
                  "dead message: rule %s, callback %s, topic \"%s\" (%u bytes): it "
                  "killed the worker %u times",
                  rule->name, rule_target(c, rule), v.topic, v.h.payload_len, att - 1);
        stats_add(&slot->dead, 1);
        count_rule_dead(r, v.h.rule);
        deadrec_message(&r->env, &v, r->crash_aux);
        goto done;
    }
    if (att > 1)
        log_warn(COMP, "rule %s, topic \"%s\": attempt %u (the worker died running it)", rule->name,
                 v.topic, att);

    int client = v.h.client < c->n_clients ? v.h.client : -1;
    mf_msg m = {
        .topic = v.topic,
        .payload = v.payload,
        .payload_len = v.h.payload_len,
        .qos = v.h.qos,
        .retain = v.h.retain,
        .client_id = client >= 0 ? c->clients[client].client_id : "",
        .received_ns = v.h.received_ns,
    };
    ctx_origin o = {
        .client = client,
        .qos = v.h.qos,
        .retain = v.h.retain,
        .seq = v.h.seq,
        .received_ns = v.h.received_ns,
        .pos = ring_read_pos(r->in) + 1, /* the record's own position: not yet advanced */
    };
    if (rtime_due(&r->rt, v.h.rule))
        timer_close(r);
    rc = chain_run(r->cs, v.h.rule, &o, &m);
    rtime_add(&r->rt, v.h.rule, rc != 0); /* `status --rules` (workers/rtime.h) */
    if (rc == CHAIN_ERR_INVALID_TOPIC) {
        count_rule_dead(r, v.h.rule);
        stats_add(&slot->dead, 1);
        deadrec_message(&r->env, &v, REC_DEAD_AUX(REC_DEAD_INVALID_TOPIC, 0));
    } else if (rc != 0 && rule->on_error == CFG_ON_ERROR_DEAD_LETTER) {
        count_rule_dead(r, v.h.rule);
        stats_add(&slot->dead, 1);
        deadrec_message(
            &r->env, &v,
            REC_DEAD_AUX(rc == CHAIN_ERR_STEP ? REC_DEAD_STEP_ERROR : REC_DEAD_CALLBACK_ERROR, 0));
    }
done:
    ring_end(r->in);
    ring_advance(r->in);
}

/* A corrupt record header in the input ring (something wrote into it: issue 8 item 4): the
 * region up to the router's published head is skipped, counted (errors, dead) and handed to
 * the dead-letter store with its size and first bytes, so the worker goes on with what the
 * router writes next instead of stopping (it would find the same damage after every
 * restart). */
static void quarantine(run *r)
{
    const void *first;
    size_t first_len;
    uint64_t at = ring_read_pos(r->in);
    uint64_t bytes = ring_skip_damaged(r->in, &first, &first_len);
    int rc = deadrec_region(&r->env, bytes, first, first_len);
    out_flush(&r->o);
    ring_release(r->in);
    stats_add(&r->env.slot->errors, 1);
    stats_add(&r->env.slot->dead, 1);
    log_error(COMP,
              "input ring of worker %zu is corrupt at position %llu: %llu byte(s) up to the "
              "router's head skipped and %s; reading on",
              r->worker, (unsigned long long)at, (unsigned long long)bytes,
              rc == 0 ? "dead-lettered (first bytes kept)" : "NOT dead-lettered (output full)");
}

/* Whether the router (the producer of the input ring) runs, from its stats slot: the
 * supervisor clears a slot's pid when its stage exits, and stops the router before the
 * workers. Without a stats segment (a worker run by hand) nobody will restart this worker
 * with the windows: treated as not running. */
static bool router_running(const run *r)
{
    if (!r->st)
        return false;
    size_t idx = stats_slot_index(STATS_ROUTER, 0, cfg_ingress_count(r->c));
    if (idx >= stats_slot_count(r->st))
        return false;
    uint64_t pid = stats_get(&stats_slot_at(r->st, idx)->pid);
    return pid != 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

static int wait_ms(const run *r, uint64_t now)
{
    uint64_t d = chain_next_deadline(r->cs);
    if (d == UINT64_MAX)
        return RUN_WAIT_MS;
    if (d <= now)
        return 0;
    uint64_t ms = (d - now + 999999) / 1000000;
    return ms < RUN_WAIT_MS ? (int)ms : RUN_WAIT_MS;
}

int run_loop(run *r)
{
    stats_slot *slot = r->env.slot;
    int rc = 0;
    size_t taken = 0; /* records taken since the last wait */
    ring_pace pace = {0};

    for (;;) {
        /* read before draining: once seen, take what the ring holds, then leave */
        int stopping = stage_stop_flag;
        uint64_t now = clock_mono_ns();
        const void *buf;
        size_t len, n = 0;

        stats_set(&slot->heartbeat_ns, now);
        chain_tick(r->cs, now);
        rtime_start(&r->rt, clock_mono_ns()); /* per batch */
        while (n < RUN_BATCH && (rc = ring_peek(r->in, &buf, &len)) == 0) {
            handle(r, buf, len);
            n++;
        }
        timer_close(r);
        /* outputs first, then the inputs they came from (at-least-once) */
        out_flush(&r->o);
        if (n) {
            ring_release(r->in);
            wstate_note_released(r->ws, ring_read_pos(r->in));
        }
        if (rc == -EBADMSG) {
            quarantine(r);
            continue;
        }
        taken += n;
        if (n == RUN_BATCH)
            continue;
        if (stopping)
            break;
        /* a loop whose records come fast enough naps (records that arrive meanwhile cost the
         * router no wake-up); a slower one, or one whose nap found nothing, parks: see
         * ring_pace_nap and ring_wait_paced for the costs */
        rc = ring_wait_paced(&r->in, 1, NULL, 0, wait_ms(r, clock_mono_ns()),
                             ring_pace_nap(&pace, taken));
        taken = 0;
        (void)rc; /* data, timeout or a signal: the next turn looks at all three */
    }
    /* stopping: the input ring is drained. A live restart of this worker leaves open windows
     * in the state segment for the next worker, which closes them on time. A stop of the whole
     * instance (the router stopped before the workers) closes them early instead: the
     * supervisor removes the state segments of a cleanly stopped instance, so waiting would
     * lose them. */
    if (!router_running(r)) {
        log_info(COMP, "the router is not running (the instance stops): closing open windows now");
        chain_close_all(r->cs);
    }
    out_flush(&r->o);
    ring_release(r->in);
    return 0;
}
