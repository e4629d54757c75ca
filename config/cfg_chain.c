/* cfg_chain: the `processing_chains:` section; one schema table per step kind. */
#include "cfg_int.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define F(key, type, field, def, ...)                                                              \
    {                                                                                              \
        key, type, offsetof(cfg_step, field), def, __VA_ARGS__                                     \
    }

static const cfg_enum_name agg_fns[] = {
    {"count", CFG_AGG_COUNT}, {"min", CFG_AGG_MIN}, {"max", CFG_AGG_MAX},
    {"avg", CFG_AGG_AVG},     {"sum", CFG_AGG_SUM}, {NULL, 0},
};
_Static_assert(sizeof(enum cfg_agg_fn) == sizeof(int), "CFG_F_ENUM stores an int");

static const cfg_field sampler_fields[] = {
    F("duration", CFG_F_DURATION, duration, NULL, CFG_REQUIRED, 0, 0, NULL),
    F("callback", CFG_F_NAME, callback, NULL, 0, 0, 0, NULL),
    F("max_messages", CFG_F_U32, max_messages, "10000", 0, 1, 100000000, NULL),
};
static const cfg_field custom_fields[] = {
    F("callback", CFG_F_NAME, callback, NULL, CFG_REQUIRED, 0, 0, NULL),
};
static const cfg_field relay_fields[] = {
    F("target_client_id", CFG_F_NAME, target_client, NULL, 0, 0, 0, NULL),
    F("target_topic", CFG_F_STR, target_topic, NULL, 0, 0, 0, NULL),
    F("qos", CFG_F_INT, qos, NULL, 0, 0, 2, NULL),
    F("retain", CFG_F_TRIBOOL, retain, NULL, 0, 0, 0, NULL),
};
static const cfg_field format_fields[] = {
    F("topic_prefix", CFG_F_STR, topic_prefix, NULL, 0, 0, 0, NULL),
    F("topic_suffix", CFG_F_STR, topic_suffix, NULL, 0, 0, 0, NULL),
    F("topic_template", CFG_F_STR, topic_template, NULL, 0, 0, 0, NULL),
    F("payload_template", CFG_F_STR, payload_template, NULL, 0, 0, 0, NULL),
};
static const cfg_field filter_fields[] = {
    F("condition", CFG_F_STR, condition, NULL, CFG_REQUIRED, 0, 0, NULL),
};
static const cfg_field batch_fields[] = {
    F("count", CFG_F_U32, batch_count, NULL, 0, 1, 1000000, NULL),
    F("interval", CFG_F_DURATION, interval, NULL, 0, 0.001, 86400, NULL),
};
static const cfg_field throttle_fields[] = {
    F("rate", CFG_F_DOUBLE, rate, NULL, 0, 1e-6, 1e9, NULL),
    F("interval", CFG_F_DURATION, interval, NULL, 0, 0.001, 86400, NULL),
};
static const cfg_field on_change_fields[] = {
    F("field", CFG_F_STR, field, NULL, 0, 0, 0, NULL),
};
static const cfg_field aggregate_fields[] = {
    F("field", CFG_F_STR, field, NULL, 0, 0, 0, NULL),
    F("fn", CFG_F_ENUM, agg_fn, NULL, CFG_REQUIRED, 0, 0, agg_fns),
    F("interval", CFG_F_DURATION, interval, NULL, CFG_REQUIRED, 0.001, 86400, NULL),
};

static const struct step_kind {
    const char *name;
    enum cfg_step_kind kind;
    const cfg_field *fields;
    size_t n;
    bool user_params; /* extra keys are parameters for the step's callback (mf_param) */
    bool stateful;
} kinds[] = {
#define K(n, k, t, u, s)                                                                           \
    {                                                                                              \
        n, k, t, CFG_NFIELDS(t), u, s                                                              \
    }
    K("sampler", CFG_STEP_SAMPLER, sampler_fields, true, true),
    K("custom_processor", CFG_STEP_CUSTOM_PROCESSOR, custom_fields, true, false),
    K("relay", CFG_STEP_RELAY, relay_fields, false, false),
    K("format", CFG_STEP_FORMAT, format_fields, false, false),
    K("filter", CFG_STEP_FILTER, filter_fields, false, false),
    K("batch", CFG_STEP_BATCH, batch_fields, false, true),
    K("throttle", CFG_STEP_THROTTLE, throttle_fields, false, true),
    K("on_change", CFG_STEP_ON_CHANGE, on_change_fields, false, true),
    K("aggregate", CFG_STEP_AGGREGATE, aggregate_fields, false, true),
#undef K
};
#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))

static const cfg_field step_fields[] = {
    {"step", CFG_F_ANY, 0, NULL, CFG_REQUIRED, 0, 0, NULL},
    {"config", CFG_F_ANY, 0, NULL, 0, 0, 0, NULL},
};

const char *cfg_step_kind_name(enum cfg_step_kind k)
{
    for (size_t i = 0; i < N_KINDS; i++)
        if (kinds[i].kind == k)
            return kinds[i].name;
    return "?";
}

void cfg_step_fini(cfg_step *s)
{
    free(s->target_topic);
    free(s->topic_prefix);
    free(s->topic_suffix);
    free(s->topic_template);
    free(s->payload_template);
    free(s->condition);
    free(s->field);
    for (size_t i = 0; i < s->n_params; i++) {
        free(s->params[i].key);
        free(s->params[i].value);
    }
    free(s->params);
}

/* The whole config map as text: what mf_param returns, numbers exactly as written. */
static void keep_params(cfg_ctx *x, cfg_step *s, const cfg_node *conf, const struct step_kind *k)
{
    s->params = calloc(conf->n / 2 + 1, sizeof(*s->params));
    if (!s->params) {
        cfg_err(x, conf, "out of memory");
        return;
    }
    for (size_t i = 0; i + 1 < conf->n; i += 2) {
        const cfg_node *key = conf->items[i], *v = conf->items[i + 1];
        if (v->type == CFG_NODE_SEQ || v->type == CFG_NODE_MAP) {
            /* known keys already reported their type; user keys reach C as one string */
            if (!cfg_schema_has(k->fields, k->n, key->str)) {
                size_t old = cfg_path_key(x, key->str);
                cfg_err(x, v,
                        "expected a string or a number (a callback reads parameters "
                        "as text with mf_param), got %s",
                        cfg_node_kind(v));
                cfg_path_pop(x, old);
            }
            continue;
        }
        cfg_param *p = &s->params[s->n_params++];
        p->key = strdup(key->str);
        p->value = strdup(v->type == CFG_NODE_NULL ? "" : v->str);
        if (!p->key || !p->value)
            cfg_err(x, v, "out of memory");
    }
}

static void load_step(cfg_ctx *x, cfg_step *s, const cfg_node *m)
{
    s->pos = m->pos;
    s->callback = s->target_client = s->qos = s->retain = -1;
    if (!cfg_schema_decode(x, m, step_fields, CFG_NFIELDS(step_fields), s, false))
        return;
    const cfg_node *name = cfg_node_get(m, "step");
    if (!name)
        return;
    const struct step_kind *k = NULL;
    size_t old = cfg_path_key(x, "step");
    if (name->type == CFG_NODE_SCALAR)
        for (size_t i = 0; i < N_KINDS && !k; i++)
            if (!strcmp(kinds[i].name, name->str))
                k = &kinds[i];
    if (!k) {
        cfg_err(x, name,
                "unknown step %s%s%s (expected sampler, custom_processor, relay, format, "
                "filter, batch, throttle, on_change or aggregate)",
                name->type == CFG_NODE_SCALAR ? "\"" : "",
                name->type == CFG_NODE_SCALAR ? name->str : cfg_node_kind(name),
                name->type == CFG_NODE_SCALAR ? "\"" : "");
        cfg_path_pop(x, old);
        return;
    }
    cfg_path_pop(x, old);
    s->kind = k->kind;

    /* a step without config: an empty mapping at the step, so "missing key" points there */
    const cfg_node *conf = cfg_node_get(m, "config");
    cfg_node empty = {.type = CFG_NODE_MAP, .pos = m->pos};
    old = cfg_path_key(x, "config");
    if (!conf)
        conf = &empty;
    if (!cfg_schema_decode(x, conf, k->fields, k->n, s, k->user_params))
        goto out;
    keep_params(x, s, conf, k);

    const cfg_node *v;
    switch (s->kind) {
    case CFG_STEP_SAMPLER:
        if ((v = cfg_node_get(conf, "duration")) && s->duration <= 0) {
            size_t o2 = cfg_path_key(x, "duration");
            cfg_err(x, v, "must be greater than 0 seconds");
            cfg_path_pop(x, o2);
        }
        s->callback = cfg_resolve_callback(x, conf, "callback");
        break;
    case CFG_STEP_CUSTOM_PROCESSOR:
        s->callback = cfg_resolve_callback(x, conf, "callback");
        break;
    case CFG_STEP_RELAY:
        s->target_client = cfg_resolve_client(x, conf, "target_client_id");
        if (s->target_topic && !cfg_topic_name_is_valid(s->target_topic)) {
            size_t o2 = cfg_path_key(x, "target_topic");
            cfg_err(x, cfg_node_get(conf, "target_topic"),
                    "\"%s\" is not a valid topic name (no + or # when publishing)",
                    s->target_topic);
            cfg_path_pop(x, o2);
        }
        break;
    case CFG_STEP_FILTER:
        if ((v = cfg_node_get(conf, "condition"))) {
            size_t o2 = cfg_path_key(x, "condition");
            cfg_check_condition(x, v);
            cfg_path_pop(x, o2);
        }
        break;
    case CFG_STEP_BATCH:
        if (!s->batch_count && s->interval <= 0)
            cfg_err(x, conf, "a batch needs count, interval or both");
        break;
    case CFG_STEP_THROTTLE:
        if ((s->rate > 0) == (s->interval > 0))
            cfg_err(x, conf,
                    "a throttle needs exactly one of rate (messages per second) or "
                    "interval (seconds between messages)");
        break;
    default:
        break;
    }
out:
    cfg_path_pop(x, old);
}

static void load_chain(cfg_ctx *x, cfg_chain *ch, const cfg_node *seq)
{
    if (seq->type != CFG_NODE_SEQ) {
        cfg_err(x, seq, "expected a list of steps, got %s", cfg_node_kind(seq));
        return;
    }
    if (seq->n == 0) {
        cfg_err(x, seq, "a processing chain needs at least one step");
        return;
    }
    if (seq->n > CFG_MAX_STEPS) {
        cfg_err(x, seq, "%zu steps, more than the limit of %d", seq->n, CFG_MAX_STEPS);
        return;
    }
    ch->steps = calloc(seq->n, sizeof(*ch->steps));
    if (!ch->steps) {
        cfg_err(x, seq, "out of memory");
        return;
    }
    for (size_t i = 0; i < seq->n; i++) {
        size_t old = cfg_path_index(x, i);
        cfg_step *s = &ch->steps[ch->n_steps++];
        load_step(x, s, seq->items[i]);
        for (size_t j = 0; j < N_KINDS; j++)
            if (kinds[j].kind == s->kind && kinds[j].stateful)
                ch->stateful = true;
        cfg_path_pop(x, old);
    }
}

void cfg_chains_load(cfg_ctx *x, const cfg_node *map)
{
    cfg *c = x->c;
    size_t old = cfg_path_key(x, "processing_chains");
    if (map->type != CFG_NODE_MAP) {
        cfg_err(x, map, "expected a mapping of name -> list of steps, got %s", cfg_node_kind(map));
        goto out;
    }
    if (map->n / 2 > CFG_MAX_CHAINS) {
        cfg_err(x, map, "%zu chains, more than the limit of %d", map->n / 2, CFG_MAX_CHAINS);
        goto out;
    }
    c->chains = calloc(map->n / 2 + 1, sizeof(*c->chains));
    if (!c->chains) {
        cfg_err(x, map, "out of memory");
        goto out;
    }
    for (size_t i = 0; i + 1 < map->n; i += 2) {
        const cfg_node *k = map->items[i], *v = map->items[i + 1];
        cfg_chain *ch = &c->chains[c->n_chains++];
        ch->pos = k->pos;
        size_t o2 = cfg_path_key(x, k->str);
        if (!(ch->name = strdup(k->str)))
            cfg_err(x, k, "out of memory");
        else if (cfg_node_is_null(v))
            cfg_err(x, k, "a processing chain needs at least one step");
        else
            load_chain(x, ch, v);
        cfg_path_pop(x, o2);
    }
out:
    cfg_path_pop(x, old);
}
