/* cfg_chain: the `processing_chains:` section; the step kinds come from the table of kinds
 * (cfg_steps.h): their keys, flags and checks. */
#include "cfg_int.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"

#define F(key, type, field, def, ...)                                                              \
    {                                                                                              \
        key, type, offsetof(cfg_step, field), def, __VA_ARGS__                                     \
    }

static const cfg_enum_name agg_fns[] = {
    {"count", CFG_AGG_COUNT}, {"min", CFG_AGG_MIN}, {"max", CFG_AGG_MAX},
    {"avg", CFG_AGG_AVG},     {"sum", CFG_AGG_SUM}, {NULL, 0},
};
_Static_assert(sizeof(enum cfg_agg_fn) == sizeof(int), "CFG_F_ENUM stores an int");

static const cfg_node *key_at(cfg_ctx *x, const cfg_node *conf, const char *key, size_t *old)
{
    const cfg_node *v = cfg_node_get(conf, key);
    if (v)
        *old = cfg_path_key(x, key);
    return v;
}

/* The kinds' checks: what their field tables cannot say (cfg_steps.h, "check"). */
static void check_sampler(cfg_ctx *x, cfg_step *s, const cfg_node *conf)
{
    size_t o2;
    const cfg_node *v = key_at(x, conf, "duration", &o2);
    if (v) {
        if (s->duration <= 0)
            cfg_err(x, v, "must be greater than 0 seconds");
        cfg_path_pop(x, o2);
    }
    s->callback = cfg_resolve_callback(x, conf, "callback");
}

static void check_custom_processor(cfg_ctx *x, cfg_step *s, const cfg_node *conf)
{
    s->callback = cfg_resolve_callback(x, conf, "callback");
}

static void check_relay(cfg_ctx *x, cfg_step *s, const cfg_node *conf)
{
    s->target_client = cfg_resolve_client(x, conf, "target_client_id");
    if (s->target_topic && !cfg_topic_name_is_valid(s->target_topic)) {
        cfg_err_key(x, conf, "target_topic",
                    "\"%s\" is not a valid topic name (no + or # when publishing)",
                    s->target_topic);
    }
}

static void check_filter(cfg_ctx *x, cfg_step *s, const cfg_node *conf)
{
    (void)s;
    size_t o2;
    const cfg_node *v = key_at(x, conf, "condition", &o2);
    if (v) {
        cfg_check_condition(x, v);
        cfg_path_pop(x, o2);
    }
}

static void check_batch(cfg_ctx *x, cfg_step *s, const cfg_node *conf)
{
    if (!s->batch_count && s->interval <= 0)
        cfg_err(x, conf, "a batch needs count, interval or both");
}

static void check_throttle(cfg_ctx *x, cfg_step *s, const cfg_node *conf)
{
    if ((s->rate > 0) == (s->interval > 0))
        cfg_err(x, conf,
                "a throttle needs exactly one of rate (messages per second) or "
                "interval (seconds between messages)");
}

/* Each kind's field table, <name>_fields, then the kinds, from the table of kinds. */
#define FIELDS_ROW(ID, name, flags, check, ...)                                                    \
    static const cfg_field name##_fields[] = {__VA_ARGS__};
CFG_STEP_KINDS(FIELDS_ROW)
#undef FIELDS_ROW

static const struct step_kind {
    const char *name;
    const cfg_field *fields;
    size_t n;
    unsigned flags; /* CFG_STEP_PARAMS, CFG_STEP_STATEFUL */
    void (*check)(cfg_ctx *x, cfg_step *s, const cfg_node *conf);
} kinds[] = {
#define KIND_ROW(ID, name, flags, check, ...)                                                      \
    [CFG_STEP_##ID] = {#name, name##_fields, CFG_NFIELDS(name##_fields), flags, check},
    CFG_STEP_KINDS(KIND_ROW)
#undef KIND_ROW
};
#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))
_Static_assert(N_KINDS == CFG_STEP_N_KINDS, "one row per kind");

static const cfg_field step_fields[] = {
    {"step", CFG_F_ANY, 0, NULL, CFG_REQUIRED, 0, 0, NULL},
    {"config", CFG_F_ANY, 0, NULL, 0, 0, 0, NULL},
};

const char *cfg_step_kind_name(enum cfg_step_kind k)
{
    return (size_t)k < N_KINDS ? kinds[k].name : "?";
}

/* The bytes of a field's value, for cfg_step_hash; 0 for what is not a value. */
static size_t value_bytes(const cfg_field *f, const cfg_step *s, const void **p)
{
    const char *at = (const char *)s + f->off;
    *p = at;
    switch (f->type) {
    case CFG_F_STR:
    case CFG_F_PATH: {
        const char *str = *(char *const *)at;
        *p = str ? str : "\xff"; /* absent differs from "" (whose NUL is hashed) */
        return str ? strlen(str) + 1 : 1;
    }
    case CFG_F_INT:
    case CFG_F_TRIBOOL:
    case CFG_F_ENUM:
        return sizeof(int);
    case CFG_F_U32:
        return sizeof(uint32_t);
    case CFG_F_BOOL:
        return sizeof(bool);
    case CFG_F_DOUBLE:
    case CFG_F_DURATION:
        return sizeof(double);
    case CFG_F_SIZE:
        return sizeof(size_t);
    case CFG_F_ANY:
    case CFG_F_NAME:
        break;
    }
    return 0;
}

uint64_t cfg_step_hash(uint64_t h, const cfg_step *s)
{
    const char *name = cfg_step_kind_name(s->kind);
    h = hash_fnv1a_add(h, name, strlen(name) + 1);
    if ((size_t)s->kind >= N_KINDS || !(kinds[s->kind].flags & CFG_STEP_STATEFUL))
        return h;
    const struct step_kind *k = &kinds[s->kind];
    for (size_t i = 0; i < k->n; i++) {
        const void *p;
        size_t n = value_bytes(&k->fields[i], s, &p);
        h = hash_fnv1a_add(h, p, n);
    }
    return h;
}

/* "a, b or c": every kind's name, for an error message. */
static void kind_list(char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < N_KINDS && at < len; i++) {
        int n = snprintf(buf + at, len - at, "%s%s",
                         i == 0            ? ""
                         : i + 1 < N_KINDS ? ", "
                                           : " or ",
                         kinds[i].name);
        at += n > 0 ? (size_t)n : 0;
    }
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
    size_t id = 0;
    if (name->type == CFG_NODE_SCALAR)
        for (; id < N_KINDS && !k; id++)
            if (!strcmp(kinds[id].name, name->str))
                k = &kinds[id];
    if (!k) {
        char list[512];
        kind_list(list, sizeof(list));
        cfg_err(x, name, "unknown step %s%s%s (expected %s)",
                name->type == CFG_NODE_SCALAR ? "\"" : "",
                name->type == CFG_NODE_SCALAR ? name->str : cfg_node_kind(name),
                name->type == CFG_NODE_SCALAR ? "\"" : "", list);
        cfg_path_pop(x, old);
        return;
    }
    cfg_path_pop(x, old);
    s->kind = (enum cfg_step_kind)(id - 1);

    /* a step without config: an empty mapping at the step, so "missing key" points there */
    const cfg_node *conf = cfg_node_get(m, "config");
    cfg_node empty = {.type = CFG_NODE_MAP, .pos = m->pos};
    old = cfg_path_key(x, "config");
    if (!conf)
        conf = &empty;
    if (!cfg_schema_decode(x, conf, k->fields, k->n, s, k->flags & CFG_STEP_PARAMS))
        goto out;
    keep_params(x, s, conf, k);

    if (k->check)
        k->check(x, s, conf);
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
    ch->steps = cfg_entries_alloc(x, seq, seq->n, CFG_MAX_STEPS, "steps", sizeof(*ch->steps));
    if (!ch->steps)
        return;
    for (size_t i = 0; i < seq->n; i++) {
        size_t old = cfg_path_index(x, i);
        cfg_step *s = &ch->steps[ch->n_steps++];
        load_step(x, s, seq->items[i]);
        if ((size_t)s->kind < N_KINDS && (kinds[s->kind].flags & CFG_STEP_STATEFUL))
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
    c->chains = cfg_entries_alloc(x, map, map->n / 2, CFG_MAX_CHAINS, "chains", sizeof(*c->chains));
    if (!c->chains)
        goto out;
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
