/* bench_pystep: what a Python callback step costs per message against the same step in C,
 * measured inside one process (no broker, no rings: the worker's chain_run with a recording
 * publish), so the difference is the Python step alone and the machine's noise mostly cancels.
 *
 *   bench_pystep [MESSAGES=200000] [ROUNDS=5]      (run from the repository root)
 *
 * The callbacks are the forwarding pair of the pipeline bench: tests/callbacks/forward.c and
 * tests/bench/python/forward.py (in/<rest> -> out/<rest>, 64-byte payload). Rounds alternate
 * C and Python; the best round of each is reported, then the difference in us per message.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "clock.h"
#include "pyshim.h"
#include "workers/chain.h"
#include "workers/loader.h"

static unsigned long long published;

static int count_append(void *arg, const rec_hdr *h, const char *topic, const void *payload,
                        size_t len)
{
    (void)arg;
    (void)h;
    (void)payload;
    (void)len;
    published += topic[0] == 'o'; /* out/...: the forwarded topic */
    return 0;
}

static double run(chain_set *cs, int rule, long n)
{
    static const char payload[65] =
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd";
    ctx_origin o = {.client = 0, .qos = 0, .seq = 1, .received_ns = 1};
    mf_msg m = {.topic = "in/r1", .payload = payload, .payload_len = 64, .client_id = "c1"};
    uint64_t t0 = clock_mono_ns();
    for (long i = 0; i < n; i++)
        if (chain_run(cs, rule, &o, &m) != 0) {
            fprintf(stderr, "bench_pystep: rule %d failed\n", rule);
            exit(1);
        }
    return (double)(clock_mono_ns() - t0) / (double)n;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 200000;
    int rounds = argc > 2 ? atoi(argv[2]) : 5;
    const char *build = getenv("BUILD") && *getenv("BUILD") ? getenv("BUILD") : "build";
    char rel[PATH_MAX], so[PATH_MAX], py[PATH_MAX], shim[PATH_MAX], yaml[4 * PATH_MAX];

    snprintf(rel, sizeof(rel), "%s/bin/%s", build, PYSHIM_FILE);
    if (!realpath(rel, shim)) {
        fprintf(stderr, "bench_pystep: %s not built\n", rel);
        return 1;
    }
    setenv("MQTTFLOW_PYTHON_SHIM", shim, 1);
    snprintf(rel, sizeof(rel), "%s/tests/callbacks/forward.so", build);
    if (!realpath(rel, so) || !realpath("tests/bench/python/forward.py", py)) {
        fprintf(stderr, "bench_pystep: %s or tests/bench/python/forward.py missing\n", rel);
        return 1;
    }
    int len = snprintf(yaml, sizeof(yaml),
                       "mqtt_clients:\n"
                       "  - {client_id: c1, broker_url: mqtt://127.0.0.1, topics: [{name: "
                       "\"in/#\", qos: 0}]}\n"
                       "callbacks:\n"
                       "  c_fwd: {module: \"%s\", function: forward}\n"
                       "  py_fwd: {module: \"%s\", function: forward}\n"
                       "rules:\n"
                       "  - {rule: c, topic: \"in/#\", callback: c_fwd}\n"
                       "  - {rule: py, topic: \"in/#\", callback: py_fwd}\n",
                       so, py);
    cfg *c = NULL;
    cfg_diag d = {0};
    int rc = cfg_load_buffer("bench.yaml", ".", yaml, (size_t)len, 0, &c, &d);
    for (size_t i = 0; i < d.n_errors; i++)
        fprintf(stderr, "%s\n", d.errors[i]);
    cfg_diag_fini(&d);
    if (rc < 0)
        return 1;
    stats_slot slot;
    memset(&slot, 0, sizeof(slot));
    ctx_env env = {.c = c, .append = count_append, .slot = &slot};
    loader *ld = NULL;
    chain_set *cs = NULL;
    if (loader_create(&env, &ld) < 0 || chain_set_create(&env, ld, &cs) < 0) {
        fprintf(stderr, "bench_pystep: cannot load the callbacks\n");
        return 1;
    }
    run(cs, 0, n / 10 + 1); /* warm-up: first calls, caches, the interpreter's allocator */
    run(cs, 1, n / 10 + 1);
    double best_c = 1e30, best_py = 1e30;
    for (int r = 0; r < rounds; r++) {
        double tc = run(cs, 0, n), tp = run(cs, 1, n);
        best_c = tc < best_c ? tc : best_c;
        best_py = tp < best_py ? tp : best_py;
    }
    printf("| step | ns/msg (best of %d x %ld) |\n|---|---|\n", rounds, n);
    printf("| C forward (forward.so) | %.0f |\n", best_c);
    printf("| Python forward (forward.py) | %.0f |\n", best_py);
    printf("\nPython step - C step: %.2f us/msg (goal <= 5); forwarded %llu\n",
           (best_py - best_c) / 1000.0, published);
    chain_set_destroy(cs);
    loader_destroy(ld);
    cfg_destroy(c);
    return 0;
}
