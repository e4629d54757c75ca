/* status: status table and Prometheus text (see status.h). */
#include "status.h"

#include <string.h>

double status_rate(uint64_t now, uint64_t before, double seconds)
{
    if (seconds <= 0 || now < before)
        return 0;
    return (double)(now - before) / seconds;
}

static void stage_name(char *buf, size_t len, const status_row *r)
{
    if (r->id && *r->id)
        snprintf(buf, len, "%s %s", r->kind, r->id);
    else
        snprintf(buf, len, "%s", r->kind);
}

void status_format(FILE *f, const status_head *h, const status_row *rows, size_t n)
{
    fprintf(f, "instance %s: %s, supervisor pid %ld, up %.0f s (rates over the last %.1f s)\n",
            h->instance, h->phase, h->pid, h->uptime_s, h->interval_s);
    fprintf(f, "%-24s %8s %4s %-9s %8s %5s %12s %12s %10s %10s %8s %8s %8s %4s\n", "STAGE", "PID",
            "CPU", "STATE", "RESTARTS", "RING", "IN", "OUT", "IN/S", "OUT/S", "ERRORS", "DROPPED",
            "DEAD", "CONN");
    for (size_t i = 0; i < n; i++) {
        const status_row *r = &rows[i];
        char name[64], pid[24], cpu[16], fill[16];
        stage_name(name, sizeof(name), r);
        if (r->pid > 0)
            snprintf(pid, sizeof(pid), "%ld", r->pid);
        else
            snprintf(pid, sizeof(pid), "-");
        if (r->cpu >= 0)
            snprintf(cpu, sizeof(cpu), "%d", r->cpu);
        else
            snprintf(cpu, sizeof(cpu), "-");
        if (r->fill_pct >= 0)
            snprintf(fill, sizeof(fill), "%d%%", r->fill_pct);
        else
            snprintf(fill, sizeof(fill), "-");
        char conn[16];
        if (r->connected >= 0)
            snprintf(conn, sizeof(conn), "%d", r->connected);
        else
            snprintf(conn, sizeof(conn), "-");
        fprintf(f,
                "%-24s %8s %4s %-9s %8llu %5s %12llu %12llu %10.1f %10.1f %8llu %8llu %8llu %4s\n",
                name, pid, cpu, r->state, (unsigned long long)r->restarts, fill,
                (unsigned long long)r->in, (unsigned long long)r->out, r->in_rate, r->out_rate,
                (unsigned long long)r->errors, (unsigned long long)r->dropped,
                (unsigned long long)r->dead, conn);
    }
    for (size_t i = 0; i < n; i++) {
        const status_row *r = &rows[i];
        if (!r->reason || !*r->reason)
            continue;
        char name[64];
        stage_name(name, sizeof(name), r);
        fprintf(f, "%s: %s: %s\n", name, r->state, r->reason);
    }
}

/* Label values escape backslash, double quote and newline (exposition format 0.0.4). */
static void label(FILE *f, const char *v)
{
    for (; v && *v; v++) {
        if (*v == '\\' || *v == '"')
            fprintf(f, "\\%c", *v);
        else if (*v == '\n')
            fputs("\\n", f);
        else
            fputc(*v, f);
    }
}

enum { F_UP, F_PID, F_RESTARTS, F_FILL, F_IN, F_OUT, F_ERR, F_DROP, F_DEAD, F_CONN, F_N };

static const struct {
    const char *name, *type, *help;
} metrics[F_N] = {
    [F_UP] = {"mqttflow_stage_up", "gauge", "1 when the stage is running and ready"},
    [F_PID] = {"mqttflow_stage_pid", "gauge", "process id of the stage, 0 when none"},
    [F_RESTARTS] = {"mqttflow_stage_restarts_total", "counter", "respawns of the stage"},
    [F_FILL] = {"mqttflow_stage_ring_fill_ratio", "gauge", "fill of the stage's ring(s), 0..1"},
    [F_IN] = {"mqttflow_stage_in_total", "counter", "records or messages taken in"},
    [F_OUT] = {"mqttflow_stage_out_total", "counter", "records or messages handed on"},
    [F_ERR] = {"mqttflow_stage_errors_total", "counter", "errors"},
    [F_DROP] = {"mqttflow_stage_dropped_total", "counter", "dropped by policy or unmatched"},
    [F_DEAD] = {"mqttflow_stage_dead_total", "counter", "dead-lettered"},
    [F_CONN] = {"mqttflow_stage_connections", "gauge", "broker connections up (ingress, relay)"},
};

static double value_of(const status_row *r, int m)
{
    switch (m) {
    case F_UP:
        return strcmp(r->state, "running") == 0;
    case F_PID:
        return (double)r->pid;
    case F_RESTARTS:
        return (double)r->restarts;
    case F_FILL:
        return r->fill_pct / 100.0;
    case F_IN:
        return (double)r->in;
    case F_OUT:
        return (double)r->out;
    case F_ERR:
        return (double)r->errors;
    case F_DROP:
        return (double)r->dropped;
    case F_DEAD:
        return (double)r->dead;
    default:
        return (double)r->connected;
    }
}

void status_format_prom(FILE *f, const status_head *h, const status_row *rows, size_t n)
{
    for (int m = 0; m < F_N; m++) {
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", metrics[m].name, metrics[m].help,
                metrics[m].name, metrics[m].type);
        for (size_t i = 0; i < n; i++) {
            const status_row *r = &rows[i];
            if ((m == F_FILL && r->fill_pct < 0) || (m == F_CONN && r->connected < 0))
                continue;
            fprintf(f, "%s{instance=\"", metrics[m].name);
            label(f, h->instance);
            fputs("\",stage=\"", f);
            label(f, r->kind);
            fputs("\",id=\"", f);
            label(f, r->id);
            fprintf(f, "\"} %.15g\n", value_of(r, m));
        }
    }
}
