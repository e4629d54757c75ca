/* cfg_rule: the `rules:` section, and the checks of expressions and regexes that rules and
 * filter steps share. Regexes and conditions are compiled here only to validate them (with
 * the compiler's own message at the right column); the router compiles its own copies. */
#include "cfg_int.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "expr.h"

static const cfg_enum_name exec_modes[] = {
    {"sequential", CFG_EXEC_SEQUENTIAL},
    {"threaded", CFG_EXEC_PARALLEL},
    {"parallel", CFG_EXEC_PARALLEL},
    {"per_topic", CFG_EXEC_PER_TOPIC},
    {NULL, 0},
};
static const cfg_enum_name on_errors[] = {
    {"log", CFG_ON_ERROR_LOG},
    {"dead_letter", CFG_ON_ERROR_DEAD_LETTER},
    {NULL, 0},
};

_Static_assert(sizeof(enum cfg_exec_mode) == sizeof(int), "CFG_F_ENUM stores an int");
_Static_assert(sizeof(enum cfg_on_error) == sizeof(int), "CFG_F_ENUM stores an int");

#define F(key, type, field, def, ...)                                                              \
    {                                                                                              \
        key, type, offsetof(cfg_rule, field), def, __VA_ARGS__                                     \
    }

static const cfg_field rule_fields[] = {
    F("rule", CFG_F_STR, name, NULL, CFG_REQUIRED, 0, 0, NULL),
    F("source_client_id", CFG_F_NAME, name, NULL, 0, 0, 0, NULL),
    F("topic", CFG_F_STR, topic, NULL, 0, 0, 0, NULL),
    F("regex", CFG_F_STR, regex, NULL, 0, 0, 0, NULL),
    F("condition", CFG_F_STR, condition, NULL, 0, 0, 0, NULL),
    F("callback", CFG_F_NAME, name, NULL, 0, 0, 0, NULL),
    F("action", CFG_F_NAME, name, NULL, 0, 0, 0, NULL),
    F("execution_mode", CFG_F_ENUM, exec_mode, "sequential", 0, 0, 0, exec_modes),
    F("on_error", CFG_F_ENUM, on_error, "log", 0, 0, 0, on_errors),
};

/* A node standing for the place `off` bytes into a one-line scalar (past its opening quote). */
static cfg_node at_offset(const cfg_node *v, size_t off)
{
    cfg_node n = *v;
    n.pos.col += (v->plain ? 0 : 1) + (int)off;
    return n;
}

void cfg_check_condition(cfg_ctx *x, const cfg_node *v)
{
    if (!v || v->type != CFG_NODE_SCALAR)
        return;
    char msg[256] = "";
    size_t off = 0;
    expr *e = NULL;
    int r = expr_compile(v->str, &e, msg, sizeof(msg), &off);
    expr_destroy(e);
    if (r == 0)
        return;
    if (off > v->len)
        off = v->len;
    cfg_node at = at_offset(v, off);
    cfg_err(x, &at, "bad condition: %s", *msg ? msg : "cannot compile");
}

static void check_regex(cfg_ctx *x, const cfg_node *v)
{
    int code;
    PCRE2_SIZE off;
    /* the same options as router/rule.c, so what passes here compiles there */
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)v->str, v->len, 0, &code, &off, NULL);
    if (re) {
        pcre2_code_free(re);
        return;
    }
    PCRE2_UCHAR buf[256];
    if (pcre2_get_error_message(code, buf, sizeof(buf)) < 0)
        strcpy((char *)buf, "unknown error");
    cfg_node at = at_offset(v, off > v->len ? v->len : off);
    cfg_err(x, &at, "bad regex: %s at offset %zu", (const char *)buf, (size_t)off);
}

/* Resolves the name under key (when given) with lookup; an unknown name is an error at it. */
static int resolve(cfg_ctx *x, const cfg_node *m, const char *key, const char *what,
                   int (*lookup)(const cfg *, const char *))
{
    const cfg_node *v = cfg_node_get(m, key);
    if (!v || v->type != CFG_NODE_SCALAR || !*v->str)
        return -1;
    int i = lookup(x->c, v->str);
    if (i < 0) {
        size_t old = cfg_path_key(x, key);
        cfg_err(x, v, "no %s named \"%s\"", what, v->str);
        cfg_path_pop(x, old);
    }
    return i;
}

int cfg_resolve_client(cfg_ctx *x, const cfg_node *m, const char *key)
{
    return resolve(x, m, key, "client", cfg_client_index);
}

int cfg_resolve_callback(cfg_ctx *x, const cfg_node *m, const char *key)
{
    return resolve(x, m, key, "callback", cfg_callback_index);
}

/* A rule whose topic no subscription can deliver never runs: almost always a typo. Only
 * clients that subscribe to something are considered (the rule's source client, or all). */
static void warn_unsubscribed(cfg_ctx *x, const cfg_rule *r, const cfg_node *at)
{
    const cfg *c = x->c;
    size_t subs = 0;
    for (size_t i = 0; i < c->n_clients; i++) {
        if (r->source_client >= 0 && (int)i != r->source_client)
            continue;
        for (size_t t = 0; t < c->clients[i].n_topics; t++) {
            const char *f = c->clients[i].topics[t].name;
            if (!f || !cfg_topic_filter_is_valid(f))
                return; /* already an error; do not pile a warning on it */
            subs++;
            if (cfg_topic_filters_overlap(f, r->topic))
                return;
        }
    }
    if (!subs)
        return;
    size_t old = cfg_path_key(x, "topic");
    if (r->source_client >= 0)
        cfg_warn(x, at, "no subscription of client \"%s\" matches \"%s\": the rule never runs",
                 c->clients[r->source_client].client_id, r->topic);
    else
        cfg_warn(x, at, "no client subscribes to a topic matching \"%s\": the rule never runs",
                 r->topic);
    cfg_path_pop(x, old);
}

static void load_rule(cfg_ctx *x, cfg_rule *r, const cfg_node *m)
{
    r->pos = m->pos;
    r->source_client = r->callback = r->chain = -1;
    if (!cfg_schema_decode(x, m, rule_fields, CFG_NFIELDS(rule_fields), r, false))
        return;
    /* CFG_F_NAME fields only validate (their offset is unused); read them here */
    r->source_client = cfg_resolve_client(x, m, "source_client_id");
    r->callback = cfg_resolve_callback(x, m, "callback");
    r->chain = resolve(x, m, "action", "processing chain", cfg_chain_index);

    const cfg_node *cb = cfg_node_get(m, "callback"), *act = cfg_node_get(m, "action");
    if (cb && act) {
        size_t old = cfg_path_key(x, "action");
        cfg_err(x, act, "a rule has either callback or action, not both");
        cfg_path_pop(x, old);
    } else if (!cb && !act) {
        cfg_err(x, m,
                "a rule needs a callback (a name under callbacks) or an action (a name "
                "under processing_chains)");
    }

    const cfg_node *v;
    if (r->topic && !cfg_topic_filter_is_valid(r->topic)) {
        cfg_err_key(x, m, "topic",
                    "malformed topic filter \"%s\" (+ and # must fill a whole level, # only last)",
                    r->topic);
    }
    if (r->topic && cfg_topic_filter_is_valid(r->topic))
        warn_unsubscribed(x, r, cfg_node_get(m, "topic"));
    if (r->regex && (v = cfg_node_get(m, "regex"))) {
        size_t old = cfg_path_key(x, "regex");
        check_regex(x, v);
        cfg_path_pop(x, old);
    }
    if (r->condition && (v = cfg_node_get(m, "condition"))) {
        size_t old = cfg_path_key(x, "condition");
        cfg_check_condition(x, v);
        cfg_path_pop(x, old);
    }
    if (r->chain >= 0 && r->exec_mode == CFG_EXEC_PARALLEL && x->c->chains[r->chain].stateful) {
        v = cfg_node_get(m, "execution_mode");
        size_t old = cfg_path_key(x, "execution_mode");
        cfg_warn(x, v,
                 "chain \"%s\" keeps state (sampler, batch, throttle, on_change or aggregate) "
                 "but runs %s: each worker sees only part of the messages; use sequential or "
                 "per_topic",
                 x->c->chains[r->chain].name, v ? v->str : "threaded");
        cfg_path_pop(x, old);
    }
}

void cfg_rules_load(cfg_ctx *x, const cfg_node *seq)
{
    cfg *c = x->c;
    size_t old = cfg_path_key(x, "rules");
    if (seq->type != CFG_NODE_SEQ) {
        cfg_err(x, seq, "expected a list of rules, got %s", cfg_node_kind(seq));
        goto out;
    }
    c->rules = cfg_entries_alloc(x, seq, seq->n, CFG_MAX_RULES, "rules", sizeof(*c->rules));
    if (!c->rules)
        goto out;
    for (size_t i = 0; i < seq->n; i++) {
        size_t o2 = cfg_path_index(x, i);
        cfg_rule *r = &c->rules[c->n_rules++];
        load_rule(x, r, seq->items[i]);
        for (size_t j = 0; r->name && j < i; j++) {
            if (c->rules[j].name && !strcmp(c->rules[j].name, r->name)) {
                cfg_err_key(x, seq->items[i], "rule",
                            "duplicate rule name \"%s\" (first at line %d)", r->name,
                            c->rules[j].pos.line);
                break;
            }
        }
        cfg_path_pop(x, o2);
    }
out:
    cfg_path_pop(x, old);
}

void cfg_rule_fini(cfg_rule *r)
{
    free(r->name);
    free(r->topic);
    free(r->regex);
    free(r->condition);
}
