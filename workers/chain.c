#include "chain.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain_int.h"
#include "clock.h"
#include "hash.h"
#include "log.h"

#define COMP "worker"

struct chain_set {
    const ctx_env *env;
    const loader *ld;
    chain_rule *rules; /* one per cfg rule; n == 0 for a simple callback rule */
    size_t n_rules;
    wstate *ws;     /* env->state, or own_ws */
    wstate *own_ws; /* private state when env->state is NULL */
    int err;        /* first callback error of the chain_run / close in progress */
};

/* The kinds' behaviour, indexed by enum cfg_step_kind: the table of kinds (cfg_steps.h). */
static const step_ops *const kinds[] = {
#define OPS_ROW(ID, name, ...) [CFG_STEP_##ID] = &step_##name##_ops,
    CFG_STEP_KINDS(OPS_ROW)
#undef OPS_ROW
};
_Static_assert(sizeof(kinds) / sizeof(kinds[0]) == CFG_STEP_N_KINDS, "one row per kind");

static const step_ops *ops_of(const cfg_step *c)
{
    return (size_t)c->kind < CFG_STEP_N_KINDS ? kinds[c->kind] : NULL;
}

const char *chain_client_name(const chain_rule *cr, int client)
{
    const cfg *c = cr->env->c;
    if (client < 0 || (size_t)client >= c->n_clients)
        return "";
    return c->clients[client].client_id;
}

void chain_note_error(chain_rule *cr, int rc)
{
    if (rc != 0 && cr->cs->err == 0)
        cr->cs->err = rc;
}

int chain_buf_put(chain_buf *b, const void *data, size_t len)
{
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + len + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return -ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    if (len)
        memcpy(b->p + b->len, data, len);
    b->len += len;
    return 0;
}

int chain_buf_nul(chain_buf *b)
{
    int rc = chain_buf_put(b, "", 0); /* guarantees room for the NUL */
    if (rc == 0)
        b->p[b->len] = '\0';
    return rc;
}

void chain_buf_fini(chain_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

json_t *chain_json_path(json_t *v, const char *path, size_t len)
{
    size_t i = 0;
    while (v && i < len) {
        if (path[i] == '.') {
            i++;
            continue;
        }
        if (path[i] == '[') {
            char *end;
            unsigned long idx = strtoul(path + i + 1, &end, 10);
            if (end == path + i + 1 || (size_t)(end - path) >= len || *end != ']')
                return NULL;
            v = json_is_array(v) ? json_array_get(v, idx) : NULL;
            i = (size_t)(end - path) + 1;
            continue;
        }
        size_t j = i;
        while (j < len && path[j] != '.' && path[j] != '[')
            j++;
        v = json_is_object(v) ? json_object_getn(v, path + i, j - i) : NULL;
        i = j;
    }
    return v;
}

json_t *chain_json_field(const mf_msg *m, const char *field)
{
    json_t *root = json_loadb(m->payload, m->payload_len, JSON_DECODE_ANY, NULL);
    if (!root || !field)
        return root;
    if (strncmp(field, "payload.", 8) == 0)
        field += 8;
    else if (strcmp(field, "payload") == 0)
        return root;
    json_t *v = chain_json_path(root, field, strlen(field));
    json_incref(v);
    json_decref(root);
    return v;
}

int chain_field_hash(const mf_msg *m, const char *field, uint64_t *h, bool *found)
{
    *h = 0;
    *found = true;
    if (!field) {
        *h = hash_fnv1a(m->payload, m->payload_len);
        return 0;
    }
    json_t *j = chain_json_field(m, field);
    char *v = j ? json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    if (j && !v)
        return -ENOMEM;
    if (!v) {
        *found = false;
        return 0;
    }
    *h = hash_fnv1a(v, strlen(v));
    free(v);
    return 0;
}

bool chain_step_replaying(chain_step *s, const ctx_origin *o, uint64_t *last_pos)
{
    bool replaying = s->replay.on && o->pos != 0 && o->pos <= *last_pos;
    if (s->replay.on && !replaying && o->pos != 0)
        s->replay.on = false;
    if (o->pos > *last_pos)
        *last_pos = o->pos;
    return replaying;
}

bool chain_replay(const chain_rule *cr)
{
    return wstate_positions_valid(cr->cs->ws);
}

void chain_flush(chain_rule *cr)
{
    if (cr->env->flush)
        cr->env->flush(cr->env->append_arg);
}

bool chain_close_allowed(chain_step *s, unsigned attempts, size_t n_held)
{
    int max = s->cr->env->c->runtime.max_attempts;
    if (attempts > 1)
        log_warn(COMP, "%s: close attempt %u (the worker died closing it)", s->label, attempts);
    if (max <= 0 || attempts <= (unsigned)max)
        return true;
    log_error(COMP,
              "%s: closing it killed the worker %u times: given up, %zu held messages "
              "dropped",
              s->label, attempts - 1, n_held);
    if (s->cr->env->slot) {
        stats_add(&s->cr->env->slot->dropped, n_held);
        stats_add(&s->cr->env->slot->dead, 1);
    }
    return false;
}

bool chain_window_close_begin(chain_step *s)
{
    size_t n = window_count(s->win);
    if (chain_close_allowed(s, window_begin_close(s->win), n))
        return true;
    window_reset(s->win);
    return false;
}

size_t chain_state_size(const cfg_step *s)
{
    const step_ops *k = ops_of(s);
    return k && k->state_size ? k->state_size(s) : 0;
}

void chain_count_drop(chain_rule *cr)
{
    if (cr->env->slot)
        stats_add(&cr->env->slot->dropped, 1);
}

void chain_count_error(chain_rule *cr)
{
    if (cr->env->slot)
        stats_add(&cr->env->slot->errors, 1);
}

static int publish_source(chain_rule *cr, const ctx_origin *o, const mf_msg *m)
{
    /* the rule's source client, or the message's when the rule listens to every client */
    int client = cr->r->source_client >= 0 ? cr->r->source_client : o->client;
    int rc = ctx_write(cr->env, cr->rule, cr->n ? (int)cr->n - 1 : -1, o, client, m->topic,
                       m->payload, m->payload_len, o->qos, o->retain);
    if (rc < 0) {
        log_error(COMP,
                  "rule %s: end of chain: cannot publish on client %s topic \"%s\" (%zu "
                  "bytes): %s",
                  cr->r->name, chain_client_name(cr, client), m->topic, m->payload_len,
                  strerror(-rc));
        if (cr->env->slot)
            stats_add(&cr->env->slot->errors, 1);
    }
    return rc;
}

int chain_feed(chain_rule *cr, size_t i, const ctx_origin *o, const mf_msg *m)
{
    if (i > 0 && cr->env->trace)
        cr->env->trace(cr->env->trace_arg, cr->rule, (int)i - 1, m);
    if (i >= cr->n)
        return publish_source(cr, o, m);
    chain_step *s = &cr->steps[i];
    return s->ops->process(s, o, m);
}

int chain_emit_next(mf_ctx *x, const char *topic, const void *payload, size_t len)
{
    chain_step *s = x->next_arg;
    mf_msg m = {
        .topic = topic,
        .payload = payload,
        .payload_len = len,
        .qos = x->origin.qos,
        .retain = x->origin.retain,
        .client_id = chain_client_name(s->cr, x->origin.client),
        .received_ns = x->origin.received_ns,
    };
    int rc = chain_feed(s->cr, s->index + 1, &x->origin, &m);
    /* mf_emit reports only what is about this emit; a failure further down was logged */
    return rc == -ENOSPC ? -ENOSPC : rc < 0 ? -EINVAL : 0;
}

static void fini_rule(chain_rule *cr)
{
    for (size_t i = 0; i < cr->n; i++) {
        chain_step *s = &cr->steps[i];
        if (s->ops && s->ops->fini)
            s->ops->fini(s);
    }
    free(cr->steps);
}

void chain_set_destroy(chain_set *cs)
{
    if (!cs)
        return;
    for (size_t i = 0; i < cs->n_rules; i++)
        fini_rule(&cs->rules[i]);
    free(cs->rules);
    wstate_close(cs->own_ws);
    free(cs);
}

static int build_rule(chain_set *cs, chain_rule *cr, int rule)
{
    const cfg *c = cs->env->c;
    const cfg_rule *r = &c->rules[rule];

    cr->cs = cs;
    cr->env = cs->env;
    cr->rule = rule;
    cr->r = r;
    if (r->chain < 0 || (size_t)r->chain >= c->n_chains)
        return 0;
    const cfg_chain *ch = &c->chains[r->chain];
    cr->steps = calloc(ch->n_steps ? ch->n_steps : 1, sizeof(*cr->steps));
    if (!cr->steps)
        return -ENOMEM;
    cr->n = ch->n_steps;
    for (size_t i = 0; i < ch->n_steps; i++) {
        chain_step *s = &cr->steps[i];
        int rc = 0;
        s->cr = cr;
        s->index = i;
        s->cfg = &ch->steps[i];
        snprintf(s->label, sizeof(s->label), "rule %s, step %zu (%s)", r->name, i,
                 cfg_step_kind_name(s->cfg->kind));
        s->region = wstate_region(cs->ws, rule, i, &s->region_len);
        s->replay.on = false;
        if (s->cfg->callback >= 0) {
            s->cb = loader_fn(cs->ld, s->cfg->callback);
            s->cb_name = c->callbacks[s->cfg->callback].name;
        }
        s->ops = ops_of(s->cfg);
        if (!s->ops) { /* our bug: the config has a kind the table does not */
            log_error(COMP, "rule %s, chain %s, step %zu: step kind %d is not implemented", r->name,
                      ch->name, i, (int)s->cfg->kind);
            return -EINVAL;
        }
        if (s->ops->init)
            rc = s->ops->init(s);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int chain_set_create(const ctx_env *env, const loader *ld, chain_set **out)
{
    const cfg *c = env->c;
    int rc = 0;

    *out = NULL;
    chain_set *cs = calloc(1, sizeof(*cs));
    if (!cs)
        return -ENOMEM;
    cs->env = env;
    cs->ld = ld;
    cs->ws = env->state;
    if (!cs->ws) {
        if ((rc = wstate_create_private(c, &cs->own_ws)) < 0)
            goto fail;
        cs->ws = cs->own_ws;
    }
    cs->rules = calloc(c->n_rules ? c->n_rules : 1, sizeof(*cs->rules));
    if (!cs->rules) {
        rc = -ENOMEM;
        goto fail;
    }
    cs->n_rules = c->n_rules;
    for (size_t i = 0; i < c->n_rules; i++) {
        int r = build_rule(cs, &cs->rules[i], (int)i);
        if (r < 0 && rc == 0)
            rc = r; /* keep going: report every bad step */
    }
    if (rc < 0)
        goto fail;
    *out = cs;
    return 0;
fail:
    chain_set_destroy(cs);
    return rc;
}

int chain_run(chain_set *cs, int rule, const ctx_origin *o, const mf_msg *m)
{
    if (rule < 0 || (size_t)rule >= cs->n_rules)
        return -EINVAL;
    chain_rule *cr = &cs->rules[rule];
    const cfg_rule *r = cr->r;

    cs->err = 0;
    if (r->chain >= 0) {
        chain_feed(cr, 0, o, m); /* output failures are logged and counted where they happen */
        return cs->err;
    }
    mf_callback fn = loader_fn(cs->ld, r->callback);
    if (!fn)
        return -EINVAL;
    mf_ctx x;
    ctx_init_call(&x, cs->env, rule, -1, cs->env->c->callbacks[r->callback].name, NULL, 0,
                  ctx_next_publish_source, NULL, o);
    return ctx_call(&x, fn, m, 1);
}

/* When a step's held state must be emitted: a window's close, or UINT64_MAX. */
static uint64_t step_deadline(const chain_step *s)
{
    return s->ops->deadline ? s->ops->deadline(s) : UINT64_MAX;
}

/* Whether the step holds messages that a stop must flush. */
static bool step_holds(const chain_step *s)
{
    return s->ops->holds && s->ops->holds(s);
}

static void step_close(chain_step *s)
{
    if (s->ops->close)
        s->ops->close(s);
}

uint64_t chain_next_deadline(const chain_set *cs)
{
    uint64_t best = UINT64_MAX;
    for (size_t i = 0; i < cs->n_rules; i++) {
        const chain_rule *cr = &cs->rules[i];
        for (size_t j = 0; j < cr->n; j++) {
            uint64_t d = step_deadline(&cr->steps[j]);
            if (d < best)
                best = d;
        }
    }
    return best;
}

static void close_steps(chain_set *cs, uint64_t now_ns, bool all)
{
    /* in step order, so a window closing into a later window adds to it before that one is
     * looked at (and, when stopping, closed too) */
    for (size_t i = 0; i < cs->n_rules; i++) {
        chain_rule *cr = &cs->rules[i];
        for (size_t j = 0; j < cr->n; j++) {
            chain_step *s = &cr->steps[j];
            if (all ? step_holds(s) : step_deadline(s) <= now_ns) {
                cs->err = 0;
                step_close(s);
            }
        }
    }
}

void chain_tick(chain_set *cs, uint64_t now_ns)
{
    close_steps(cs, now_ns, false);
}

void chain_close_all(chain_set *cs)
{
    close_steps(cs, 0, true);
}
