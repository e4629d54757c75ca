/* step_aggregate: count / min / max / avg / sum of a numeric JSON `field` (none = a payload
 * that is a number) over a tumbling window of `interval` seconds that opens with its first
 * message, like a sampler's. At the close it hands on one message on the topic of the last
 * message: {"fn":"avg","field":"temp","value":21.5,"count":3} (value is the count for fn
 * count). Messages without a numeric value are not counted (for fn count as well), so the
 * result describes the values it was computed from. A window with no value emits nothing. */
#include <errno.h>
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain_int.h"
#include "clock.h"
#include "log.h"

#define COMP "worker"

/* The step's state, one double-buffered record in its region of the state segment
 * (wstate.h): every message publishes a new copy, so a SIGKILL leaves the sums before or after
 * it. The topic of the last counted message is kept up to WSTATE_TOPIC_MAX bytes; a longer one
 * is an error (the message is not counted). */
typedef struct agg {
    uint64_t deadline; /* UINT64_MAX while nothing is held */
    uint64_t count;
    double sum, min, max;
    uint64_t attempts; /* closes begun on this content */
    wstate_applied applied;
    int32_t client;
    uint32_t qos;
    uint64_t seq, received_ns;
    uint32_t topic_len, pad;
    char topic[WSTATE_TOPIC_MAX + 1];
} agg;

static size_t step_aggregate_state_size(const cfg_step *c)
{
    (void)c;
    return WSTATE_DB_SIZE(sizeof(agg));
}

static const agg *cur(const chain_step *s)
{
    return wstate_db_cur(s->region, sizeof(agg));
}

static const char *fn_name(enum cfg_agg_fn fn)
{
    switch (fn) {
    case CFG_AGG_COUNT:
        return "count";
    case CFG_AGG_MIN:
        return "min";
    case CFG_AGG_MAX:
        return "max";
    case CFG_AGG_AVG:
        return "avg";
    case CFG_AGG_SUM:
        return "sum";
    }
    return "?";
}

static int step_aggregate_init(chain_step *s)
{
    if (!(s->cfg->interval > 0)) {
        log_error(COMP, "rule %s, step %zu (aggregate): needs an interval", s->cr->r->name,
                  s->index);
        return -EINVAL;
    }
    if (!s->region || s->region_len < sizeof(agg))
        return -EINVAL; /* our bug: the plan gave it no region */
    const agg *a = cur(s);
    bool fresh = a->count == 0 && a->deadline == 0;
    bool sane = a->count == 0 || (a->topic_len <= WSTATE_TOPIC_MAX && !a->topic[a->topic_len] &&
                                  a->deadline != UINT64_MAX && a->qos <= 2);
    if (fresh || !sane) {
        if (!sane)
            log_error(COMP, "%s: state left by the previous worker is corrupt: emptied", s->label);
        agg *n = wstate_db_next(s->region, sizeof(agg));
        memset(n, 0, sizeof(*n));
        n->deadline = UINT64_MAX;
        wstate_db_publish(s->region);
    } else if (a->count) {
        log_info(COMP, "%s: %llu values carried over from the previous worker", s->label,
                 (unsigned long long)a->count);
    }
    s->replay.on = chain_replay(s->cr) && cur(s)->applied.pos != 0;
    s->state = s->region;
    return 0;
}

static void step_aggregate_fini(chain_step *s)
{
    s->state = NULL; /* the region stays for the next worker */
}

static uint64_t step_aggregate_deadline(const chain_step *s)
{
    if (!s->state)
        return UINT64_MAX;
    const agg *a = cur(s);
    return a->count ? a->deadline : UINT64_MAX;
}

static int step_aggregate_process(chain_step *s, const ctx_origin *o, const mf_msg *m)
{
    json_t *v = chain_json_field(m, s->cfg->field);
    int is_num = json_is_number(v);
    double x = is_num ? json_number_value(v) : 0;
    json_decref(v);
    if (!is_num)
        return 0;
    if (wstate_replay_skip(&s->replay, &cur(s)->applied, o->pos))
        return 0; /* counted by the previous worker before it died */

    size_t tl = strlen(m->topic);
    if (tl > WSTATE_TOPIC_MAX) {
        log_error(COMP, "%s: topic of %zu bytes is longer than %u: value not counted", s->label, tl,
                  WSTATE_TOPIC_MAX);
        chain_count_error(s->cr);
        return -ENAMETOOLONG;
    }
    agg *a = wstate_db_next(s->region, sizeof(agg));
    if (a->count == 0) {
        a->min = x;
        a->max = x;
        a->sum = 0;
        a->qos = 0;
        a->attempts = 0;
        a->deadline = clock_mono_ns() + (uint64_t)(s->cfg->interval * 1e9);
    }
    a->count++;
    a->sum += x;
    if (x < a->min)
        a->min = x;
    if (x > a->max)
        a->max = x;
    if ((uint32_t)m->qos > a->qos && m->qos <= 2)
        a->qos = (uint32_t)m->qos;
    a->client = o->client;
    a->seq = o->seq;
    a->received_ns = o->received_ns;
    memcpy(a->topic, m->topic, tl + 1);
    a->topic_len = (uint32_t)tl;
    a->applied = wstate_applied_next(a->applied, o->pos);
    wstate_db_publish(s->region);
    return 0;
}

static void step_aggregate_close(chain_step *s)
{
    const agg *a = cur(s);
    if (a->count == 0)
        return;
    agg *n = wstate_db_next(s->region, sizeof(agg));
    n->attempts++;
    wstate_db_publish(s->region);
    a = cur(s);
    if (!chain_close_allowed(s, (unsigned)a->attempts, (size_t)a->count))
        goto reset;
    double value = 0;
    switch (s->cfg->agg_fn) {
    case CFG_AGG_COUNT:
        value = (double)a->count;
        break;
    case CFG_AGG_MIN:
        value = a->min;
        break;
    case CFG_AGG_MAX:
        value = a->max;
        break;
    case CFG_AGG_AVG:
        value = a->sum / (double)a->count;
        break;
    case CFG_AGG_SUM:
        value = a->sum;
        break;
    }
    char out[512];
    int len = snprintf(out, sizeof(out),
                       "{\"fn\":\"%s\",\"field\":\"%.200s\",\"value\":%.17g,"
                       "\"count\":%llu}",
                       fn_name(s->cfg->agg_fn), s->cfg->field ? s->cfg->field : "", value,
                       (unsigned long long)a->count);
    if (len < 0 || (size_t)len >= sizeof(out))
        len = (int)strlen(out);
    mf_msg m = {
        .topic = a->topic,
        .payload = out,
        .payload_len = (size_t)len,
        .qos = (int)a->qos,
        .retain = 0,
        .client_id = chain_client_name(s->cr, a->client),
        .received_ns = a->received_ns,
    };
    ctx_origin o = {
        .client = a->client,
        .qos = (int)a->qos,
        .seq = a->seq,
        .received_ns = a->received_ns,
    };
    chain_feed(s->cr, s->index + 1, &o, &m);
    chain_flush(s->cr); /* the output is out before the sums are forgotten */
reset:
    n = wstate_db_next(s->region, sizeof(agg));
    n->count = 0;
    n->deadline = UINT64_MAX;
    n->attempts = 0;
    wstate_db_publish(s->region);
}

static bool holds(const chain_step *s)
{
    return step_aggregate_deadline(s) != UINT64_MAX;
}

const step_ops step_aggregate_ops = {
    .state_size = step_aggregate_state_size,
    .init = step_aggregate_init,
    .process = step_aggregate_process,
    .deadline = step_aggregate_deadline,
    .holds = holds,
    .close = step_aggregate_close,
    .fini = step_aggregate_fini,
};
