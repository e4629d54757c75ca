/* Python callbacks in one process, below the pipeline: which modules are Python, and the
 * Python flavour of the example (config/examples/python/) loaded through cfg_load with module
 * checks, loader_create and chain_run exactly as a worker runs it; its outputs are the C
 * example's (tests/workers/test_examples.c). Run from the repository root; the shim is
 * $BUILD/bin/mqttflow-python.so. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pyshim.h"
#include "wtest.h"
#include "workers/chain.h"

#define EXAMPLE "config/examples/python/config.yaml"

typedef wt_chains fx;

static void test_py_is_python_kinds(void **state)
{
    (void)state;
    static const char *const yes[] = {"a.py", "dir/cb.py", "/abs/x.py", "mod", "pkg.mod", "_p.m_2"};
    static const char *const no[] = {"cb.so", "dir/cb.so", "libx.so.1", "a/b",  "",
                                     ".mod",  "a..b",      "pkg.",      "1mod", "a.1b"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        assert_true(pyshim_is_python(yes[i]));
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        if (pyshim_is_python(no[i]))
            fail_msg("\"%s\" taken for Python", no[i]);
}

static int setup(void **state)
{
    char shim[PATH_MAX], rel[PATH_MAX];
    snprintf(rel, sizeof(rel), "%s/bin/%s", wt_build(), PYSHIM_FILE);
    if (!realpath(rel, shim)) {
        fprintf(stderr, "%s not built\n", rel);
        return -1;
    }
    setenv("MQTTFLOW_PYTHON_SHIM", shim, 1);
    *state = wt_chains_load(EXAMPLE);
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    wt_chains_destroy(*state);
    return 0;
}

static int feed(fx *f, const char *rule_name, const char *payload)
{
    int rule = wt_chains_rule(f, rule_name);
    if (rule < 0)
        fail_msg("no rule %s in %s", rule_name, EXAMPLE);
    return wt_chains_feed(f, rule, f->c->rules[rule].topic, payload);
}

static void test_py_example_alert_and_humidity(void **state)
{
    fx *f = *state;
    assert_int_equal(feed(f, "simple_temperature_alert", "25"), 0);
    assert_int_equal(feed(f, "simple_temperature_alert", "35.5"), 0);
    assert_int_equal(feed(f, "simple_temperature_alert", "{\"temp\": 31, \"room\": \"k\"}"), 0);
    assert_int_equal(feed(f, "simple_temperature_alert", "garbage"), 0);
    assert_int_equal(feed(f, "humidity_analysis", "70.5"), 0);
    assert_int_equal(f->sink.n, 3);
    assert_string_equal(f->sink.recs[0].topic, "alerts/temperature");
    assert_int_equal(f->sink.recs[0].h.client, 0);
    assert_string_equal(f->sink.recs[0].payload,
                        "{\"alert\":\"high_temperature\",\"temperature\":35.5,\"threshold\":30,"
                        "\"topic\":\"sensors/temperature\",\"client_id\":\"client1\"}");
    assert_non_null(strstr(f->sink.recs[1].payload, "\"temperature\":31,"));
    assert_string_equal(f->sink.recs[2].payload, "{\"humidity\":70.5,\"class\":\"humid\"}");
    assert_int_equal(f->slot.errors, 0);
}

static void test_py_example_window_through_chain(void **state)
{
    fx *f = *state;
    assert_int_equal(feed(f, "temperature_sampling", "20"), 0);
    assert_int_equal(feed(f, "temperature_sampling", "{\"temperature\": 22}"), 0);
    assert_int_equal(feed(f, "temperature_sampling", "24"), 0);
    assert_int_equal(f->sink.n, 0);
    chain_close_all(f->cs);
    assert_int_equal(f->sink.n, 1);
    assert_string_equal(f->sink.recs[0].topic, "processed/temperature");
    assert_int_equal(f->sink.recs[0].h.client, cfg_client_index(f->c, "client2"));
    assert_string_equal(f->sink.recs[0].payload,
                        "{\"count\":3,\"avg\":22.000,\"min\":20,"
                        "\"max\":24,\"processed_at\":1700000000000000000}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_py_is_python_kinds),
        cmocka_unit_test_setup_teardown(test_py_example_alert_and_humidity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_py_example_window_through_chain, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
