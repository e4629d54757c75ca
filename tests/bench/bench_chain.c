/* bench_chain: ns per message through a worker's chain set (workers/chain.c driving the steps
 * through the table of kinds), in process, outputs to a counting sink: what a step kind costs
 * beyond the ring and the callback.
 *
 *   bench_chain [MESSAGES]     (default 300000 per chain)
 *
 * Prints one line per chain: its steps, ns/message, messages out. Payloads {"v": i, "id": i % 64}
 * (on_change sees a change every time, dedup a repeat 63 times in 64).
 */
#include <stdio.h>
#include <stdlib.h>

#include "clock.h"
#include "tests/workers/wtest.h"
#include "workers/chain.h"
#include "workers/loader.h"

static const char *yaml = "mqtt_clients:\n"
                          "  - client_id: c1\n"
                          "    broker_url: mqtt://127.0.0.1\n"
                          "    topics: [{name: \"in/#\"}]\n"
                          "rules:\n"
                          "  - {rule: r0, source_client_id: c1, topic: \"in/#\", action: plain}\n"
                          "  - {rule: r1, source_client_id: c1, topic: \"in/#\", action: state}\n"
                          "processing_chains:\n"
                          "  plain:\n"
                          "    - {step: filter, config: {condition: \"payload.v >= 0\"}}\n"
                          "    - {step: format, config: {topic_prefix: \"out/\"}}\n"
                          "    - {step: relay}\n"
                          "  state:\n"
                          "    - {step: on_change, config: {field: v}}\n"
                          "    - {step: throttle, config: {rate: 1000000000}}\n"
                          "    - {step: dedup, config: {window: 1h, key: payload.id}}\n"
                          "    - {step: relay}\n";

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 300000;
    static const char *names[] = {"filter -> format -> relay",
                                  "on_change -> throttle -> dedup -> relay"};
    cfg *c = wt_cfg("%s", yaml);
    static wt_sink sink;
    static stats_slot slot;
    ctx_env env;
    loader *ld;
    chain_set *cs;
    if (!c)
        return 1;
    wt_env(&env, c, &sink, &slot);
    if (loader_create(&env, &ld) < 0 || chain_set_create(&env, ld, &cs) < 0)
        return 1;
    for (int rule = 0; rule < 2; rule++) {
        char p[64];
        ctx_origin o = {.client = 0, .qos = 1};
        size_t out = sink.total;
        uint64_t t0 = clock_mono_ns();
        for (long i = 0; i < n; i++) {
            int len = snprintf(p, sizeof(p), "{\"v\": %ld, \"id\": %ld}", i, i % 64);
            mf_msg m = {.topic = "in/a/b",
                        .payload = p,
                        .payload_len = (size_t)len,
                        .qos = 1,
                        .client_id = "c1"};
            chain_run(cs, rule, &o, &m);
        }
        double ns = (double)(clock_mono_ns() - t0) / (double)n;
        printf("%-42s %8.1f ns/message  %zu out\n", names[rule], ns, sink.total - out);
    }
    chain_set_destroy(cs);
    loader_destroy(ld);
    cfg_destroy(c);
    return 0;
}
