/* status: the text of `mqttflow status` and `mqttflow status --prom` (DESIGN §6).
 *
 * The supervisor builds one status_row per stage from its child table and the stats segment
 * (it never reads records), and this module only formats them: a fixed-width table for
 * people, or the Prometheus text exposition format (version 0.0.4) for scrapers. Rates are
 * computed by the caller over its last sampling interval (status_rate helps). Pure: writes to
 * a caller's FILE (open_memstream in the supervisor and the tests); thread-safe.
 */
#ifndef MF_SUPERVISOR_STATUS_H
#define MF_SUPERVISOR_STATUS_H

#include <stdint.h>
#include <stdio.h>

#include "stats.h"

typedef struct status_row {
    const char *kind;  /* "supervisor", "ingress", "router", "worker", "relay" */
    const char *id;    /* ingress: client id; worker: index; else "" */
    long pid;          /* 0: no process */
    int cpu;           /* pinned CPU, -1 = not pinned */
    const char *state; /* child_state_name */
    uint64_t restarts;
    int fill_pct; /* fill of the stage's ring(s), 0..100, -1 = none */
    uint64_t in, out, errors, dropped, dead;
    int connected;                   /* ingress/relay: broker connections up, -1 = not applicable */
    double in_rate, out_rate;        /* per second over the last interval */
    const char *reason;              /* why failed/backing off, or NULL/"" */
    double cpu_s;                    /* CPU seconds (user + system) of the current process */
    double cpu_pct;                  /* CPU use over the last interval, 100 = one core */
    enum stats_stage stage;          /* which of the tables of extras (stats.h) applies */
    uint64_t extra[STATS_EXTRA_MAX]; /* the slot's extras, by the enum of its kind */
} status_row;

/* One rule's counters, summed over the workers (stats.h stats_rule_row). */
typedef struct status_rule {
    const char *name;
    uint64_t matched; /* by the router */
    uint64_t processed, errors, dead, sum_ns;
    uint64_t hist[STATS_HIST_N];
    uint64_t match_limit, json_invalid; /* by the router (stats.h stats_rule_router) */
} status_rule;

/* One MQTT client: whether the relay's connection to its broker is up. */
typedef struct status_client {
    const char *id;
    int connected;
} status_client;

typedef struct status_head {
    const char *instance;
    long pid; /* the supervisor */
    double uptime_s;
    const char *phase;        /* "starting", "running", "stopping" */
    double interval_s;        /* length of the interval the rates cover */
    uint64_t spool_bytes;     /* bytes under runtime.spool_dir */
    const status_rule *rules; /* may be NULL */
    size_t n_rules;
    const status_client *clients; /* may be NULL */
    size_t n_clients;
} status_head;

/* The human table: a heading line, one line per row, then a line per row that has a reason.
 * Never fails (stdio errors stay in f). */
void status_format(FILE *f, const status_head *h, const status_row *rows, size_t n);
/* Prometheus text: mqttflow_stage_* per stage (labels instance, stage, id; the stage kinds'
 * extras as their table in stats.h names them, for the stages of that kind), mqttflow_rule_*
 * per rule (instance, rule), mqttflow_client_connected (instance, client) and instance-wide
 * gauges; the list with meanings is docs/metrics.md. `mqttflow status --prom` and the HTTP
 * /metrics print this. */
void status_format_prom(FILE *f, const status_head *h, const status_row *rows, size_t n);
/* The same data as one JSON object (`status --json`; schema in docs/metrics.md): per stage,
 * "extra" holds the extras of its kind that are shown (stats.h table), by their names. */
void status_format_json(FILE *f, const status_head *h, const status_row *rows, size_t n);
/* The per-rule table of `status --rules`. */
void status_format_rules(FILE *f, const status_head *h);
/* /healthz: 1 while the instance runs and every stage is running; else 0 and why in f. */
int status_healthy(FILE *f, const status_head *h, const status_row *rows, size_t n);
/* /readyz: 1 when healthy and every ingress and every client is connected; else 0, why in f. */
int status_ready(FILE *f, const status_head *h, const status_row *rows, size_t n);
/* (now - before) / seconds, 0 when seconds <= 0 or the counter went backwards. */
double status_rate(uint64_t now, uint64_t before, double seconds);

#endif
