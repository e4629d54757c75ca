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

typedef struct agg {
    uint64_t deadline; /* UINT64_MAX while nothing is held */
    uint64_t count;
    double sum, min, max;
    ctx_origin o;
    chain_buf topic; /* of the last counted message */
} agg;

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

int step_aggregate_init(chain_step *s)
{
    if (!(s->cfg->interval > 0)) {
        log_error(COMP, "rule %s, step %zu (aggregate): needs an interval", s->cr->r->name,
                  s->index);
        return -EINVAL;
    }
    agg *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    a->deadline = UINT64_MAX;
    s->state = a;
    return 0;
}

void step_aggregate_fini(chain_step *s)
{
    if (!s->cfg || s->cfg->kind != CFG_STEP_AGGREGATE || !s->state)
        return;
    agg *a = s->state;
    chain_buf_fini(&a->topic);
    free(a);
    s->state = NULL;
}

uint64_t step_aggregate_deadline(const chain_step *s)
{
    const agg *a = s->state;
    return a ? a->deadline : UINT64_MAX;
}

int step_aggregate_process(chain_step *s, const ctx_origin *o, const mf_msg *m)
{
    agg *a = s->state;
    json_t *v = chain_json_field(m, s->cfg->field);
    int is_num = json_is_number(v);
    double x = is_num ? json_number_value(v) : 0;
    json_decref(v);
    if (!is_num)
        return 0;

    a->topic.len = 0;
    if (chain_buf_put(&a->topic, m->topic, strlen(m->topic)) < 0 || chain_buf_nul(&a->topic) < 0) {
        chain_count_error(s->cr);
        return -ENOMEM;
    }
    if (a->count == 0) {
        a->min = x;
        a->max = x;
        a->sum = 0;
        a->o = *o;
        a->o.qos = 0;
        a->deadline = clock_mono_ns() + (uint64_t)(s->cfg->interval * 1e9);
    }
    a->count++;
    a->sum += x;
    if (x < a->min)
        a->min = x;
    if (x > a->max)
        a->max = x;
    int qos = a->o.qos > m->qos ? a->o.qos : m->qos;
    a->o = *o;
    a->o.qos = qos;
    a->o.retain = 0;
    return 0;
}

void step_aggregate_close(chain_step *s)
{
    agg *a = s->state;
    if (a->count == 0)
        return;
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
        .topic = a->topic.p,
        .payload = out,
        .payload_len = (size_t)len,
        .qos = a->o.qos,
        .retain = 0,
        .client_id = chain_client_name(s->cr, a->o.client),
        .received_ns = a->o.received_ns,
    };
    ctx_origin o = a->o;
    a->count = 0;
    a->deadline = UINT64_MAX;
    chain_feed(s->cr, s->index + 1, &o, &m);
}
