/* workers/chain and step_*: format templates, relay output records, sampler windows closing on
 * time with the right messages, custom_processor, filter, callback errors, emit limits. Each
 * test builds a real config and loads the real test callback modules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "clock.h"
#include "wtest.h"
#include "workers/chain.h"

typedef wt_chains fx;

#define HEAD                                                                                       \
    WT_TWO_CLIENTS                                                                                 \
    "callbacks:\n"                                                                                 \
    "  echo: {module: \"%s\", function: echo}\n"                                                   \
    "  join: {module: \"%s\", function: join}\n"                                                   \
    "  fail: {module: \"%s\", function: fail}\n"                                                   \
    "  many: {module: \"%s\", function: emit_many}\n"                                              \
    "rules:\n"                                                                                     \
    "  - {rule: r0, source_client_id: c1, topic: \"in/#\", action: ch}\n"                          \
    "processing_chains:\n"                                                                         \
    "  ch:\n"

/* Builds a fixture for a chain given as YAML steps (indented by 4). */
static fx *make(const char *steps)
{
    const char *e = wt_cb("echo");
    fx *f = wt_chains_of(wt_cfg(HEAD "%s", e, e, e, e, steps));
    if (!f)
        fail_msg("the chain does not load (stderr says which step failed):\n%s", steps);
    return f;
}

static void destroy(fx *f)
{
    wt_chains_destroy(f);
}

static int feed(fx *f, const char *topic, const char *payload, int qos, int retain)
{
    ctx_origin o = {.client = 0, .qos = qos, .retain = retain, .seq = 5, .received_ns = 9};
    mf_msg m = {.topic = topic,
                .payload = payload,
                .payload_len = strlen(payload),
                .qos = qos,
                .retain = retain,
                .client_id = "c1",
                .received_ns = 9};
    return chain_run(f->cs, 0, &o, &m);
}

static void test_steps_format_templates(void **state)
{
    (void)state;
    fx *f = make("    - step: format\n"
                 "      config:\n"
                 "        topic_prefix: \"pre/\"\n"
                 "        topic_template: \"{topic[1]}/{client_id}/{topic}\"\n"
                 "        topic_suffix: \"/suf\"\n"
                 "        payload_template: >-\n"
                 "          {\"t\":{payload.temp},\"room\":\"{payload.where.room}\",\"first\":"
                 "{payload.list[0]},\"lvl0\":\"{topic[0]}\",\"none\":\"{payload.nope}{topic[9]}\","
                 "\"obj\":{payload.where},\"keep\":\"{unknown}\"}\n");
    assert_int_equal(feed(f, "in/kitchen",
                          "{\"temp\": 21.5, \"where\": {\"room\": \"k1\"}, \"list\": [3, 4]}", 1,
                          0),
                     0);
    assert_int_equal(f->sink.n, 1);
    const wt_rec *r = &f->sink.recs[0];
    assert_string_equal(r->topic, "pre/kitchen/c1/in/kitchen/suf");
    assert_string_equal(r->payload, "{\"t\":21.5,\"room\":\"k1\",\"first\":3,\"lvl0\":\"in\","
                                    "\"none\":\"\",\"obj\":{\"room\":\"k1\"},"
                                    "\"keep\":\"{unknown}\"}");
    assert_int_equal(r->h.client, 0); /* end of chain: the source client */
    assert_int_equal(r->h.qos, 1);
    destroy(f);
}

static void test_steps_format_whole_payload_and_bad_topic(void **state)
{
    (void)state;
    fx *f = make(
        "    - step: format\n"
        "      config: {topic_template: \"x/{payload}\", payload_template: \"<{payload}>\"}\n");
    assert_int_equal(feed(f, "in/a", "abc", 0, 0), 0);
    assert_int_equal(f->sink.n, 1);
    assert_string_equal(f->sink.recs[0].topic, "x/abc");
    assert_string_equal(f->sink.recs[0].payload, "<abc>");
    /* a payload that makes the topic a filter, or puts a newline in it: not published,
     * counted, and chain_run says so (the worker dead-letters the message, issue 8) */
    assert_int_equal(feed(f, "in/a", "+", 0, 0), CHAIN_ERR_INVALID_TOPIC);
    assert_int_equal(feed(f, "in/a", "a\nb", 0, 0), CHAIN_ERR_INVALID_TOPIC);
    assert_int_equal(f->sink.n, 1);
    assert_int_equal(f->slot.errors, 2);
    destroy(f);
}

static void test_steps_relay_output_record_fields(void **state)
{
    (void)state;
    fx *f = make("    - step: format\n"
                 "      config: {topic_prefix: \"f/\"}\n"
                 "    - step: relay\n"
                 "      config: {target_client_id: c2, target_topic: \"out/t\", qos: 0, "
                 "retain: true}\n"
                 "    - step: format\n"
                 "      config: {topic_prefix: \"never/\"}\n");
    assert_int_equal(feed(f, "in/a", "p", 1, 0), 0);
    assert_int_equal(f->sink.n, 1); /* the relay ends the message's way */
    const wt_rec *r = &f->sink.recs[0];
    assert_int_equal(r->h.kind, REC_PUBLISH);
    assert_int_equal(r->h.client, 1);
    assert_int_equal(r->h.src_client, 0);
    assert_int_equal(r->h.rule, 0);
    assert_int_equal(r->h.step, 1);
    assert_int_equal(r->h.qos, 0);
    assert_int_equal(r->h.retain, 1);
    assert_int_equal(r->h.seq, 5);
    assert_string_equal(r->topic, "out/t");
    assert_string_equal(r->payload, "p");
    destroy(f);
}

static void test_steps_relay_inherits_topic_qos_retain(void **state)
{
    (void)state;
    fx *f = make("    - step: relay\n"
                 "      config: {target_client_id: c2}\n");
    assert_int_equal(feed(f, "in/b", "q", 1, 1), 0);
    assert_int_equal(f->sink.n, 1);
    const wt_rec *r = &f->sink.recs[0];
    assert_int_equal(r->h.client, 1);
    assert_int_equal(r->h.qos, 1);
    assert_int_equal(r->h.retain, 1);
    assert_string_equal(r->topic, "in/b");
    destroy(f);
}

static void test_steps_sampler_closes_on_time_with_its_messages(void **state)
{
    (void)state;
    fx *f = make("    - step: sampler\n"
                 "      config: {duration: 0.3, callback: join, topic: \"win\"}\n"
                 "    - step: relay\n"
                 "      config: {target_client_id: c2}\n");
    assert_int_equal(chain_next_deadline(f->cs), UINT64_MAX); /* nothing held: no wake-up */
    uint64_t t0 = clock_mono_ns();
    assert_int_equal(feed(f, "in/a", "a", 0, 0), 0);
    assert_int_equal(feed(f, "in/a", "b", 1, 0), 0);
    assert_int_equal(feed(f, "in/a", "c", 0, 1), 0);
    assert_int_equal(f->sink.n, 0);
    uint64_t d = chain_next_deadline(f->cs);
    assert_true(d >= t0 + 300000000ull && d <= clock_mono_ns() + 300000000ull);

    /* no further message: ticks alone close it, not before the deadline */
    uint64_t limit = clock_mono_ns() + 5000000000ull, closed_at = 0;
    while (f->sink.n == 0 && clock_mono_ns() < limit) {
        uint64_t now = clock_mono_ns();
        chain_tick(f->cs, now);
        if (f->sink.n) {
            closed_at = now;
            break;
        }
        usleep(2000); /* a stand-in for the worker loop's timed wait, not for an event */
    }
    assert_int_equal(f->sink.n, 1);
    assert_true(closed_at >= t0 + 300000000ull);
    const wt_rec *r = &f->sink.recs[0];
    assert_string_equal(r->topic, "win");
    assert_string_equal(r->payload, "3:a,b,c");
    assert_int_equal(r->h.client, 1);
    assert_int_equal(r->h.qos, 1);    /* highest of the window */
    assert_int_equal(r->h.retain, 0); /* a summary is never retained */
    assert_int_equal(r->h.step, 1);

    /* closed and empty: no deadline, no empty call */
    assert_int_equal(chain_next_deadline(f->cs), UINT64_MAX);
    chain_tick(f->cs, UINT64_MAX - 1);
    assert_int_equal(f->sink.n, 1);

    /* the next window holds only the messages after the close */
    assert_int_equal(feed(f, "in/a", "d", 0, 0), 0);
    chain_close_all(f->cs);
    assert_int_equal(f->sink.n, 2);
    assert_string_equal(f->sink.recs[1].payload, "1:d");
    destroy(f);
}

static void test_steps_sampler_caps_window_and_counts_drops(void **state)
{
    (void)state;
    fx *f = make("    - step: sampler\n"
                 "      config: {duration: 60, max_messages: 2, callback: join}\n");
    for (int i = 0; i < 5; i++)
        assert_int_equal(feed(f, "in/a", i % 2 ? "y" : "x", 0, 0), 0);
    assert_int_equal(f->slot.dropped, 3);
    chain_close_all(f->cs);
    assert_int_equal(f->sink.n, 1);
    assert_string_equal(f->sink.recs[0].payload, "2:x,y");
    assert_string_equal(f->sink.recs[0].topic, "joined"); /* end of chain: source client */
    assert_int_equal(f->sink.recs[0].h.client, 0);
    destroy(f);
}

static void test_steps_custom_processor_emits_to_next_step(void **state)
{
    (void)state;
    fx *f = make("    - step: custom_processor\n"
                 "      config: {callback: echo, prefix: \"p/\"}\n"
                 "    - step: format\n"
                 "      config: {topic_suffix: \"/s\"}\n");
    assert_int_equal(feed(f, "in/x", "v", 1, 0), 0);
    assert_int_equal(f->sink.n, 1);
    assert_string_equal(f->sink.recs[0].topic, "p/in/x/s");
    assert_string_equal(f->sink.recs[0].payload, "v");
    assert_int_equal(f->sink.recs[0].h.qos, 1);
    destroy(f);
}

static void test_steps_filter_passes_only_matching(void **state)
{
    (void)state;
    fx *f = make("    - step: filter\n"
                 "      config: {condition: \"payload.temp > 30 && topic[1] == 'kitchen'\"}\n");
    assert_int_equal(feed(f, "in/kitchen", "{\"temp\": 31}", 0, 0), 0);
    assert_int_equal(feed(f, "in/kitchen", "{\"temp\": 29}", 0, 0), 0);
    assert_int_equal(feed(f, "in/garage", "{\"temp\": 35}", 0, 0), 0);
    assert_int_equal(feed(f, "in/kitchen", "not json", 0, 0), 0);
    assert_int_equal(f->sink.n, 1);
    assert_string_equal(f->sink.recs[0].payload, "{\"temp\": 31}");
    destroy(f);
}

static void test_steps_callback_error_is_returned_and_counted(void **state)
{
    (void)state;
    fx *f = make("    - step: custom_processor\n"
                 "      config: {callback: fail, rc: 9}\n");
    assert_int_equal(feed(f, "in/x", "v", 0, 0), 9);
    assert_int_equal(f->slot.errors, 1);
    assert_int_equal(f->sink.n, 0);
    destroy(f);
}

static void test_steps_emit_limit_applies_in_chains(void **state)
{
    (void)state;
    fx *f = make("    - step: custom_processor\n"
                 "      config: {callback: many, client: c2}\n");
    /* CTX_MAX_EMITS emits went on, the next was refused, and so is the callback's final
     * mf_publish, whose -ENOSPC it returns */
    assert_int_equal(feed(f, "in/x", "v", 0, 0), -ENOSPC);
    assert_int_equal(f->sink.total, CTX_MAX_EMITS);
    assert_int_equal(f->slot.errors, 1);
    destroy(f);
}

static void test_steps_batch_by_count_as_json_array(void **state)
{
    (void)state;
    fx *f = make("    - step: batch\n"
                 "      config: {count: 3}\n");
    assert_int_equal(feed(f, "in/a", "{\"v\": 1}", 0, 0), 0);
    assert_int_equal(feed(f, "in/a", "2", 1, 0), 0);
    assert_int_equal(f->sink.n, 0);
    assert_int_equal(chain_next_deadline(f->cs), UINT64_MAX); /* count only: no timer */
    assert_int_equal(feed(f, "in/b", "plain \"text\"", 0, 0), 0);
    assert_int_equal(f->sink.n, 1);
    assert_string_equal(f->sink.recs[0].payload, "[{\"v\":1},2,\"plain \\\"text\\\"\"]");
    assert_string_equal(f->sink.recs[0].topic, "in/b");
    assert_int_equal(f->sink.recs[0].h.qos, 1);
    /* a partial batch is flushed at stop */
    assert_int_equal(feed(f, "in/c", "4", 0, 0), 0);
    chain_close_all(f->cs);
    assert_int_equal(f->sink.n, 2);
    assert_string_equal(f->sink.recs[1].payload, "[4]");
    destroy(f);
}

static void test_steps_batch_by_interval_closes_on_time(void **state)
{
    (void)state;
    fx *f = make("    - step: batch\n"
                 "      config: {interval: 0.05}\n");
    assert_int_equal(feed(f, "in/a", "1", 0, 0), 0);
    assert_int_equal(feed(f, "in/a", "2", 0, 0), 0);
    uint64_t d = chain_next_deadline(f->cs);
    assert_true(d != UINT64_MAX);
    chain_tick(f->cs, d - 1);
    assert_int_equal(f->sink.n, 0);
    chain_tick(f->cs, d);
    assert_int_equal(f->sink.n, 1);
    assert_string_equal(f->sink.recs[0].payload, "[1,2]");
    destroy(f);
}

static void test_steps_throttle_drops_over_rate(void **state)
{
    (void)state;
    fx *f = make("    - step: throttle\n"
                 "      config: {rate: 3}\n");
    for (int i = 0; i < 20; i++)
        assert_int_equal(feed(f, "in/a", "x", 0, 0), 0);
    /* a burst of 3 passes at once (plus at most one token refilled meanwhile) */
    assert_true(f->sink.n >= 3 && f->sink.n <= 4);
    assert_int_equal(f->slot.dropped, 20 - f->sink.n);
    destroy(f);
}

static void test_steps_on_change_drops_repeats_per_topic(void **state)
{
    (void)state;
    fx *f = make("    - step: on_change\n"
                 "      config: {field: temp}\n");
    const char *seq[][2] = {
        {"in/k", "{\"temp\": 20, \"n\": 1}"}, {"in/k", "{\"temp\": 20, \"n\": 2}"},
        {"in/g", "{\"temp\": 20}"},           {"in/k", "{\"temp\": 21}"},
        {"in/k", "{\"temp\": 21.0}"},         {"in/k", "{\"temp\": 20}"},
        {"in/k", "{\"other\": 1}"},           {"in/k", "{\"other\": 2}"},
    };
    for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++)
        assert_int_equal(feed(f, seq[i][0], seq[i][1], 0, 0), 0);
    /* passes: k 20(n1), g 20, k 21, k 20, k missing; 21.0 is a repeat of 21 only if JSON
     * says so: jansson keeps 21 (integer) and 21.0 (real) apart, so it passes too */
    assert_int_equal(f->sink.n, 6);
    assert_string_equal(f->sink.recs[0].payload, "{\"temp\": 20, \"n\": 1}");
    assert_string_equal(f->sink.recs[1].topic, "in/g");
    assert_string_equal(f->sink.recs[5].payload, "{\"other\": 1}");
    destroy(f);
}

static void test_steps_aggregate_avg_over_interval(void **state)
{
    (void)state;
    fx *f = make("    - step: aggregate\n"
                 "      config: {field: temp, fn: avg, interval: 60}\n"
                 "    - step: relay\n"
                 "      config: {target_client_id: c2, target_topic: \"agg\"}\n");
    assert_int_equal(feed(f, "in/a", "{\"temp\": 10}", 0, 0), 0);
    assert_int_equal(feed(f, "in/a", "{\"temp\": \"hot\"}", 0, 0), 0); /* not a number */
    assert_int_equal(feed(f, "in/a", "{\"temp\": 20}", 1, 0), 0);
    assert_int_equal(feed(f, "in/a", "{\"temp\": 30}", 0, 0), 0);
    assert_true(chain_next_deadline(f->cs) != UINT64_MAX);
    assert_int_equal(f->sink.n, 0);
    chain_close_all(f->cs);
    assert_int_equal(f->sink.n, 1);
    assert_string_equal(f->sink.recs[0].payload,
                        "{\"fn\":\"avg\",\"field\":\"temp\",\"value\":20,\"count\":3}");
    assert_int_equal(f->sink.recs[0].h.client, 1);
    assert_int_equal(f->sink.recs[0].h.qos, 1);
    assert_int_equal(chain_next_deadline(f->cs), UINT64_MAX);
    destroy(f);
}

static void test_steps_sampler_without_callback_passes_the_last_message(void **state)
{
    (void)state;
    fx *f = make("    - step: sampler\n"
                 "      config: {duration: 60}\n");
    assert_int_equal(feed(f, "in/a", "1", 0, 0), 0);
    assert_int_equal(feed(f, "in/b", "2", 1, 0), 0);
    assert_int_equal(feed(f, "in/c", "3", 0, 0), 0);
    chain_close_all(f->cs);
    assert_int_equal(f->sink.n, 1);
    assert_string_equal(f->sink.recs[0].topic, "in/c");
    assert_string_equal(f->sink.recs[0].payload, "3");
    assert_int_equal(f->sink.recs[0].h.qos, 1); /* the window's highest */
    destroy(f);
}

/* A fresh throttle passes its first message: with one per 600 s exactly one of a burst. */
static void test_steps_throttle_fresh_passes_the_first(void **state)
{
    (void)state;
    fx *f = make("    - step: throttle\n"
                 "      config: {interval: 600}\n");
    for (int i = 0; i < 5; i++)
        assert_int_equal(feed(f, "in/a", "x", 0, 0), 0);
    assert_int_equal(f->sink.n, 1);
    assert_string_equal(f->sink.recs[0].topic, "in/a");
    assert_int_equal(f->slot.dropped, 4);
    destroy(f);
}

/* Drains a throttle of rate 20 (40 messages: its burst of 20 passes), stays idle for at least
 * idle_ns, then feeds 40 more; returns how many of those passed and the idle spell as
 * measured (from the last feed of the drain to the last of the 40). The step reads the
 * monotonic clock itself, so the spell is real time. */
static size_t throttle_after_idle(fx *f, uint64_t idle_ns, double *spell)
{
    for (int i = 0; i < 40; i++)
        assert_int_equal(feed(f, "in/a", "x", 0, 0), 0);
    size_t drained = f->sink.n;
    assert_true(drained >= 20 && drained <= 22); /* 20, plus a token per 50 ms of feeding */
    uint64_t t0 = clock_mono_ns();
    while (clock_mono_ns() < t0 + idle_ns) {
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < 40; i++)
        assert_int_equal(feed(f, "in/a", "x", 0, 0), 0);
    *spell = (double)(clock_mono_ns() - t0) * 1e-9;
    assert_int_equal(f->slot.dropped, 80 - f->sink.n);
    return f->sink.n - drained;
}

/* The bucket is capped at its burst: an idle spell longer than burst/rate (1 s at any rate
 * of 1 or more) does not save up more than a burst. 1.25 s is the least that tells a capped
 * bucket (20) from an uncapped one (25) at rate 20 with room for a slow machine. */
static void test_steps_throttle_bucket_capped_at_burst(void **state)
{
    (void)state;
    fx *f = make("    - step: throttle\n"
                 "      config: {rate: 20}\n");
    double spell;
    size_t passed = throttle_after_idle(f, 1250000000ull, &spell);
    if (passed < 20 || passed > 22)
        fail_msg("%zu passed after %.3f s idle; a bucket capped at 20 passes 20 to 22", passed,
                 spell);
    destroy(f);
}

/* The bucket refills at its rate: after a short idle spell a drained bucket passes what the
 * spell is worth at 20 per second. The bound comes from the spell as measured (plus a token
 * left over from the drain and one for rounding), so a slow machine widens it, never fails it;
 * a refill too fast (a unit wrong) passes the whole burst of 20. */
static void test_steps_throttle_refills_at_its_rate(void **state)
{
    (void)state;
    fx *f = make("    - step: throttle\n"
                 "      config: {rate: 20}\n");
    double spell;
    size_t passed = throttle_after_idle(f, 100000000ull, &spell);
    size_t most = 2 + (size_t)(spell * 20); /* +1: the leftover, +1: rounding */
    if (passed < 1 || passed > most)
        fail_msg("%zu passed after %.3f s idle at 20/s (expected 1..%zu)", passed, spell, most);
    destroy(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_steps_format_templates),
        cmocka_unit_test(test_steps_format_whole_payload_and_bad_topic),
        cmocka_unit_test(test_steps_relay_output_record_fields),
        cmocka_unit_test(test_steps_relay_inherits_topic_qos_retain),
        cmocka_unit_test(test_steps_sampler_closes_on_time_with_its_messages),
        cmocka_unit_test(test_steps_sampler_caps_window_and_counts_drops),
        cmocka_unit_test(test_steps_sampler_without_callback_passes_the_last_message),
        cmocka_unit_test(test_steps_custom_processor_emits_to_next_step),
        cmocka_unit_test(test_steps_filter_passes_only_matching),
        cmocka_unit_test(test_steps_callback_error_is_returned_and_counted),
        cmocka_unit_test(test_steps_emit_limit_applies_in_chains),
        cmocka_unit_test(test_steps_batch_by_count_as_json_array),
        cmocka_unit_test(test_steps_batch_by_interval_closes_on_time),
        cmocka_unit_test(test_steps_throttle_drops_over_rate),
        cmocka_unit_test(test_steps_on_change_drops_repeats_per_topic),
        cmocka_unit_test(test_steps_aggregate_avg_over_interval),
        cmocka_unit_test(test_steps_throttle_fresh_passes_the_first),
        cmocka_unit_test(test_steps_throttle_bucket_capped_at_burst),
        cmocka_unit_test(test_steps_throttle_refills_at_its_rate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
