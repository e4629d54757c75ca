/* Unit tests of supervisor/status.c: the status table and the Prometheus text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "supervisor/status.h"

static const status_head head = {
    .instance = "demo", .pid = 4242, .uptime_s = 12, .phase = "running", .interval_s = 1.0};

static status_row rows[3];

static int setup(void **state)
{
    (void)state;
    rows[0] = (status_row){.kind = "ingress",
                           .id = "client1",
                           .pid = 101,
                           .cpu = 0,
                           .state = "running",
                           .restarts = 0,
                           .fill_pct = 3,
                           .in = 1000,
                           .out = 990,
                           .in_rate = 250.5,
                           .out_rate = 249,
                           .reason = "",
                           .connected = 1};
    rows[1] = (status_row){.kind = "worker",
                           .id = "1",
                           .pid = 0,
                           .cpu = -1,
                           .state = "failed",
                           .restarts = 5,
                           .fill_pct = 100,
                           .in = 7,
                           .errors = 2,
                           .dropped = 1,
                           .connected = -1,
                           .reason = "restart intensity: more than 5 restarts in 10 s"};
    rows[2] = (status_row){.kind = "relay",
                           .id = "",
                           .pid = 103,
                           .cpu = 1,
                           .state = "running",
                           .fill_pct = -1,
                           .dead = 4,
                           .connected = 2};
    return 0;
}

/* Formats into a malloc'ed string. */
static char *format(int prom)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    if (prom)
        status_format_prom(f, &head, rows, 3);
    else
        status_format(f, &head, rows, 3);
    fclose(f);
    return text;
}

/* The line of text that starts with prefix, copied into buf. */
static const char *line_of(const char *text, const char *prefix, char *buf, size_t len)
{
    for (const char *p = text; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (!strncmp(p, prefix, strlen(prefix)) && n < len) {
            memcpy(buf, p, n);
            buf[n] = '\0';
            return buf;
        }
        p = nl ? nl + 1 : NULL;
    }
    return NULL;
}

/* Asserts that text holds want, and says which when it does not. */
static void assert_has(const char *text, const char *want)
{
    if (!strstr(text, want))
        fail_msg("missing \"%s\" in:\n%s", want, text);
}

/* assert_has for each of the texts after text. */
#define assert_has_all(text, ...) assert_has_each(text, (const char *const[]){__VA_ARGS__, NULL})
static void assert_has_each(const char *text, const char *const *wants)
{
    for (; *wants; wants++)
        assert_has(text, *wants);
}

/* Asserts that text does not hold unwanted, and says which when it does. */
static void assert_lacks(const char *text, const char *unwanted)
{
    if (strstr(text, unwanted))
        fail_msg("unwanted \"%s\" in:\n%s", unwanted, text);
}

static void test_status_table_lists_every_stage(void **state)
{
    (void)state;
    char *t = format(0);
    char line[512];
    assert_has(t, "instance demo: running, supervisor pid 4242");
    assert_non_null(line_of(t, "STAGE", line, sizeof(line)));
    assert_has(line, "RESTARTS");
    assert_has(line, "RING");

    assert_non_null(line_of(t, "ingress client1", line, sizeof(line)));
    char name[32], st[16], ring[8];
    long pid;
    int cpu;
    unsigned long long restarts, in, out;
    double inr, outr;
    assert_int_equal(sscanf(line, "ingress %31s %ld %d %15s %llu %7s %llu %llu %lf %lf", name, &pid,
                            &cpu, st, &restarts, ring, &in, &out, &inr, &outr),
                     10);
    assert_string_equal(name, "client1");
    assert_int_equal(pid, 101);
    assert_int_equal(cpu, 0);
    assert_string_equal(st, "running");
    assert_string_equal(ring, "3%");
    assert_int_equal(in, 1000);
    assert_int_equal(out, 990);
    assert_true(inr > 250.4 && inr < 250.6);

    /* no process and no pinning print as "-" */
    assert_non_null(line_of(t, "worker 1", line, sizeof(line)));
    assert_int_equal(sscanf(line, "worker 1 - - %15s %llu", st, &restarts), 2);
    assert_string_equal(st, "failed");
    assert_int_equal(restarts, 5);
    assert_non_null(line_of(t, "relay ", line, sizeof(line)));
    unsigned long long err, drop, dead;
    char fillr[8], conn[8];
    assert_int_equal(sscanf(line, "relay %ld %d %15s %llu %7s %llu %llu %lf %lf %llu %llu %llu %7s",
                            &pid, &cpu, st, &restarts, fillr, &in, &out, &inr, &outr, &err, &drop,
                            &dead, conn),
                     13);
    assert_string_equal(fillr, "-"); /* no ring figure given for it here */
    assert_int_equal(dead, 4);
    assert_string_equal(conn, "2");
    assert_non_null(line_of(t, "worker 1", line, sizeof(line)));
    /* no connections column for a worker: "-" before the last column (CPU%) */
    char *last = strrchr(line, ' ');
    assert_non_null(last);
    while (last > line && last[-1] == ' ')
        last--;
    assert_true(last[-1] == '-');

    /* the reason of a failed stage gets its own line */
    assert_non_null(line_of(t, "worker 1: failed: restart intensity", line, sizeof(line)));
    assert_null(line_of(t, "ingress client1:", line, sizeof(line)));
    free(t);
}

static void test_status_prom_is_exposition_format(void **state)
{
    (void)state;
    char *t = format(1);
    assert_has_all(
        t, "# TYPE mqttflow_stage_restarts_total counter\n", "# TYPE mqttflow_stage_up gauge\n",
        "mqttflow_stage_in_total{instance=\"demo\",stage=\"ingress\",id=\"client1\"} 1000\n",
        "mqttflow_stage_restarts_total{instance=\"demo\",stage=\"worker\",id=\"1\"} 5\n",
        "mqttflow_stage_up{instance=\"demo\",stage=\"worker\",id=\"1\"} 0\n",
        "mqttflow_stage_ring_fill_ratio{instance=\"demo\",stage=\"ingress\","
        "id=\"client1\"} 0.03\n",
        "mqttflow_stage_connections{instance=\"demo\",stage=\"relay\",id=\"\"} 2\n");
    assert_lacks(t, "mqttflow_stage_connections{instance=\"demo\",stage=\"worker\"");
    /* a stage without a ring has no fill sample */
    assert_lacks(t, "mqttflow_stage_ring_fill_ratio{instance=\"demo\",stage=\"relay\"");
    /* every sample line is NAME{labels} VALUE */
    for (char *p = t; *p;) {
        char *nl = strchr(p, '\n');
        assert_non_null(nl);
        if (*p != '#') {
            assert_true(!strncmp(p, "mqttflow_", 9));
            char *sp = memchr(p, ' ', (size_t)(nl - p));
            assert_non_null(sp);
            assert_true(sp[-1] == '}');
        }
        p = nl + 1;
    }
    free(t);
}

static void test_status_prom_escapes_labels(void **state)
{
    (void)state;
    rows[0].id = "we\"ird\\id";
    char *t = format(1);
    assert_has(t, "id=\"we\\\"ird\\\\id\"");
    free(t);
}

static const status_rule rules2[] = {
    {.name = "r1",
     .matched = 10,
     .processed = 9,
     .errors = 1,
     .dead = 1,
     .sum_ns = 90000,
     .hist = {[0] = 5, [2] = 4}},
    {.name = "idle"},
};
static const status_client clients2[] = {{.id = "c1", .connected = 1}, {.id = "c2"}};

static char *format_with(void (*fn)(FILE *, const status_head *, const status_row *, size_t),
                         const status_head *h)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    fn(f, h, rows, 3);
    fclose(f);
    return text;
}

static void test_status_prom_rules_and_clients(void **state)
{
    (void)state;
    status_head h = head;
    h.rules = rules2;
    h.n_rules = 2;
    h.clients = clients2;
    h.n_clients = 2;
    char *t = format_with(status_format_prom, &h);
    assert_has_all(t, "# TYPE mqttflow_rule_matched_total counter\n",
                   "mqttflow_rule_matched_total{instance=\"demo\",rule=\"r1\"} 10\n",
                   "mqttflow_rule_dead_total{instance=\"demo\",rule=\"r1\"} 1\n",
                   "# TYPE mqttflow_rule_processing_seconds histogram\n");
    /* cumulative buckets: 5 below 4 us, 9 below 16 us, 9 in +Inf */
    assert_has_all(
        t,
        "mqttflow_rule_processing_seconds_bucket{instance=\"demo\",rule=\"r1\",le=\"4e-06\"} 5\n",
        "mqttflow_rule_processing_seconds_bucket{instance=\"demo\",rule="
        "\"r1\",le=\"1.6e-05\"} 9\n",
        "mqttflow_rule_processing_seconds_bucket{instance=\"demo\",rule=\"r1\",le=\"+Inf\"} 9\n",
        "mqttflow_rule_processing_seconds_count{instance=\"demo\",rule=\"r1\"} 9\n",
        "mqttflow_client_connected{instance=\"demo\",client=\"c2\"} 0\n",
        "mqttflow_dead_letters_total{instance=\"demo\"} 4\n");
    free(t);
}

/* status_format_rules in format_with's shape (the rows are not its business). */
static void format_rules(FILE *f, const status_head *h, const status_row *r, size_t n)
{
    (void)r;
    (void)n;
    status_format_rules(f, h);
}

static void test_status_rules_table_and_quantiles(void **state)
{
    (void)state;
    status_head h = head;
    h.rules = rules2;
    h.n_rules = 2;
    char *text = format_with(format_rules, &h);
    char line[256];
    /* p50: the 5th of 9 samples is in bucket 0 (< 4 us); p99 in bucket 2 (< 16 us) */
    assert_non_null(line_of(text, "r1 ", line, sizeof(line)));
    char p50[16], p99[16];
    unsigned long long m, p, e, d;
    assert_int_equal(sscanf(line, "r1 %llu %llu %llu %llu %15s %15s", &m, &p, &e, &d, p50, p99), 6);
    assert_true(m == 10 && p == 9 && e == 1 && d == 1);
    assert_string_equal(p50, "0.004");
    assert_string_equal(p99, "0.016");
    assert_non_null(line_of(text, "idle ", line, sizeof(line)));
    assert_has(line, " - "); /* no sample: no quantile */
    free(text);
    uint64_t one_slow[STATS_HIST_N] = {[STATS_HIST_N - 1] = 1};
    assert_true(stats_hist_quantile(one_slow, 0.5) > 1e9);
    uint64_t none[STATS_HIST_N] = {0};
    assert_true(stats_hist_quantile(none, 0.5) < 0);
}

/* the router's per-rule counts: two columns of --rules, two Prometheus counters, JSON fields */
static void test_status_rule_router_counts(void **state)
{
    (void)state;
    status_rule r[2] = {rules2[0], rules2[1]};
    r[0].match_limit = 7;
    r[0].json_invalid = 3;
    status_head h = head;
    h.rules = r;
    h.n_rules = 2;
    char *text = format_with(format_rules, &h);
    char line[256];
    assert_has(text, " REGEX_LIMIT JSON_INVALID\n");
    assert_non_null(line_of(text, "r1 ", line, sizeof(line)));
    unsigned long long m, p, e, d, ml, js;
    char p50[16], p99[16];
    assert_int_equal(sscanf(line, "r1 %llu %llu %llu %llu %15s %15s %llu %llu", &m, &p, &e, &d, p50,
                            p99, &ml, &js),
                     8);
    assert_true(ml == 7 && js == 3);
    free(text);
    char *t = format_with(status_format_prom, &h);
    assert_has_all(t, "mqttflow_rule_regex_limit_total{instance=\"demo\",rule=\"r1\"} 7\n",
                   "mqttflow_rule_json_invalid_total{instance=\"demo\",rule=\"r1\"} 3\n",
                   "mqttflow_rule_json_invalid_total{instance=\"demo\",rule=\"idle\"} 0\n");
    free(t);
    t = format_with(status_format_json, &h);
    assert_has(t, "\"regex_limit\": 7");
    assert_has(t, "\"json_invalid\": 3");
    free(t);
}

static void test_status_health_and_readiness(void **state)
{
    (void)state;
    status_head h = head;
    char buf[512];
    FILE *f = fmemopen(buf, sizeof(buf), "w");
    /* worker 1 is failed: unhealthy, with the reason */
    assert_int_equal(status_healthy(f, &h, rows, 3), 0);
    fclose(f);
    assert_has(buf, "worker 1: failed: restart intensity");
    rows[1].state = "running";
    f = fmemopen(buf, sizeof(buf), "w");
    assert_int_equal(status_healthy(f, &h, rows, 3), 1);
    fclose(f);
    /* a client whose relay link is down: not ready, named */
    h.clients = clients2;
    h.n_clients = 2;
    f = fmemopen(buf, sizeof(buf), "w");
    assert_int_equal(status_ready(f, &h, rows, 3), 0);
    fclose(f);
    assert_has(buf, "client c2");
    h.n_clients = 1;
    f = fmemopen(buf, sizeof(buf), "w");
    assert_int_equal(status_ready(f, &h, rows, 3), 1);
    fclose(f);
    h.phase = "stopping";
    f = fmemopen(buf, sizeof(buf), "w");
    assert_int_equal(status_ready(f, &h, rows, 3), 0);
    fclose(f);
    assert_has(buf, "is stopping");
}

static void test_status_json_is_valid(void **state)
{
    (void)state;
    status_head h = head;
    h.rules = rules2;
    h.n_rules = 2;
    char *t = format_with(status_format_json, &h);
    assert_has_all(t, "\"instance\": \"demo\"", "\"ring_fill_pct\": null", "\"p50_ms\": null",
                   "\"reason\": \"restart intensity");
    free(t);
}

/* The stage kinds' extras (stats.h table) reach --prom and --json by their names: the spool
 * gauges of the ingress and the relay in one family, the router's unmatched counter, nothing
 * for a kind without the metric, nothing of the worker's internal fields. */
static void test_status_extras_by_table(void **state)
{
    (void)state;
    rows[0].stage = STATS_INGRESS;
    rows[0].extra[STATS_I_SPOOLED] = 17;
    rows[0].extra[STATS_I_SPOOL_NOW] = 5;
    rows[1].stage = STATS_WORKER;
    rows[1].extra[STATS_W_TIMEOUT_NS] = 123456;
    rows[2].stage = STATS_RELAY;
    rows[2].extra[STATS_RL_SPOOL_NOW] = 9;
    rows[2].extra[STATS_RL_DEAD_IN] = 3;
    rows[2].extra[STATS_RL_DEAD_STORED] = 2;
    char *t = format(1);
    const char *fam = "# TYPE mqttflow_stage_spooled_messages gauge\n";
    char *at = strstr(t, fam);
    assert_non_null(at);
    assert_lacks(at + 1, fam); /* one family for both kinds */
    assert_has(t, "mqttflow_stage_spooled_messages{instance=\"demo\",stage=\"ingress\","
                  "id=\"client1\"} 5\n");
    assert_has(t, "mqttflow_stage_spooled_messages{instance=\"demo\",stage=\"relay\",id=\"\"} 9\n");
    assert_lacks(t, "mqttflow_stage_spooled_messages{instance=\"demo\",stage=\"worker\"");
    assert_has_all(
        t, "# TYPE mqttflow_stage_spooled_total counter\n",
        "mqttflow_stage_spooled_total{instance=\"demo\",stage=\"ingress\","
        "id=\"client1\"} 17\n",
        "mqttflow_stage_dead_received_total{instance=\"demo\",stage=\"relay\",id=\"\"} 3\n",
        "mqttflow_stage_dead_stored_total{instance=\"demo\",stage=\"relay\",id=\"\"} 2\n");
    /* a family without a stage of its kind still has HELP and TYPE, and no sample */
    assert_has(t, "# TYPE mqttflow_stage_unmatched_total counter\n");
    assert_lacks(t, "mqttflow_stage_unmatched_total{");
    assert_lacks(t, "123456");
    free(t);

    status_head h = head;
    t = format_with(status_format_json, &h);
    assert_has_all(t, "\"spooled\": 5", "\"spooled_total\": 17", "\"dead_stored\": 2");
    assert_lacks(t, "timeout_ns");
    free(t);
}

/* The table itself: every shown extra has a name, a metric and help; kinds that share a family
 * agree on its type and help; names are unique within a kind. */
static void test_status_extra_table_is_consistent(void **state)
{
    (void)state;
    for (int k = 0; k <= STATS_RELAY; k++) {
        size_t n;
        const stats_extra_def *d = stats_extra_defs((enum stats_stage)k, &n);
        assert_true(n <= STATS_EXTRA_MAX);
        for (size_t i = 0; i < n; i++) {
            assert_non_null(d[i].name);
            assert_non_null(d[i].help);
            assert_true((d[i].type == STATS_EXTRA_INTERNAL) == (d[i].metric == NULL));
            for (size_t j = 0; j < i; j++)
                assert_string_not_equal(d[i].name, d[j].name);
            if (!d[i].metric)
                continue;
            assert_true(!strncmp(d[i].metric, "mqttflow_stage_", 15));
            assert_true((d[i].type == STATS_EXTRA_COUNTER) ==
                        (strlen(d[i].metric) > 6 &&
                         !strcmp(d[i].metric + strlen(d[i].metric) - 6, "_total")));
            for (int k2 = 0; k2 <= STATS_RELAY; k2++) {
                size_t n2;
                const stats_extra_def *d2 = stats_extra_defs((enum stats_stage)k2, &n2);
                for (size_t j = 0; j < n2; j++)
                    if (d2[j].metric && !strcmp(d2[j].metric, d[i].metric)) {
                        assert_int_equal(d2[j].type, d[i].type);
                        assert_string_equal(d2[j].help, d[i].help);
                    }
            }
        }
    }
    size_t n;
    assert_null(stats_extra_defs(STATS_SUPERVISOR, &n));
    assert_int_equal(n, 0);
}

/* an ingress's lost sessions (an extra of its kind): a prom sample of the ingress only, a table
 * line, a JSON field in its "extra" */
static void test_status_sessions_lost(void **state)
{
    (void)state;
    rows[0].stage = STATS_INGRESS;
    rows[0].extra[STATS_I_SESSIONS_LOST] = 2;
    char *t = format(1);
    assert_has(t, "# TYPE mqttflow_stage_sessions_lost_total counter\n");
    assert_has(t, "mqttflow_stage_sessions_lost_total{instance=\"demo\",stage="
                  "\"ingress\",id=\"client1\"} 2\n");
    assert_lacks(t, "mqttflow_stage_sessions_lost_total{instance=\"demo\",stage=\"relay\"");
    free(t);
    t = format(0);
    assert_has(t, "\ningress client1: 2 lost sessions (the broker had no session");
    free(t);
    t = format_with(status_format_json, &head);
    assert_has(t, "\"sessions_lost\": 2");
    free(t);
    rows[0].extra[STATS_I_SESSIONS_LOST] = 0;
    t = format(0);
    assert_lacks(t, "lost session");
    free(t);
}

static void test_status_rate(void **state)
{
    (void)state;
    assert_true(status_rate(150, 50, 2.0) == 50.0);
    assert_true(status_rate(50, 150, 2.0) == 0.0); /* counter went backwards */
    assert_true(status_rate(150, 50, 0.0) == 0.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_status_table_lists_every_stage, setup),
        cmocka_unit_test_setup(test_status_prom_is_exposition_format, setup),
        cmocka_unit_test_setup(test_status_prom_escapes_labels, setup),
        cmocka_unit_test(test_status_rate),
        cmocka_unit_test_setup(test_status_prom_rules_and_clients, setup),
        cmocka_unit_test_setup(test_status_rules_table_and_quantiles, setup),
        cmocka_unit_test_setup(test_status_health_and_readiness, setup),
        cmocka_unit_test_setup(test_status_json_is_valid, setup),
        cmocka_unit_test_setup(test_status_extras_by_table, setup),
        cmocka_unit_test(test_status_extra_table_is_consistent),
        cmocka_unit_test_setup(test_status_sessions_lost, setup),
        cmocka_unit_test_setup(test_status_rule_router_counts, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
