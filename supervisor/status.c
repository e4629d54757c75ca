/* status: status table and Prometheus text (see status.h). */
#include "status.h"

#include <jansson.h>
#include <stdlib.h>
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
    fprintf(f, "%-24s %8s %4s %-9s %8s %5s %12s %12s %10s %10s %8s %8s %8s %4s %6s\n", "STAGE",
            "PID", "CPU", "STATE", "RESTARTS", "RING", "IN", "OUT", "IN/S", "OUT/S", "ERRORS",
            "DROPPED", "DEAD", "CONN", "CPU%");
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
                "%-24s %8s %4s %-9s %8llu %5s %12llu %12llu %10.1f %10.1f %8llu %8llu %8llu %4s "
                "%6.1f\n",
                name, pid, cpu, r->state, (unsigned long long)r->restarts, fill,
                (unsigned long long)r->in, (unsigned long long)r->out, r->in_rate, r->out_rate,
                (unsigned long long)r->errors, (unsigned long long)r->dropped,
                (unsigned long long)r->dead, conn, r->cpu_pct);
    }
    for (size_t i = 0; i < n; i++) {
        const status_row *r = &rows[i];
        if (!r->reason || !*r->reason)
            continue;
        char name[64];
        stage_name(name, sizeof(name), r);
        fprintf(f, "%s: %s: %s\n", name, r->state, r->reason);
    }
    for (size_t i = 0; i < n; i++) {
        const status_row *r = &rows[i];
        uint64_t lost = r->stage == STATS_INGRESS ? r->extra[STATS_I_SESSIONS_LOST] : 0;
        if (!lost)
            continue;
        char name[64];
        stage_name(name, sizeof(name), r);
        fprintf(f,
                "%s: %llu lost session%s (the broker had no session on a reconnect; see the log)\n",
                name, (unsigned long long)lost, lost == 1 ? "" : "s");
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

enum { F_UP, F_PID, F_RESTARTS, F_FILL, F_IN, F_OUT, F_ERR, F_DROP, F_DEAD, F_CONN, F_CPU, F_N };

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
    [F_CPU] = {"mqttflow_stage_cpu_seconds_total", "counter",
               "CPU seconds (user + system) of the stage's current process"},
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
    case F_CPU:
        return r->cpu_s;
    default:
        return (double)r->connected;
    }
}

static void help_type(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{instance="..",key="value"} */
static void sample_start(FILE *f, const char *name, const status_head *h, const char *key,
                         const char *value)
{
    fprintf(f, "%s{instance=\"", name);
    label(f, h->instance);
    if (key) {
        fprintf(f, "\",%s=\"", key);
        label(f, value);
    }
    fputs("\"", f);
}

static const char *const extra_type[] = {[STATS_EXTRA_COUNTER] = "counter",
                                         [STATS_EXTRA_GAUGE] = "gauge",
                                         [STATS_EXTRA_INTERNAL] = NULL};

/* Whether metric was already printed for a kind or an extra before (kind, i) in table order:
 * kinds may share a family (the spool gauges), printed once with the samples of every kind. */
static int extra_seen_before(enum stats_stage kind, size_t i, const char *metric)
{
    for (int k = 0; k <= (int)kind; k++) {
        size_t nd;
        const stats_extra_def *d = stats_extra_defs((enum stats_stage)k, &nd);
        for (size_t j = 0; j < nd && (k < (int)kind || j < i); j++)
            if (d[j].metric && !strcmp(d[j].metric, metric))
                return 1;
    }
    return 0;
}

/* The stage kinds' extras (stats.h stats_extra_defs), one family per metric name, with a
 * sample for each stage whose kind has it. */
static void prom_extras(FILE *f, const status_head *h, const status_row *rows, size_t n)
{
    for (int k = 0; k <= STATS_RELAY; k++) {
        size_t nd;
        const stats_extra_def *d = stats_extra_defs((enum stats_stage)k, &nd);
        for (size_t i = 0; i < nd; i++) {
            if (!d[i].metric || extra_seen_before((enum stats_stage)k, i, d[i].metric))
                continue;
            help_type(f, d[i].metric, extra_type[d[i].type], d[i].help);
            for (size_t r = 0; r < n; r++) {
                size_t nr;
                const stats_extra_def *rd = stats_extra_defs(rows[r].stage, &nr);
                for (size_t x = 0; x < nr; x++) {
                    if (!rd[x].metric || strcmp(rd[x].metric, d[i].metric))
                        continue;
                    sample_start(f, d[i].metric, h, "stage", rows[r].kind);
                    fputs(",id=\"", f);
                    label(f, rows[r].id);
                    fprintf(f, "\"} %llu\n", (unsigned long long)rows[r].extra[x]);
                }
            }
        }
    }
}

/* The shown extras of a stage as a JSON object by name; *spooled: the one named "spooled",
 * which the schema also has at the top (from before "extra"), 0 when the kind has none. */
static json_t *json_extras(const status_row *r, uint64_t *spooled)
{
    json_t *o = json_object();
    size_t nd;
    const stats_extra_def *d = stats_extra_defs(r->stage, &nd);
    *spooled = 0;
    for (size_t x = 0; x < nd; x++) {
        if (d[x].type == STATS_EXTRA_INTERNAL)
            continue;
        json_object_set_new(o, d[x].name, json_integer((json_int_t)r->extra[x]));
        if (!strcmp(d[x].name, "spooled"))
            *spooled = r->extra[x];
    }
    return o;
}

enum { R_MATCHED, R_PROCESSED, R_ERRORS, R_DEAD, R_MATCH_LIMIT, R_JSON_INVALID, R_N };
static const struct {
    const char *name, *help;
} rule_metrics[R_N] = {
    [R_MATCHED] = {"mqttflow_rule_matched_total", "messages the router matched to the rule"},
    [R_PROCESSED] = {"mqttflow_rule_processed_total",
                     "messages run through the rule's callback or chain"},
    [R_ERRORS] = {"mqttflow_rule_errors_total", "runs of the rule that returned an error"},
    [R_DEAD] = {"mqttflow_rule_dead_total", "messages of the rule dead-lettered by a worker"},
    [R_MATCH_LIMIT] = {"mqttflow_rule_regex_limit_total",
                       "messages whose topic stopped the rule's regex at the match limit (no "
                       "match)"},
    [R_JSON_INVALID] = {"mqttflow_rule_json_invalid_total",
                        "messages whose payload the rule's condition could not read as JSON"},
};

static uint64_t rule_value(const status_rule *r, int m)
{
    return m == R_MATCHED        ? r->matched
           : m == R_PROCESSED    ? r->processed
           : m == R_ERRORS       ? r->errors
           : m == R_MATCH_LIMIT  ? r->match_limit
           : m == R_JSON_INVALID ? r->json_invalid
                                 : r->dead;
}

static void prom_rules(FILE *f, const status_head *h)
{
    if (!h->rules || h->n_rules == 0)
        return;
    for (int m = 0; m < R_N; m++) {
        help_type(f, rule_metrics[m].name, "counter", rule_metrics[m].help);
        for (size_t i = 0; i < h->n_rules; i++) {
            sample_start(f, rule_metrics[m].name, h, "rule", h->rules[i].name);
            fprintf(f, "} %llu\n", (unsigned long long)rule_value(&h->rules[i], m));
        }
    }
    const char *hn = "mqttflow_rule_processing_seconds";
    help_type(f, hn, "histogram", "processing time of one message by the rule (worker)");
    for (size_t i = 0; i < h->n_rules; i++) {
        const status_rule *r = &h->rules[i];
        uint64_t cum = 0;
        for (unsigned b = 0; b < STATS_HIST_N; b++) {
            cum += r->hist[b];
            sample_start(f, "mqttflow_rule_processing_seconds_bucket", h, "rule", r->name);
            if (b + 1 < STATS_HIST_N)
                fprintf(f, ",le=\"%.9g\"} %llu\n", (double)(STATS_HIST_BASE_NS << b) / 1e9,
                        (unsigned long long)cum);
            else
                fprintf(f, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
        }
        sample_start(f, "mqttflow_rule_processing_seconds_sum", h, "rule", r->name);
        fprintf(f, "} %.9g\n", (double)r->sum_ns / 1e9);
        sample_start(f, "mqttflow_rule_processing_seconds_count", h, "rule", r->name);
        fprintf(f, "} %llu\n", (unsigned long long)cum);
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
    prom_extras(f, h, rows, n);
    help_type(f, "mqttflow_up", "gauge", "1 while the instance is running (not starting/stopping)");
    sample_start(f, "mqttflow_up", h, NULL, NULL);
    fprintf(f, "} %d\n", !strcmp(h->phase, "running"));
    help_type(f, "mqttflow_uptime_seconds", "gauge", "seconds since the supervisor started");
    sample_start(f, "mqttflow_uptime_seconds", h, NULL, NULL);
    fprintf(f, "} %.3f\n", h->uptime_s);
    help_type(f, "mqttflow_spool_bytes", "gauge", "bytes of the disk spools under spool_dir");
    sample_start(f, "mqttflow_spool_bytes", h, NULL, NULL);
    fprintf(f, "} %llu\n", (unsigned long long)h->spool_bytes);
    uint64_t dead = 0;
    for (size_t i = 0; i < n; i++)
        dead += rows[i].dead;
    help_type(f, "mqttflow_dead_letters_total", "counter",
              "messages dead-lettered by any stage (sum of mqttflow_stage_dead_total)");
    sample_start(f, "mqttflow_dead_letters_total", h, NULL, NULL);
    fprintf(f, "} %llu\n", (unsigned long long)dead);
    if (h->clients && h->n_clients) {
        help_type(f, "mqttflow_client_connected", "gauge",
                  "1 while the relay's connection of the client to its broker is up");
        for (size_t i = 0; i < h->n_clients; i++) {
            sample_start(f, "mqttflow_client_connected", h, "client", h->clients[i].id);
            fprintf(f, "} %d\n", h->clients[i].connected);
        }
    }
    prom_rules(f, h);
}

/* p-quantile of a rule's processing time in ms, or -1 */
static double rule_ms(const status_rule *r, double q)
{
    double ns = stats_hist_quantile(r->hist, q);
    return ns < 0 ? -1 : ns / 1e6;
}

void status_format_rules(FILE *f, const status_head *h)
{
    fprintf(f, "instance %s: %zu rule%s (times: upper bound of the histogram bucket)\n",
            h->instance, h->n_rules, h->n_rules == 1 ? "" : "s");
    fprintf(f, "%-32s %12s %12s %10s %10s %10s %10s %11s %12s\n", "RULE", "MATCHED", "PROCESSED",
            "ERRORS", "DEAD", "P50_MS", "P99_MS", "REGEX_LIMIT", "JSON_INVALID");
    for (size_t i = 0; i < h->n_rules; i++) {
        const status_rule *r = &h->rules[i];
        char p50[24] = "-", p99[24] = "-";
        double a = rule_ms(r, 0.5), b = rule_ms(r, 0.99);
        if (a >= 0)
            snprintf(p50, sizeof(p50), "%.3f", a);
        if (b >= 0)
            snprintf(p99, sizeof(p99), "%.3f", b);
        fprintf(f, "%-32s %12llu %12llu %10llu %10llu %10s %10s %11llu %12llu\n", r->name,
                (unsigned long long)r->matched, (unsigned long long)r->processed,
                (unsigned long long)r->errors, (unsigned long long)r->dead, p50, p99,
                (unsigned long long)r->match_limit, (unsigned long long)r->json_invalid);
    }
}

static json_t *num_or_null(double v, int present)
{
    return present ? json_real(v) : json_null();
}

void status_format_json(FILE *f, const status_head *h, const status_row *rows, size_t n)
{
    json_t *stages = json_array(), *rules = json_array(), *clients = json_array();
    for (size_t i = 0; i < n; i++) {
        const status_row *r = &rows[i];
        uint64_t spooled;
        json_t *extra = json_extras(r, &spooled);
        json_array_append_new(
            stages,
            json_pack("{s:s, s:s, s:I, s:o, s:s, s:I, s:o, s:I, s:I, s:I, s:I, s:I, s:o, s:f, "
                      "s:f, s:f, s:f, s:I, s:o, s:o}",
                      "kind", r->kind, "id", r->id ? r->id : "", "pid", (json_int_t)r->pid, "cpu",
                      r->cpu >= 0 ? json_integer(r->cpu) : json_null(), "state", r->state,
                      "restarts", (json_int_t)r->restarts, "ring_fill_pct",
                      r->fill_pct >= 0 ? json_integer(r->fill_pct) : json_null(), "in",
                      (json_int_t)r->in, "out", (json_int_t)r->out, "errors", (json_int_t)r->errors,
                      "dropped", (json_int_t)r->dropped, "dead", (json_int_t)r->dead, "connected",
                      r->connected >= 0 ? json_integer(r->connected) : json_null(), "in_rate",
                      r->in_rate, "out_rate", r->out_rate, "cpu_seconds", r->cpu_s, "cpu_pct",
                      r->cpu_pct, "spooled", (json_int_t)spooled, "reason",
                      r->reason && *r->reason ? json_string(r->reason) : json_null(), "extra",
                      extra));
    }
    for (size_t i = 0; h->rules && i < h->n_rules; i++) {
        const status_rule *r = &h->rules[i];
        double a = rule_ms(r, 0.5), b = rule_ms(r, 0.99);
        json_array_append_new(
            rules,
            json_pack("{s:s, s:I, s:I, s:I, s:I, s:o, s:o, s:I, s:I}", "name", r->name, "matched",
                      (json_int_t)r->matched, "processed", (json_int_t)r->processed, "errors",
                      (json_int_t)r->errors, "dead", (json_int_t)r->dead, "p50_ms",
                      num_or_null(a, a >= 0), "p99_ms", num_or_null(b, b >= 0), "regex_limit",
                      (json_int_t)r->match_limit, "json_invalid", (json_int_t)r->json_invalid));
    }
    for (size_t i = 0; h->clients && i < h->n_clients; i++)
        json_array_append_new(clients, json_pack("{s:s, s:b}", "id", h->clients[i].id, "connected",
                                                 h->clients[i].connected));
    json_t *root =
        json_pack("{s:s, s:I, s:s, s:f, s:f, s:I, s:o, s:o, s:o}", "instance", h->instance, "pid",
                  (json_int_t)h->pid, "phase", h->phase, "uptime_s", h->uptime_s, "interval_s",
                  h->interval_s, "spool_bytes", (json_int_t)h->spool_bytes, "stages", stages,
                  "rules", rules, "clients", clients);
    if (root)
        json_dumpf(root, f, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    else
        fputs("{}", f);
    fputc('\n', f);
    json_decref(root);
}

int status_healthy(FILE *f, const status_head *h, const status_row *rows, size_t n)
{
    int ok = 1;
    if (strcmp(h->phase, "running") != 0) {
        fprintf(f, "instance %s is %s\n", h->instance, h->phase);
        ok = 0;
    }
    for (size_t i = 0; i < n; i++) {
        const status_row *r = &rows[i];
        if (!strcmp(r->state, "running"))
            continue;
        char name[64];
        stage_name(name, sizeof(name), r);
        fprintf(f, "%s: %s%s%s\n", name, r->state, r->reason && *r->reason ? ": " : "",
                r->reason ? r->reason : "");
        ok = 0;
    }
    if (ok)
        fprintf(f, "ok: instance %s, %zu stages running\n", h->instance, n);
    return ok;
}

int status_ready(FILE *f, const status_head *h, const status_row *rows, size_t n)
{
    char *why = NULL;
    size_t len = 0;
    FILE *w = open_memstream(&why, &len);
    if (!w)
        return 0;
    int ok = status_healthy(w, h, rows, n);
    fclose(w);
    if (!ok) {
        fputs(why, f);
        free(why);
        return 0;
    }
    free(why);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(rows[i].kind, "ingress") && rows[i].connected == 0) {
            fprintf(f, "ingress %s: not connected to its broker\n", rows[i].id);
            ok = 0;
        }
    for (size_t i = 0; h->clients && i < h->n_clients; i++)
        if (!h->clients[i].connected) {
            fprintf(f, "client %s: the relay is not connected to its broker\n", h->clients[i].id);
            ok = 0;
        }
    if (ok)
        fprintf(f, "ready: instance %s, every stage ready, every client connected\n", h->instance);
    return ok;
}
