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

static void test_status_table_lists_every_stage(void **state)
{
    (void)state;
    char *t = format(0);
    char line[512];
    assert_non_null(strstr(t, "instance demo: running, supervisor pid 4242"));
    assert_non_null(line_of(t, "STAGE", line, sizeof(line)));
    assert_non_null(strstr(line, "RESTARTS"));
    assert_non_null(strstr(line, "RING"));

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
    assert_true(line[strlen(line) - 1] == '-'); /* no connections column for a worker */

    /* the reason of a failed stage gets its own line */
    assert_non_null(line_of(t, "worker 1: failed: restart intensity", line, sizeof(line)));
    assert_null(line_of(t, "ingress client1:", line, sizeof(line)));
    free(t);
}

static void test_status_prom_is_exposition_format(void **state)
{
    (void)state;
    char *t = format(1);
    assert_non_null(strstr(t, "# TYPE mqttflow_stage_restarts_total counter\n"));
    assert_non_null(strstr(t, "# TYPE mqttflow_stage_up gauge\n"));
    assert_non_null(strstr(
        t, "mqttflow_stage_in_total{instance=\"demo\",stage=\"ingress\",id=\"client1\"} 1000\n"));
    assert_non_null(strstr(
        t, "mqttflow_stage_restarts_total{instance=\"demo\",stage=\"worker\",id=\"1\"} 5\n"));
    assert_non_null(
        strstr(t, "mqttflow_stage_up{instance=\"demo\",stage=\"worker\",id=\"1\"} 0\n"));
    assert_non_null(strstr(t, "mqttflow_stage_ring_fill_ratio{instance=\"demo\",stage=\"ingress\","
                              "id=\"client1\"} 0.03\n"));
    assert_non_null(
        strstr(t, "mqttflow_stage_connections{instance=\"demo\",stage=\"relay\",id=\"\"} 2\n"));
    assert_null(strstr(t, "mqttflow_stage_connections{instance=\"demo\",stage=\"worker\""));
    /* a stage without a ring has no fill sample */
    assert_null(strstr(t, "mqttflow_stage_ring_fill_ratio{instance=\"demo\",stage=\"relay\""));
    /* every sample line is NAME{labels} VALUE */
    for (char *p = t; *p;) {
        char *nl = strchr(p, '\n');
        assert_non_null(nl);
        if (*p != '#') {
            assert_true(!strncmp(p, "mqttflow_stage_", 15));
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
    assert_non_null(strstr(t, "id=\"we\\\"ird\\\\id\""));
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
