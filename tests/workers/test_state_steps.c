/* workers/step_aggregate, step_on_change, step_throttle, step_batch over the worker's state
 * segment: a chain set built by a child process that dies of SIGKILL leaves its state to the
 * next one (the test process), which carries on: sums and counts continue, known values stay
 * known, the bucket stays spent, a pending batch is completed; records the child applied
 * and the parent reads again (same input positions) are not counted twice. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <sys/wait.h>

#include "names.h"
#include "shm.h"
#include "workers/chain.h"
#include "workers/loader.h"
#include "workers/wstate.h"
#include "wtest.h"

enum { R_AGG = 0, R_OC = 1, R_THR = 2, R_BATCH = 3 };

static const char *yaml_fmt =
    "mqtt_clients:\n"
    "  - client_id: c1\n"
    "    broker_url: mqtt://127.0.0.1\n"
    "    topics: [{name: \"in/#\"}]\n"
    "rules:\n"
    "  - {rule: agg, source_client_id: c1, topic: \"in/#\", action: agg}\n"
    "  - {rule: oc, source_client_id: c1, topic: \"in/#\", action: oc}\n"
    "  - {rule: thr, source_client_id: c1, topic: \"in/#\", action: thr}\n"
    "  - {rule: bat, source_client_id: c1, topic: \"in/#\", action: bat}\n"
    "processing_chains:\n"
    "  agg: [{step: aggregate, config: {interval: %d, fn: sum, field: v}}]\n"
    "  oc: [{step: on_change, config: {field: v}}]\n"
    "  thr: [{step: throttle, config: {interval: 600}}]\n"
    "  bat: [{step: batch, config: {count: 3}}]\n"
    "runtime: {instance: \"%s\", workers: 1}\n";

typedef struct fx {
    char instance[32];
    char name[SHM_NAME_MAX];
    cfg *c;
    ctx_env env;
    wt_sink sink;
    stats_slot slot;
    loader *ld;
    wstate *ws;
    chain_set *cs;
} fx;

static int setup(void **state)
{
    static int counter;
    fx *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->instance, sizeof(f->instance), "ss%d-%d", (int)getpid(), counter++);
    names_worker_state(f->name, sizeof(f->name), f->instance, 0);
    f->c = wt_cfg(yaml_fmt, 600, f->instance);
    if (!f->c)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    chain_set_destroy(f->cs);
    wstate_close(f->ws);
    loader_destroy(f->ld);
    cfg_destroy(f->c);
    shm_unlink_name(f->name);
    free(f);
    return 0;
}

/* Opens the state segment and builds the chains over it (a worker's run_attach). */
static void build(fx *f)
{
    wt_env(&f->env, f->c, &f->sink, &f->slot);
    wstate_input in = {.pid = 1, .start = 2};
    assert_int_equal(wstate_open(f->c, 0, &in, &f->ws), 0);
    f->env.state = f->ws;
    assert_int_equal(loader_create(&f->env, &f->ld), 0);
    assert_int_equal(chain_set_create(&f->env, f->ld, &f->cs), 0);
}

static void feed(fx *f, int rule, const char *topic, const char *payload, uint64_t pos)
{
    ctx_origin o = {.client = 0, .qos = 1, .seq = pos, .received_ns = 9, .pos = pos};
    mf_msg m = {.topic = topic,
                .payload = payload,
                .payload_len = strlen(payload),
                .qos = 1,
                .client_id = "c1",
                .received_ns = 9};
    assert_int_equal(chain_run(f->cs, rule, &o, &m), 0);
}

/* The first worker: positions 1..3 of every rule, then SIGKILL. */
static void first_worker(fx *f)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        build(f);
        feed(f, R_AGG, "in/a", "{\"v\": 1}", 1);
        feed(f, R_AGG, "in/a", "{\"v\": 2}", 2);
        feed(f, R_OC, "in/a", "{\"v\": 7}", 3);
        feed(f, R_THR, "in/a", "t1", 4);
        feed(f, R_BATCH, "in/a", "1", 5);
        feed(f, R_BATCH, "in/a", "2", 6);
        raise(SIGKILL);
        _exit(1);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st));
}

static void test_state_steps_carry_on_after_a_crash(void **state)
{
    fx *f = *state;
    first_worker(f);
    build(f);
    assert_true(wstate_adopted(f->ws));
    /* the records the first worker applied come again (not released): no effect twice */
    feed(f, R_AGG, "in/a", "{\"v\": 1}", 1);
    feed(f, R_AGG, "in/a", "{\"v\": 2}", 2);
    feed(f, R_OC, "in/a", "{\"v\": 7}", 3);
    feed(f, R_BATCH, "in/a", "1", 5);
    feed(f, R_BATCH, "in/a", "2", 6);
    size_t before = f->sink.n;
    /* on_change: the first worker's output may have been lost, so its own record passes again
     * (at-least-once); a repeat from a new record is dropped, a change passes */
    assert_int_equal(before, 1);
    assert_string_equal(f->sink.recs[0].payload, "{\"v\": 7}");
    feed(f, R_OC, "in/a", "{\"v\": 7}", 10);
    assert_int_equal(f->sink.n, before);
    feed(f, R_OC, "in/a", "{\"v\": 8}", 11);
    assert_int_equal(f->sink.n, before + 1);
    /* throttle: one per 600 s, spent by the first worker */
    feed(f, R_THR, "in/a", "t2", 12);
    assert_int_equal(f->sink.n, before + 1);
    /* batch of 3: two from the first worker, one new */
    feed(f, R_BATCH, "in/a", "3", 13);
    assert_int_equal(f->sink.n, before + 2);
    assert_string_equal(f->sink.recs[before + 1].payload, "[1,2,3]");
    /* aggregate: 1 + 2 from the first worker, + 4 */
    feed(f, R_AGG, "in/a", "{\"v\": 4}", 14);
    chain_close_all(f->cs);
    assert_int_equal(f->sink.n, before + 3);
    assert_string_equal(f->sink.recs[before + 2].payload,
                        "{\"fn\":\"sum\",\"field\":\"v\",\"value\":7,\"count\":3}");
}

static void test_state_steps_changed_config_starts_fresh(void **state)
{
    fx *f = *state;
    first_worker(f);
    cfg_destroy(f->c);
    f->c = wt_cfg(yaml_fmt, 300, f->instance); /* another interval: the sums start over */
    assert_non_null(f->c);
    build(f);
    assert_false(wstate_adopted(f->ws));
    feed(f, R_AGG, "in/a", "{\"v\": 4}", 1);
    chain_close_all(f->cs);
    assert_int_equal(f->sink.n, 1);
    assert_string_equal(f->sink.recs[0].payload,
                        "{\"fn\":\"sum\",\"field\":\"v\",\"value\":4,\"count\":1}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_state_steps_carry_on_after_a_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_steps_changed_config_starts_fresh, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
