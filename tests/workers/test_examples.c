/* The example callbacks of config/examples/callbacks, loaded through the example config
 * config/examples/config.yaml exactly as a worker loads them (run from the repository root;
 * `make` builds the modules next to their sources). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "wtest.h"
#include "workers/chain.h"

#define EXAMPLE "config/examples/config.yaml"

typedef wt_chains fx;

static int setup(void **state)
{
    *state = wt_chains_load(EXAMPLE);
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    wt_chains_destroy(*state);
    return 0;
}

static int rule(const fx *f, const char *name)
{
    int r = wt_chains_rule(f, name);
    if (r < 0)
        fail_msg("no rule %s in %s", name, EXAMPLE);
    return r;
}

static int feed(fx *f, const char *rule_name, const char *topic, const char *payload)
{
    return wt_chains_feed(f, rule(f, rule_name), topic, payload);
}

static void test_examples_temperature_alert_above_threshold(void **state)
{
    fx *f = *state;
    assert_int_equal(feed(f, "simple_temperature_alert", "sensors/temperature", "25"), 0);
    assert_int_equal(f->sink.n, 0);
    assert_int_equal(feed(f, "simple_temperature_alert", "sensors/temperature", "35.5"), 0);
    assert_int_equal(feed(f, "simple_temperature_alert", "sensors/temperature",
                          "{\"temp\": 31, \"room\": \"k\"}"),
                     0);
    assert_int_equal(feed(f, "simple_temperature_alert", "sensors/temperature", "garbage"), 0);
    assert_int_equal(f->sink.n, 2);
    assert_string_equal(f->sink.recs[0].topic, "alerts/temperature");
    assert_int_equal(f->sink.recs[0].h.client, 0); /* published on the source client */
    assert_non_null(strstr(f->sink.recs[0].payload, "\"temperature\":35.5"));
    assert_non_null(strstr(f->sink.recs[0].payload, "\"threshold\":30"));
    assert_non_null(strstr(f->sink.recs[1].payload, "\"temperature\":31"));
    assert_int_equal(f->slot.errors, 0);
}

static void test_examples_humidity_classes(void **state)
{
    fx *f = *state;
    assert_int_equal(feed(f, "humidity_analysis", "sensors/humidity", "10"), 0);
    assert_int_equal(feed(f, "humidity_analysis", "sensors/humidity", "{\"humidity\": 45}"), 0);
    assert_int_equal(feed(f, "humidity_analysis", "sensors/humidity", "70.5"), 0);
    assert_int_equal(f->sink.n, 3);
    assert_string_equal(f->sink.recs[0].topic, "analysis/humidity");
    assert_string_equal(f->sink.recs[0].payload, "{\"humidity\":10,\"class\":\"dry\"}");
    assert_string_equal(f->sink.recs[1].payload, "{\"humidity\":45,\"class\":\"comfortable\"}");
    assert_string_equal(f->sink.recs[2].payload, "{\"humidity\":70.5,\"class\":\"humid\"}");
}

static void test_examples_sampling_chain_relays_summary(void **state)
{
    fx *f = *state;
    assert_int_equal(feed(f, "temperature_sampling", "sensors/temperature", "20"), 0);
    assert_int_equal(
        feed(f, "temperature_sampling", "sensors/temperature", "{\"temperature\": 22}"), 0);
    assert_int_equal(feed(f, "temperature_sampling", "sensors/temperature", "24"), 0);
    assert_int_equal(f->sink.n, 0); /* the sampler holds them until its window closes */
    chain_close_all(f->cs);
    assert_int_equal(f->sink.n, 1);
    const wt_rec *r = &f->sink.recs[0];
    assert_string_equal(r->topic, "processed/temperature");
    assert_int_equal(r->h.client, cfg_client_index(f->c, "client2"));
    assert_string_equal(r->payload, "{\"count\":3,\"avg\":22.000,\"min\":20,\"max\":24,"
                                    "\"processed_at\":1700000000000000000}");
}

/* config/examples/reference.yaml uses every step kind: the worker must build all of them,
 * and a window closing at stop must run through the whole chain in one pass. */
static void test_examples_reference_chain_runs_every_step_kind(void **state)
{
    (void)state;
    fx f = {0};
    cfg_diag d = {0};
    int rc = cfg_load("config/examples/reference.yaml", CFG_LOAD_CHECK_MODULES, &f.c, &d);
    for (size_t i = 0; i < d.n_errors; i++)
        fprintf(stderr, "%s\n", d.errors[i]);
    cfg_diag_fini(&d);
    assert_int_equal(rc, 0);
    wt_env(&f.env, f.c, &f.sink, &f.slot);
    assert_int_equal(loader_create(&f.env, &f.ld), 0);
    assert_int_equal(chain_set_create(&f.env, f.ld, &f.cs), 0);

    assert_int_equal(feed(&f, "averages", "sensors/kitchen/temperature", "{\"temp\": 20}"), 0);
    assert_int_equal(feed(&f, "averages", "sensors/kitchen/temperature", "{\"temp\": 30}"), 0);
    assert_int_equal(f.sink.n, 0);
    chain_close_all(f.cs);
    assert_int_equal(f.sink.n, 1);
    const wt_rec *r = &f.sink.recs[0];
    assert_string_equal(r->topic, "processed/temperature");
    assert_int_equal(r->h.client, cfg_client_index(f.c, "client2"));
    /* sampler avg 25 -> filter -> on_change -> aggregate max -> batch of one -> relay */
    assert_string_equal(r->payload, "[{\"fn\":\"max\",\"field\":\"avg\",\"value\":25,"
                                    "\"count\":1}]");
    assert_int_equal(chain_next_deadline(f.cs), UINT64_MAX);
    chain_set_destroy(f.cs);
    loader_destroy(f.ld);
    cfg_destroy(f.c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_examples_temperature_alert_above_threshold, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_examples_humidity_classes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_examples_sampling_chain_relays_summary, setup,
                                        teardown),
        cmocka_unit_test(test_examples_reference_chain_runs_every_step_kind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
