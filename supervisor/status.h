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

typedef struct status_row {
    const char *kind;  /* "supervisor", "ingress", "router", "worker", "relay" */
    const char *id;    /* ingress: client id; worker: index; else "" */
    long pid;          /* 0: no process */
    int cpu;           /* pinned CPU, -1 = not pinned */
    const char *state; /* child_state_name */
    uint64_t restarts;
    int fill_pct; /* fill of the stage's ring(s), 0..100, -1 = none */
    uint64_t in, out, errors, dropped, dead;
    int connected;            /* ingress/relay: broker connections up, -1 = not applicable */
    double in_rate, out_rate; /* per second over the last interval */
    const char *reason;       /* why failed/backing off, or NULL/"" */
} status_row;

typedef struct status_head {
    const char *instance;
    long pid; /* the supervisor */
    double uptime_s;
    const char *phase; /* "starting", "running", "stopping" */
    double interval_s; /* length of the interval the rates cover */
} status_head;

/* The human table: a heading line, one line per row, then a line per row that has a reason.
 * Never fails (stdio errors stay in f). */
void status_format(FILE *f, const status_head *h, const status_row *rows, size_t n);
/* Prometheus text: mqttflow_stage_{up,pid,restarts_total,ring_fill_ratio,in_total,out_total,
 * errors_total,dropped_total,dead_total,connections} with labels instance, stage, id. */
void status_format_prom(FILE *f, const status_head *h, const status_row *rows, size_t n);
/* (now - before) / seconds, 0 when seconds <= 0 or the counter went backwards. */
double status_rate(uint64_t now, uint64_t before, double seconds);

#endif
