/* rule: compiled rule set (see rule.h).
 *
 * Rules are grouped in buckets: one per config client (rules with that source_client_id) and
 * one for rules without a source client. Each bucket has a topic trie for rules with a
 * `topic:` and a plain list of rules without one (every topic). A message consults its
 * client's bucket and the any-client bucket, so rules of other clients cost nothing.
 * Candidates come out of the tries unordered and are sorted back into rule order, which the
 * dispatch and the per-rule order guarantees rely on.
 */
#include "rule.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "clock.h"
#include "expr.h"
#include "log.h"
#include "rec.h"
#include "topic.h"

typedef struct rule_ent {
    pcre2_code *re; /* NULL: no regex */
    expr *cond;     /* NULL: no condition */
    const char *name;
    rule_counters n;
    rule_counters logged; /* the counts at the last log line */
    uint64_t next_log_ns; /* no log line for this rule before this time */
} rule_ent;

typedef struct bucket {
    topic_trie *trie; /* NULL until a rule with a topic lands here */
    uint32_t *all;    /* rules without a topic */
    size_t n_all;
} bucket;

struct rule_set {
    size_t n_rules;
    rule_ent *rules;
    size_t n_buckets; /* n_clients + 1; the last one is "any client" */
    bucket *buckets;
    pcre2_match_data *md;
    pcre2_match_context *mc; /* the match and depth limits */
    uint32_t *cand;          /* n_rules + 1 candidates of one match */
    int jit;
    uint64_t n_total; /* rule_set_counters_total */
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void rule_set_destroy(rule_set *rs)
{
    if (!rs)
        return;
    for (size_t i = 0; i < rs->n_rules && rs->rules; i++) {
        pcre2_code_free(rs->rules[i].re);
        expr_destroy(rs->rules[i].cond);
    }
    for (size_t b = 0; b < rs->n_buckets && rs->buckets; b++) {
        topic_destroy(rs->buckets[b].trie);
        free(rs->buckets[b].all);
    }
    pcre2_match_data_free(rs->md);
    pcre2_match_context_free(rs->mc);
    free(rs->rules);
    free(rs->buckets);
    free(rs->cand);
    free(rs);
}

static int compile_regex(rule_set *rs, size_t i, const char *src, char *err, size_t errlen)
{
    int code;
    PCRE2_SIZE off;
    PCRE2_UCHAR msg[160];

    rs->rules[i].re = pcre2_compile((PCRE2_SPTR)src, PCRE2_ZERO_TERMINATED, 0, &code, &off, NULL);
    if (!rs->rules[i].re) {
        if (code == PCRE2_ERROR_NOMEMORY)
            return -ENOMEM;
        pcre2_get_error_message(code, msg, sizeof(msg));
        set_err(err, errlen, "rules[%zu].regex: %s at offset %zu", i, (const char *)msg,
                (size_t)off);
        return -EINVAL;
    }
    /* JIT is an optimisation: without it (not built in, or no executable memory allowed)
     * pcre2_match interprets the same pattern */
    if (pcre2_jit_compile(rs->rules[i].re, PCRE2_JIT_COMPLETE) != 0)
        rs->jit = 0;
    return 0;
}

static int bucket_add(bucket *b, const char *topic, uint32_t rule)
{
    uint32_t *all;
    int rc;

    if (topic) {
        if (!b->trie) {
            rc = topic_create(&b->trie);
            if (rc < 0)
                return rc;
        }
        return topic_add(b->trie, topic, rule);
    }
    all = realloc(b->all, (b->n_all + 1) * sizeof(*all));
    if (!all)
        return -ENOMEM;
    b->all = all;
    b->all[b->n_all++] = rule;
    return 0;
}

int rule_set_create(const cfg *c, rule_set **out, char *err, size_t errlen)
{
    rule_set *rs;
    int rc = -ENOMEM;

    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (c->n_rules > REC_NONE) {
        /* rec_hdr.rule is 16 bits and REC_NONE is reserved */
        set_err(err, errlen, "%zu rules: at most %u are supported", c->n_rules, REC_NONE);
        return -EINVAL;
    }
    rs = calloc(1, sizeof(*rs));
    if (!rs)
        return -ENOMEM;
    rs->jit = 1;
    rs->n_rules = c->n_rules;
    rs->n_buckets = c->n_clients + 1;
    rs->rules = calloc(c->n_rules ? c->n_rules : 1, sizeof(*rs->rules));
    rs->buckets = calloc(rs->n_buckets, sizeof(*rs->buckets));
    rs->cand = malloc((c->n_rules + 1) * sizeof(*rs->cand));
    rs->md = pcre2_match_data_create(1, NULL);
    rs->mc = pcre2_match_context_create(NULL);
    if (!rs->rules || !rs->buckets || !rs->cand || !rs->md || !rs->mc)
        goto fail;
    /* JIT honours the match limit; the depth limit bounds the interpreter when JIT is off */
    pcre2_set_match_limit(rs->mc, RULE_MATCH_LIMIT);
    pcre2_set_depth_limit(rs->mc, RULE_DEPTH_LIMIT);

    for (size_t i = 0; i < c->n_rules; i++) {
        const cfg_rule *r = &c->rules[i];
        rs->rules[i].name = r->name;
        size_t b = r->source_client >= 0 && (size_t)r->source_client < c->n_clients
                       ? (size_t)r->source_client
                       : c->n_clients;
        if (r->source_client >= 0 && (size_t)r->source_client >= c->n_clients) {
            set_err(err, errlen, "rules[%zu]: source client index %d out of range", i,
                    r->source_client);
            rc = -EINVAL;
            goto fail;
        }
        rc = bucket_add(&rs->buckets[b], r->topic, (uint32_t)i);
        if (rc == -EINVAL)
            set_err(err, errlen, "rules[%zu].topic: invalid MQTT filter \"%s\"", i, r->topic);
        if (rc < 0)
            goto fail;
        if (r->regex) {
            rc = compile_regex(rs, i, r->regex, err, errlen);
            if (rc < 0)
                goto fail;
        }
        if (r->condition) {
            char msg[160];
            size_t off = 0;
            rc = expr_compile(r->condition, &rs->rules[i].cond, msg, sizeof(msg), &off);
            if (rc == -EINVAL)
                set_err(err, errlen, "rules[%zu].condition: %s (at byte %zu)", i, msg, off);
            if (rc < 0)
                goto fail;
        }
    }
    *out = rs;
    return 0;

fail:
    rule_set_destroy(rs);
    return rc;
}

size_t rule_set_count(const rule_set *rs)
{
    return rs->n_rules;
}

int rule_set_uses_jit(const rule_set *rs)
{
    return rs->jit;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/* Most messages match a handful of rules: insertion sort is fastest there; qsort bounds the
 * cost when hundreds of overlapping filters match. */
static void sort_rules(uint32_t *v, size_t n)
{
    if (n > 16) {
        qsort(v, n, sizeof(*v), cmp_u32);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        uint32_t x = v[i];
        size_t j = i;
        while (j > 0 && v[j - 1] > x) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
}

static size_t collect(rule_set *rs, const bucket *b, const char *topic, size_t topic_len, size_t k)
{
    size_t room = rs->n_rules - k;

    if (b->trie) {
        size_t m = topic_match(b->trie, topic, topic_len, rs->cand + k, room);
        /* each rule sits in one bucket under one filter, so m <= room; clamp regardless */
        k += m < room ? m : room;
        room = rs->n_rules - k;
    }
    for (size_t i = 0; i < b->n_all && i < room; i++)
        rs->cand[k + i] = b->all[i];
    return k + (b->n_all < room ? b->n_all : room);
}

void rule_set_counters(const rule_set *rs, size_t rule, rule_counters *out)
{
    *out = rule < rs->n_rules ? rs->rules[rule].n : (rule_counters){0};
}

uint64_t rule_set_counters_total(const rule_set *rs)
{
    return rs->n_total;
}

/* One line per rule per RULE_LOG_INTERVAL_S at most, with the counts since the last one: a
 * flood of hostile messages must not become a flood of log lines. The topic is logged as
 * is: common/log escapes control bytes. */
static void note(rule_ent *r, size_t i, const char *topic)
{
    uint64_t now = clock_mono_ns();
    if (now < r->next_log_ns)
        return;
    r->next_log_ns = now + (uint64_t)RULE_LOG_INTERVAL_S * 1000000000ull;
    uint64_t ml = r->n.match_limit - r->logged.match_limit;
    uint64_t js = r->n.json_invalid - r->logged.json_invalid;
    r->logged = r->n;
    if (ml)
        log_warn("router",
                 "rule %zu (%s): %" PRIu64 " message(s) hit the regex match limit (%d steps: "
                 "catastrophic backtracking?) and did not match; last topic %.200s",
                 i, r->name ? r->name : "?", ml, RULE_MATCH_LIMIT, topic);
    if (js)
        log_warn("router",
                 "rule %zu (%s): %" PRIu64 " payload(s) are not JSON, the condition saw their "
                 "fields as null; last topic %.200s",
                 i, r->name ? r->name : "?", js, topic);
}

size_t rule_set_match(rule_set *rs, size_t client, const char *topic, size_t topic_len,
                      const void *payload, size_t payload_len, uint16_t *out)
{
    size_t k = 0, n = 0;

    if (client < rs->n_buckets - 1)
        k = collect(rs, &rs->buckets[client], topic, topic_len, k);
    k = collect(rs, &rs->buckets[rs->n_buckets - 1], topic, topic_len, k);
    sort_rules(rs->cand, k);
    for (size_t i = 0; i < k; i++) {
        rule_ent *r = &rs->rules[rs->cand[i]];
        if (r->re) {
            int m = pcre2_match(r->re, (PCRE2_SPTR)topic, topic_len, 0, 0, rs->md, rs->mc);
            if (m == PCRE2_ERROR_MATCHLIMIT || m == PCRE2_ERROR_DEPTHLIMIT ||
                m == PCRE2_ERROR_HEAPLIMIT) {
                r->n.match_limit++;
                rs->n_total++;
                note(r, rs->cand[i], topic);
            }
            if (m < 0)
                continue; /* no match, or a run-time error such as the match limit */
        }
        if (r->cond) {
            unsigned fl = 0;
            int ok = expr_eval_ex(r->cond, topic, payload, payload_len, &fl);
            if (fl & EXPR_JSON_INVALID) {
                r->n.json_invalid++;
                rs->n_total++;
                note(r, rs->cand[i], topic);
            }
            if (!ok)
                continue;
        }
        out[n++] = (uint16_t)rs->cand[i];
    }
    return n;
}
