#include "stats.h"

#include <errno.h>
#include <stdlib.h>

/* 2: the per-rule counters after the slots; 3: the router's per-rule counters after them */
#define STATS_VERSION 3

/* Segment: shm_hdr, then this header on its own cache line, then the slots. */
typedef struct stats_layout {
    shm_hdr hdr;
    uint64_t n_slots;
    uint64_t n_rules;    /* counted rules: matched[n_rules], rows[n_workers][n_rules], then
                            stats_rule_router[n_rules] */
    uint64_t n_workers;  /* worker rows per rule */
    uint64_t tap_gen[3]; /* stats_tap_gen */
    uint64_t pad[2];
    stats_slot slots[];
} stats_layout;
_Static_assert(sizeof(stats_layout) == 128, "stats_layout header");

struct stats {
    shm *seg;
    stats_layout *l;
};

static size_t layout_size(size_t n_slots, size_t n_rules, size_t n_workers)
{
    return sizeof(stats_layout) + n_slots * sizeof(stats_slot) + n_rules * sizeof(uint64_t) +
           n_rules * n_workers * sizeof(stats_rule_row) + n_rules * sizeof(stats_rule_router);
}

int stats_create(const char *name, size_t n_slots, stats **out)
{
    return stats_create_rules(name, n_slots, 0, 0, out);
}

int stats_create_rules(const char *name, size_t n_slots, size_t n_rules, size_t n_workers,
                       stats **out)
{
    if (n_slots == 0 || n_slots > 4096 || n_workers > 4096)
        return -EINVAL;
    if (n_rules > STATS_MAX_RULES)
        n_rules = STATS_MAX_RULES;
    if (n_workers == 0)
        n_rules = 0;
    stats *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    int rc = shm_create(name, SHM_KIND_STATS, STATS_VERSION,
                        layout_size(n_slots, n_rules, n_workers), &s->seg);
    if (rc < 0) {
        free(s);
        return rc;
    }
    s->l = shm_base(s->seg);
    /* relaxed: the segment is published to other processes by their later shm_open/mmap,
     * which orders everything written before it */
    atom_store_relaxed(&s->l->n_slots, n_slots);
    atom_store_relaxed(&s->l->n_rules, n_rules);
    atom_store_relaxed(&s->l->n_workers, n_workers);
    *out = s;
    return 0;
}

int stats_attach(const char *name, stats **out)
{
    stats *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    int rc = shm_attach(name, SHM_KIND_STATS, STATS_VERSION, &s->seg);
    if (rc < 0) {
        free(s);
        return rc;
    }
    s->l = shm_base(s->seg);
    /* bounded before the multiplication: sizes from shared memory are outside input */
    if (s->l->n_slots > 4096 || s->l->n_rules > STATS_MAX_RULES || s->l->n_workers > 4096 ||
        layout_size(s->l->n_slots, s->l->n_rules, s->l->n_workers) > shm_size(s->seg)) {
        stats_detach(s);
        return -EPROTO;
    }
    *out = s;
    return 0;
}

void stats_detach(stats *s)
{
    if (!s)
        return;
    shm_detach(s->seg);
    free(s);
}

size_t stats_slot_count(const stats *s)
{
    return (size_t)s->l->n_slots;
}

stats_slot *stats_slot_at(stats *s, size_t idx)
{
    return idx < s->l->n_slots ? &s->l->slots[idx] : NULL;
}

size_t stats_slot_index(enum stats_stage kind, size_t idx, size_t n_ingress)
{
    /* singletons first, so no caller needs the worker count */
    switch (kind) {
    case STATS_SUPERVISOR:
        return 0;
    case STATS_ROUTER:
        return 1;
    case STATS_RELAY:
        return 2;
    case STATS_INGRESS:
        return 3 + idx;
    case STATS_WORKER:
    default:
        return 3 + n_ingress + idx;
    }
}

size_t stats_slot_total(size_t n_ingress, size_t n_workers)
{
    return 3 + n_ingress + n_workers;
}

size_t stats_rule_count(const stats *s)
{
    return (size_t)s->l->n_rules;
}

size_t stats_rule_workers(const stats *s)
{
    return (size_t)s->l->n_workers;
}

uint64_t *stats_rule_matched(stats *s, size_t rule)
{
    if (rule >= s->l->n_rules)
        return NULL;
    return (uint64_t *)&s->l->slots[s->l->n_slots] + rule;
}

stats_rule_row *stats_rule_row_at(stats *s, size_t w, size_t rule)
{
    if (rule >= s->l->n_rules || w >= s->l->n_workers)
        return NULL;
    stats_rule_row *rows =
        (stats_rule_row *)((uint64_t *)&s->l->slots[s->l->n_slots] + s->l->n_rules);
    return &rows[w * s->l->n_rules + rule];
}

stats_rule_router *stats_rule_router_at(stats *s, size_t rule)
{
    if (rule >= s->l->n_rules)
        return NULL;
    stats_rule_row *rows =
        (stats_rule_row *)((uint64_t *)&s->l->slots[s->l->n_slots] + s->l->n_rules);
    return (stats_rule_router *)&rows[s->l->n_workers * s->l->n_rules] + rule;
}

double stats_hist_quantile(const uint64_t *h, double q)
{
    uint64_t total = 0;
    for (unsigned b = 0; b < STATS_HIST_N; b++)
        total += h[b];
    if (total == 0)
        return -1;
    /* the rank of the q-quantile, 1-based: the smallest count that reaches q of the total */
    double rank = q * (double)total;
    uint64_t seen = 0;
    for (unsigned b = 0; b < STATS_HIST_N - 1; b++) {
        seen += h[b];
        if ((double)seen >= rank)
            return (double)(STATS_HIST_BASE_NS << b);
    }
    return (double)(STATS_HIST_BASE_NS << (STATS_HIST_N - 2));
}

uint64_t *stats_tap_gen(stats *s, int point)
{
    return point >= 0 && point < 3 ? &s->l->tap_gen[point] : NULL;
}

/* ---- the extras of each stage kind (stats.h) ---- */

/* The spool gauges of the ingress and the relay share one family, as they always did. */
#define SPOOLED_METRIC "mqttflow_stage_spooled_messages"
#define SPOOLED_HELP   "messages in the stage's disk spool now (ingress, relay)"

static const stats_extra_def ingress_extras[STATS_I_N] = {
    [STATS_I_SPOOLED] = {"spooled_total", STATS_EXTRA_COUNTER, "mqttflow_stage_spooled_total",
                         "messages that went through the stage's disk spool (ingress: ring full)"},
    [STATS_I_SPOOL_NOW] = {"spooled", STATS_EXTRA_GAUGE, SPOOLED_METRIC, SPOOLED_HELP},
    [STATS_I_SESSION] = {"session", STATS_EXTRA_INTERNAL, NULL, "the persistent session's key"},
    [STATS_I_SESSIONS_LOST] = {"sessions_lost", STATS_EXTRA_COUNTER,
                               "mqttflow_stage_sessions_lost_total",
                               "persistent sessions the broker no longer had on a reconnect, "
                               "also across restarts of the ingress (ingress)"},
};
static const stats_extra_def router_extras[STATS_RT_N] = {
    [STATS_RT_UNMATCHED] = {"unmatched", STATS_EXTRA_COUNTER, "mqttflow_stage_unmatched_total",
                            "messages that matched no rule (router; also in dropped)"},
};
static const stats_extra_def relay_extras[STATS_RL_N] = {
    [STATS_RL_SPOOL_NOW] = {"spooled", STATS_EXTRA_GAUGE, SPOOLED_METRIC, SPOOLED_HELP},
    [STATS_RL_DEAD_IN] = {"dead_received", STATS_EXTRA_COUNTER,
                          "mqttflow_stage_dead_received_total",
                          "dead records received from the workers (relay)"},
    [STATS_RL_DEAD_STORED] = {"dead_stored", STATS_EXTRA_COUNTER,
                              "mqttflow_stage_dead_stored_total",
                              "dead letters written durably to the dead-letter file (relay)"},
};
static const stats_extra_def worker_extras[STATS_W_N] = {
    [STATS_W_DEATH] = {"death", STATS_EXTRA_INTERNAL, NULL, "how the last worker died"},
    [STATS_W_TIMEOUT_NS] = {"timeout_ns", STATS_EXTRA_INTERNAL, NULL, "its watchdog's kill"},
    [STATS_W_BACKSTOP_NS] = {"backstop_ns", STATS_EXTRA_INTERNAL, NULL, "the supervisor's kill"},
};
_Static_assert(STATS_I_N <= STATS_EXTRA_MAX && STATS_RT_N <= STATS_EXTRA_MAX &&
                   STATS_RL_N <= STATS_EXTRA_MAX && STATS_W_N <= STATS_EXTRA_MAX,
               "a stage kind's extras fit stats_slot.extra");

static const struct {
    const stats_extra_def *defs;
    size_t n;
} extras[] = {
    [STATS_SUPERVISOR] = {NULL, 0},
    [STATS_INGRESS] = {ingress_extras, STATS_I_N},
    [STATS_ROUTER] = {router_extras, STATS_RT_N},
    [STATS_WORKER] = {worker_extras, STATS_W_N},
    [STATS_RELAY] = {relay_extras, STATS_RL_N},
};

const stats_extra_def *stats_extra_defs(enum stats_stage kind, size_t *n)
{
    if ((unsigned)kind >= sizeof(extras) / sizeof(extras[0])) {
        *n = 0;
        return NULL;
    }
    *n = extras[kind].n;
    return extras[kind].defs;
}
