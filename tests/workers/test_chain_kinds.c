/* The table of step kinds (config/cfg_steps.h) as config and worker read it: every kind has a
 * distinct name; a chain of each kind builds; the config's CFG_STEP_STATEFUL flag and the
 * worker's state_size agree (a region exactly for the kinds the config calls stateful); the
 * state's identity (cfg_step_hash) follows a stateful step's values but not the callback it
 * names, nor a stateless step's parameters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "hash.h"
#include "wtest.h"
#include "workers/chain.h"
#include "workers/loader.h"

#define HEAD                                                                                       \
    "mqtt_clients:\n"                                                                              \
    "  - client_id: c1\n"                                                                          \
    "    broker_url: mqtt://127.0.0.1\n"                                                           \
    "    topics: [{name: \"in/#\"}]\n"                                                             \
    "callbacks:\n"                                                                                 \
    "  echo: {module: \"%s\", function: echo}\n"                                                   \
    "  join: {module: \"%s\", function: join}\n"                                                   \
    "rules:\n"                                                                                     \
    "  - {rule: r0, source_client_id: c1, topic: \"in/#\", action: k0}\n"                          \
    "processing_chains:\n"

/* One chain per kind, each with the smallest config it accepts. */
static const struct {
    const char *step;
    bool stateful;
} kinds[] = {
    {"{step: sampler, config: {duration: 1}}", true},
    {"{step: custom_processor, config: {callback: echo}}", false},
    {"{step: relay}", false},
    {"{step: format}", false},
    {"{step: filter, config: {condition: \"1 == 1\"}}", false},
    {"{step: batch, config: {count: 2}}", true},
    {"{step: throttle, config: {rate: 1}}", true},
    {"{step: on_change}", true},
    {"{step: aggregate, config: {fn: sum, interval: 1}}", true},
    {"{step: dedup, config: {window: 1}}", true},
};
#define N (sizeof(kinds) / sizeof(kinds[0]))

static cfg *load_all(void)
{
    char yaml[4096];
    const char *e = wt_cb("echo");
    int at = snprintf(yaml, sizeof(yaml), HEAD, e, e);
    for (size_t i = 0; i < N; i++)
        at += snprintf(yaml + at, sizeof(yaml) - (size_t)at, "  k%zu: [%s]\n", i, kinds[i].step);
    cfg *c = wt_cfg("%s", yaml);
    assert_non_null(c);
    return c;
}

static void test_chain_kinds_names_are_distinct(void **state)
{
    (void)state;
    for (int a = 0; a < CFG_STEP_N_KINDS; a++) {
        const char *na = cfg_step_kind_name((enum cfg_step_kind)a);
        assert_string_not_equal(na, "?");
        for (int b = a + 1; b < CFG_STEP_N_KINDS; b++)
            assert_string_not_equal(na, cfg_step_kind_name((enum cfg_step_kind)b));
    }
    assert_string_equal(cfg_step_kind_name(CFG_STEP_N_KINDS), "?");
}

static void test_chain_kinds_config_and_worker_agree(void **state)
{
    (void)state;
    cfg *c = load_all();
    assert_int_equal(c->n_chains, N);
    for (size_t i = 0; i < N; i++) {
        const cfg_chain *ch = &c->chains[i];
        size_t size = chain_state_size(&ch->steps[0]);
        if (ch->stateful != kinds[i].stateful || (size > 0) != kinds[i].stateful)
            fail_msg("%s: config stateful %d, state size %zu", kinds[i].step, ch->stateful, size);
    }
    /* every kind builds through its ops */
    wt_sink sink = {0};
    stats_slot slot = {0};
    ctx_env env;
    loader *ld;
    chain_set *cs;
    wt_env(&env, c, &sink, &slot);
    assert_int_equal(loader_create(&env, &ld), 0);
    assert_int_equal(chain_set_create(&env, ld, &cs), 0);
    chain_set_destroy(cs);
    loader_destroy(ld);
    cfg_destroy(c);
}

static uint64_t hash_of(const char *step)
{
    const char *e = wt_cb("echo");
    cfg *c = wt_cfg(HEAD "  k0: [%s]\n", e, e, step);
    assert_non_null(c);
    uint64_t h = cfg_step_hash(HASH_FNV1A_BASIS, &c->chains[0].steps[0]);
    cfg_destroy(c);
    return h;
}

static void test_chain_kinds_state_identity(void **state)
{
    (void)state;
    uint64_t s = hash_of("{step: sampler, config: {duration: 1, callback: echo}}");
    assert_true(s == hash_of("{step: sampler, config: {duration: 1, callback: join}}"));
    assert_true(s != hash_of("{step: sampler, config: {duration: 2, callback: echo}}"));
    assert_true(s != hash_of("{step: sampler, config: {duration: 1, max_messages: 9}}"));
    assert_true(hash_of("{step: on_change}") != hash_of("{step: on_change, config: {field: a}}"));
    assert_true(hash_of("{step: on_change, config: {field: \"\"}}") !=
                hash_of("{step: on_change}"));
    /* a stateless step: only its kind counts (a new template keeps every window) */
    assert_true(hash_of("{step: format, config: {topic_prefix: a/}}") ==
                hash_of("{step: format, config: {topic_prefix: b/}}"));
    assert_true(hash_of("{step: format}") != hash_of("{step: relay}"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain_kinds_names_are_distinct),
        cmocka_unit_test(test_chain_kinds_config_and_worker_agree),
        cmocka_unit_test(test_chain_kinds_state_identity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
