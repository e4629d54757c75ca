/* Process tests of the router: the real mqttflow-router binary between real rings.
 *
 * Each test plays supervisor, ingresses and workers: it writes a config in a temp folder,
 * creates the instance's rings and stats segment, starts the router with a ready pipe
 * (waiting for "ready", never sleeping), pushes records into the ingress rings, reads the
 * worker rings as their consumer, and checks what came out: counts, rule indices, order,
 * the stats counters, and the SIGTERM drain.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "clock.h"
#include "names.h"
#include "rec.h"
#include "ring.h"
#include "ring_layout.h"
#include "shm.h"
#include "stats.h"
#include "tests/tools/ringfault.h"

#define MAX_IN      4
#define MAX_W       4
#define DEADLINE_NS (20ull * 1000000000ull)

typedef struct got {
    size_t worker;
    rec_hdr h;
    char topic[64];
    char payload[64];
} got;

typedef struct env {
    char dir[64];
    char cfgpath[128];
    char inst[32];
    size_t n_in, n_w;
    ring *in_obs[MAX_IN], *out_obs[MAX_W]; /* the "supervisor" handles from ring_create */
    ring *in[MAX_IN];                      /* producer: the "ingresses" */
    ring *out[MAX_W];                      /* consumer: the "workers" */
    stats *st;
    pid_t pid;
    got *got;
    size_t n_got, cap_got;
} env;

static char router_bin[PATH_MAX + 32];

/* Outside a test (cmocka asserts are not usable yet): 0, or -1 with a message. */
static int find_router(void)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    char *slash;

    if (n <= 0)
        return -1;
    self[n] = '\0';
    /* $(BUILD)/tests/router/test_route -> $(BUILD)/bin/mqttflow-router */
    for (int i = 0; i < 3; i++) {
        slash = strrchr(self, '/');
        if (!slash)
            return -1;
        *slash = '\0';
    }
    snprintf(router_bin, sizeof(router_bin), "%s/bin/mqttflow-router", self);
    if (access(router_bin, X_OK) != 0) {
        fprintf(stderr, "router binary %s not built\n", router_bin);
        return -1;
    }
    return 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

/* Writes the config: client 0 "out" has no topics, clients 1..n_in ("c0".."c<n-1>") have, so
 * ingress i carries config client index i + 1. rules_yaml is the `rules:` list. */
static void write_config(env *e, const char *rules_yaml, size_t ring_size)
{
    char buf[8192], path[160];
    size_t off = 0;

    snprintf(path, sizeof(path), "%s/cb.so", e->dir);
    write_file(path, ""); /* the router loads the config without opening modules */
    off += (size_t)snprintf(buf + off, sizeof(buf) - off,
                            "mqtt_clients:\n"
                            "  - client_id: \"out\"\n"
                            "    broker_url: \"mqtt://127.0.0.1\"\n");
    for (size_t i = 0; i < e->n_in; i++)
        off += (size_t)snprintf(buf + off, sizeof(buf) - off,
                                "  - client_id: \"c%zu\"\n"
                                "    broker_url: \"mqtt://127.0.0.1\"\n"
                                "    topics:\n"
                                "      - name: \"#\"\n",
                                i);
    off += (size_t)snprintf(buf + off, sizeof(buf) - off,
                            "callbacks:\n"
                            "  cb:\n"
                            "    module: \"cb.so\"\n"
                            "    function: \"f\"\n"
                            "rules:\n%s"
                            "runtime:\n"
                            "  instance: \"%s\"\n"
                            "  workers: %zu\n"
                            "  ring_size: %zu\n"
                            "  max_payload: 1024\n"
                            "  dead_letter: {dir: \"%s/dead\"}\n"
                            "logging:\n"
                            "  default_level: WARNING\n",
                            rules_yaml, e->inst, e->n_w, ring_size, e->dir);
    assert_true(off < sizeof(buf));
    write_file(e->cfgpath, buf);
}

static void start_router(env *e)
{
    int pfd[2];
    char fdstr[16], buf[16];
    struct pollfd p;
    ssize_t n;

    assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
    e->pid = fork();
    assert_true(e->pid >= 0);
    if (e->pid == 0) {
        int fd = dup(pfd[1]); /* without O_CLOEXEC: the router inherits it */
        snprintf(fdstr, sizeof(fdstr), "%d", fd);
        setenv("MQTTFLOW_READY_FD", fdstr, 1);
        execl(router_bin, router_bin, e->cfgpath, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    p.fd = pfd[0];
    p.events = POLLIN;
    assert_int_equal(poll(&p, 1, 20000), 1);
    n = read(pfd[0], buf, sizeof(buf) - 1);
    close(pfd[0]);
    if (n != 6 || memcmp(buf, "ready\n", 6) != 0)
        fail_msg("router did not report ready (read %zd bytes)", n);
}

/* Writes the config and creates the segments, without starting the router. */
static void env_setup(env *e, const char *rules_yaml, size_t n_in, size_t n_w, size_t ring_size)
{
    char name[SHM_NAME_MAX];

    memset(e, 0, sizeof(*e));
    e->n_in = n_in;
    e->n_w = n_w;
    snprintf(e->inst, sizeof(e->inst), "rt%d", (int)getpid());
    snprintf(e->dir, sizeof(e->dir), "/tmp/mf-route-XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    snprintf(e->cfgpath, sizeof(e->cfgpath), "%s/config.yaml", e->dir);
    write_config(e, rules_yaml, ring_size);
    for (size_t i = 0; i < n_in; i++) {
        names_ingress_ring(name, sizeof(name), e->inst, i);
        assert_int_equal(ring_create(name, ring_size, ring_size / 4, &e->in_obs[i]), 0);
        assert_int_equal(ring_attach(name, RING_PRODUCER, &e->in[i]), 0);
    }
    for (size_t w = 0; w < n_w; w++) {
        names_worker_in(name, sizeof(name), e->inst, w);
        assert_int_equal(ring_create(name, ring_size, ring_size / 4, &e->out_obs[w]), 0);
        assert_int_equal(ring_attach(name, RING_CONSUMER, &e->out[w]), 0);
    }
    names_stats(name, sizeof(name), e->inst);
    assert_int_equal(stats_create(name, stats_slot_total(n_in, n_w), &e->st), 0);
}

static void env_start(env *e, const char *rules_yaml, size_t n_in, size_t n_w, size_t ring_size)
{
    env_setup(e, rules_yaml, n_in, n_w, ring_size);
    start_router(e);
}

static stats_slot *router_slot(env *e)
{
    return stats_slot_at(e->st, stats_slot_index(STATS_ROUTER, 0, e->n_in));
}

/* Reads every published record of every worker ring into e->got. Returns how many. */
static size_t drain(env *e)
{
    size_t n = 0;

    for (size_t w = 0; w < e->n_w; w++) {
        const void *buf;
        size_t len;
        while (ring_peek(e->out[w], &buf, &len) == 0) {
            rec_view v;
            got *g;
            assert_int_equal(rec_decode(buf, len, &v), 0);
            if (e->n_got == e->cap_got) {
                e->cap_got = e->cap_got ? e->cap_got * 2 : 1024;
                e->got = realloc(e->got, e->cap_got * sizeof(*e->got));
                assert_non_null(e->got);
            }
            g = &e->got[e->n_got++];
            memset(g, 0, sizeof(*g));
            g->worker = w;
            g->h = v.h;
            snprintf(g->topic, sizeof(g->topic), "%s", v.topic);
            snprintf(g->payload, sizeof(g->payload), "%.*s", (int)v.h.payload_len,
                     (const char *)v.payload);
            ring_advance(e->out[w]);
            n++;
        }
        ring_release(e->out[w]);
    }
    return n;
}

/* Drains until at least want records came out; fails after DEADLINE_NS. */
static void wait_got(env *e, size_t want)
{
    uint64_t end = clock_mono_ns() + DEADLINE_NS;

    while (e->n_got < want) {
        if (drain(e))
            continue;
        if (clock_mono_ns() > end)
            fail_msg("only %zu of %zu records came out of the router", e->n_got, want);
        ring_wait_any(e->out, e->n_w, NULL, 0, 50);
    }
}

/* Waits until a router counter reaches want (counters may trail the outputs by a turn). */
static void wait_counter(uint64_t *counter, uint64_t want, const char *what)
{
    uint64_t end = clock_mono_ns() + DEADLINE_NS;

    while (stats_get(counter) < want) {
        if (clock_mono_ns() > end)
            fail_msg("router counter %s is %llu, expected %llu", what,
                     (unsigned long long)stats_get(counter), (unsigned long long)want);
        poll(NULL, 0, 5); /* a counter in shared memory has no wake-up to wait on */
    }
}

/* Pushes one record into ingress ring i, draining the worker rings while it is full. */
static void push(env *e, size_t i, const char *topic, const char *payload, uint64_t seq)
{
    rec_hdr h = {0};
    size_t tl = strlen(topic), pl = strlen(payload), sz = rec_size(tl, pl);
    void *buf;
    uint64_t end = clock_mono_ns() + DEADLINE_NS;

    h.seq = seq;
    h.received_ns = clock_wall_ns();
    h.client = (uint16_t)(i + 1);
    h.rule = REC_NONE;
    h.step = REC_NONE;
    h.kind = REC_MSG;
    h.qos = 1;
    while (ring_reserve(e->in[i], sz, &buf) == -EAGAIN) {
        ring_flush(e->in[i]);
        if (!drain(e))
            ring_wait_space(e->in[i], sz, 5);
        if (clock_mono_ns() > end)
            fail_msg("ingress ring %zu stayed full", i);
    }
    assert_int_equal(rec_encode(buf, sz, &h, topic, tl, payload, pl), (long)sz);
    ring_commit(e->in[i], sz);
}

static void flush_in(env *e)
{
    for (size_t i = 0; i < e->n_in; i++)
        ring_flush(e->in[i]);
}

/* SIGTERM, keep reading while the router drains, and return its exit status. */
static int stop_router(env *e)
{
    uint64_t end = clock_mono_ns() + DEADLINE_NS;
    int status = 0;

    if (e->pid <= 0)
        return -1;
    kill(e->pid, SIGTERM);
    for (;;) {
        pid_t r = waitpid(e->pid, &status, WNOHANG);
        if (r == e->pid)
            break;
        if (clock_mono_ns() > end) {
            kill(e->pid, SIGKILL);
            waitpid(e->pid, &status, 0);
            e->pid = 0;
            fail_msg("router did not exit within the deadline after SIGTERM");
        }
        if (!drain(e))
            ring_wait_any(e->out, e->n_w, NULL, 0, 10);
    }
    e->pid = 0;
    drain(e);
    return status;
}

static void env_stop(env *e)
{
    char name[SHM_NAME_MAX], path[192];

    if (e->pid > 0) {
        kill(e->pid, SIGKILL);
        waitpid(e->pid, NULL, 0);
    }
    for (size_t i = 0; i < e->n_in; i++) {
        ring_detach(e->in[i]);
        ring_detach(e->in_obs[i]);
        names_ingress_ring(name, sizeof(name), e->inst, i);
        ring_unlink(name);
    }
    for (size_t w = 0; w < e->n_w; w++) {
        ring_detach(e->out[w]);
        ring_detach(e->out_obs[w]);
        names_worker_in(name, sizeof(name), e->inst, w);
        ring_unlink(name);
    }
    stats_detach(e->st);
    names_stats(name, sizeof(name), e->inst);
    shm_unlink_name(name);
    snprintf(path, sizeof(path), "%s/cb.so", e->dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/dead/dead-letters.jsonl", e->dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/dead", e->dir);
    if (rmdir(path) != 0)
        unlink(path); /* a test that planted a file there */
    unlink(e->cfgpath);
    rmdir(e->dir);
    free(e->got);
}

static int teardown(void **state)
{
    env *e = *state;
    env_stop(e);
    free(e);
    return 0;
}

static int setup(void **state)
{
    *state = calloc(1, sizeof(env));
    return *state ? 0 : -1;
}

/* ---- tests ---- */

static void test_route_rule_indices_copies_and_unmatched(void **state)
{
    env *e = *state;
    size_t per_rule[4] = {0}, par_workers[MAX_W] = {0};
    const size_t N = 1200;

    env_start(e,
              "  - rule: r0\n"
              "    source_client_id: c0\n"
              "    topic: \"a/#\"\n"
              "    callback: cb\n"
              "  - rule: r1\n"
              "    topic: \"a/b\"\n"
              "    callback: cb\n"
              "    execution_mode: parallel\n"
              "  - rule: r2\n"
              "    source_client_id: c1\n"
              "    topic: \"x/+\"\n"
              "    callback: cb\n"
              "    execution_mode: per_topic\n"
              "  - rule: r3\n"
              "    topic: \"a/b\"\n"
              "    condition: \"payload.v > 5\"\n"
              "    callback: cb\n",
              2, 3, 65536);
    /* per 4 messages: c0 a/b v<=5 -> r0,r1; c0 a/b v>5 -> r0,r1,r3; c1 x/y -> r2;
     * c1 zzz -> unmatched */
    for (size_t k = 0; k < N / 4; k++) {
        char p[64];
        snprintf(p, sizeof(p), "{\"v\": %d}", k % 2 ? 1 : 10);
        push(e, 0, "a/b", p, 2 * k);
        push(e, 0, "a/b", "{\"v\": 9}", 2 * k + 1);
        push(e, 1, "x/y", "{}", 2 * k);
        push(e, 1, "zzz", "{}", 2 * k + 1);
    }
    flush_in(e);
    /* expected copies: 300*2 + 300*3 (half of the first kind has v=10 too) ... computed: */
    size_t want = (N / 4) * 2 + (N / 4 / 2) * 1 + (N / 4) * 3 + (N / 4) * 1;
    wait_got(e, want);
    wait_counter(&router_slot(e)->extra[STATS_RT_UNMATCHED], N / 4, "extra[STATS_RT_UNMATCHED]");
    assert_int_equal(stats_get(&router_slot(e)->dropped), N / 4);
    wait_counter(&router_slot(e)->in, N, "in");
    wait_counter(&router_slot(e)->out, want, "out");
    assert_int_equal(stats_get(&router_slot(e)->errors), 0);
    for (size_t i = 0; i < e->n_got; i++) {
        const got *g = &e->got[i];
        assert_true(g->h.rule < 4);
        per_rule[g->h.rule]++;
        assert_int_equal(g->h.kind, REC_MSG);
        assert_int_equal(g->h.qos, 1);
        switch (g->h.rule) {
        case 0:
            assert_int_equal(g->h.client, 1);
            assert_string_equal(g->topic, "a/b");
            assert_int_equal(g->worker, 0); /* sequential: the 1st sequential rule */
            break;
        case 1:
            assert_string_equal(g->topic, "a/b");
            par_workers[g->worker]++;
            break;
        case 2:
            assert_int_equal(g->h.client, 2);
            assert_string_equal(g->topic, "x/y");
            assert_string_equal(g->payload, "{}");
            break;
        case 3:
            assert_true(strcmp(g->payload, "{\"v\": 10}") == 0 ||
                        strcmp(g->payload, "{\"v\": 9}") == 0);
            assert_int_equal(g->worker, 1); /* sequential: the 2nd sequential rule */
            break;
        }
    }
    assert_int_equal(per_rule[0], N / 2);
    assert_int_equal(per_rule[1], N / 2);
    assert_int_equal(per_rule[2], N / 4);
    assert_int_equal(per_rule[3], N / 4 + N / 8);
    /* parallel: spread by load; workers 0 and 1 also carry the sequential rules, so only
     * worker 2 is sure to take part (test_route_parallel_uses_every_worker covers the even
     * spread) */
    assert_true(par_workers[2] > 0);
    assert_int_equal(WEXITSTATUS(stop_router(e)), 0);
}

static void test_route_sequential_order_10000(void **state)
{
    env *e = *state;
    const size_t N = 10000;
    uint64_t next[2] = {0, 0};
    size_t w0 = SIZE_MAX;

    /* a small ring (64 KiB) so that 10,000 records go through many full-ring waits */
    env_start(e,
              "  - rule: seq\n"
              "    topic: \"s/#\"\n"
              "    callback: cb\n"
              "    execution_mode: sequential\n",
              2, 3, 65536);
    for (size_t k = 0; k < N; k++) {
        char topic[32], p[32];
        snprintf(topic, sizeof(topic), "s/%zu", k % 7);
        snprintf(p, sizeof(p), "%zu", k);
        push(e, k % 2, topic, p, k / 2);
    }
    flush_in(e);
    wait_got(e, N);
    assert_int_equal(e->n_got, N);
    for (size_t i = 0; i < e->n_got; i++) {
        const got *g = &e->got[i];
        size_t src = g->h.client - 1u;
        assert_int_equal(g->h.rule, 0);
        if (w0 == SIZE_MAX)
            w0 = g->worker;
        assert_int_equal(g->worker, w0); /* one worker runs the rule */
        assert_true(src < 2);
        assert_int_equal(g->h.seq, next[src]); /* arrival order per source, nothing lost */
        next[src]++;
    }
    assert_int_equal(next[0], N / 2);
    assert_int_equal(next[1], N / 2);
    assert_int_equal(WEXITSTATUS(stop_router(e)), 0);
}

static void test_route_per_topic_order(void **state)
{
    env *e = *state;
    const size_t N = 6000, T = 24;
    uint64_t next[24] = {0};
    size_t worker_of[24], used[MAX_W] = {0};

    env_start(e,
              "  - rule: pt\n"
              "    topic: \"pt/+\"\n"
              "    callback: cb\n"
              "    execution_mode: per_topic\n",
              1, 4, 65536);
    for (size_t t = 0; t < T; t++)
        worker_of[t] = SIZE_MAX;
    for (size_t k = 0; k < N; k++) {
        char topic[32];
        snprintf(topic, sizeof(topic), "pt/%zu", k % T);
        push(e, 0, topic, "x", k / T);
    }
    flush_in(e);
    wait_got(e, N);
    for (size_t i = 0; i < e->n_got; i++) {
        const got *g = &e->got[i];
        size_t t = (size_t)strtoul(g->topic + 3, NULL, 10);
        assert_true(t < T);
        if (worker_of[t] == SIZE_MAX) {
            worker_of[t] = g->worker;
            used[g->worker]++;
        }
        assert_int_equal(g->worker, worker_of[t]); /* a topic stays on its worker */
        assert_int_equal(g->h.seq, next[t]);       /* in order */
        next[t]++;
    }
    for (size_t t = 0; t < T; t++)
        assert_int_equal(next[t], N / T);
    /* 24 topics over 4 workers: more than one worker is used */
    size_t n_used = 0;
    for (size_t w = 0; w < e->n_w; w++)
        n_used += used[w] > 0;
    assert_true(n_used >= 2);
    assert_int_equal(WEXITSTATUS(stop_router(e)), 0);
}

static void test_route_parallel_uses_every_worker(void **state)
{
    env *e = *state;
    const size_t N = 3000;
    size_t per_worker[MAX_W] = {0};

    env_start(e,
              "  - rule: par\n"
              "    topic: \"p/#\"\n"
              "    callback: cb\n"
              "    execution_mode: threaded\n",
              1, 3, 65536);
    for (size_t k = 0; k < N; k++)
        push(e, 0, "p/q", "0123456789", k);
    flush_in(e);
    wait_got(e, N);
    assert_int_equal(e->n_got, N);
    for (size_t i = 0; i < e->n_got; i++)
        per_worker[e->got[i].worker]++;
    /* equally idle workers: the spread is close to even (each gets at least a sixth) */
    for (size_t w = 0; w < e->n_w; w++)
        if (per_worker[w] < N / 6)
            fail_msg("worker %zu got %zu of %zu records", w, per_worker[w], N);
    assert_int_equal(WEXITSTATUS(stop_router(e)), 0);
}

static void test_route_reads_ingress_rings_fairly(void **state)
{
    env *e = *state;
    const size_t N = 4000;
    size_t from[3] = {0, 0, 0}, longest = 0, run = 0;

    env_start(e,
              "  - rule: all\n"
              "    topic: \"#\"\n"
              "    callback: cb\n",
              3, 1, 1u << 20);
    /* all three rings are full of work before the router looks at any of them */
    assert_int_equal(kill(e->pid, SIGSTOP), 0);
    for (size_t i = 0; i < 3; i++)
        for (size_t k = 0; k < N; k++)
            push(e, i, "f/t", "fair", k);
    flush_in(e);
    assert_int_equal(kill(e->pid, SIGCONT), 0);
    wait_got(e, 3 * N);
    /* the one worker sees the router's processing order: no ring waits for another to be
     * empty, and no ring gets more than one batch in a row */
    for (size_t i = 0; i < e->n_got; i++) {
        size_t src = e->got[i].h.client - 1u;
        assert_true(src < 3);
        from[src]++;
        run = i > 0 && e->got[i - 1].h.client == e->got[i].h.client ? run + 1 : 1;
        if (run > longest)
            longest = run;
        if (i == 3 * 64 * 2) {
            assert_true(from[0] > 0);
            assert_true(from[1] > 0);
            assert_true(from[2] > 0);
        }
    }
    assert_true(longest <= 64);
    assert_int_equal(from[0], N);
    assert_int_equal(from[1], N);
    assert_int_equal(from[2], N);
    assert_int_equal(WEXITSTATUS(stop_router(e)), 0);
}

static void test_route_sigterm_drains_every_record(void **state)
{
    env *e = *state;
    const size_t N = 5000;
    int status;
    uint64_t next = 0;
    ring_stats rs;

    /* 1 MiB rings: every record fits in the ingress ring */
    env_start(e,
              "  - rule: all\n"
              "    topic: \"#\"\n"
              "    callback: cb\n",
              1, 2, 1u << 20);
    /* the router is stopped while the records go in, so all of them are still unrouted
     * when SIGTERM arrives (it is delivered on SIGCONT) */
    assert_int_equal(kill(e->pid, SIGSTOP), 0);
    for (size_t k = 0; k < N; k++)
        push(e, 0, "d/t", "payload-payload-payload", k);
    flush_in(e);
    ring_get_stats(e->in_obs[0], &rs);
    assert_int_equal(rs.records_in - rs.records_out, N);
    assert_int_equal(kill(e->pid, SIGTERM), 0);
    assert_int_equal(kill(e->pid, SIGCONT), 0);
    status = stop_router(e);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(e->n_got, N);
    for (size_t i = 0; i < e->n_got; i++)
        assert_int_equal(e->got[i].h.seq, next++);
    /* and the ingress ring was released to the end */
    ring_get_stats(e->in_obs[0], &rs);
    assert_true(rs.tail == rs.head);
}

static void test_route_bad_records_counted_and_skipped(void **state)
{
    env *e = *state;
    unsigned char junk[64];
    rec_hdr h = {0};

    env_start(e,
              "  - rule: all\n"
              "    topic: \"#\"\n"
              "    callback: cb\n",
              1, 1, 65536);
    /* garbage: lengths that disagree with the record size */
    memset(junk, 0xab, sizeof(junk));
    assert_int_equal(ring_push(e->in[0], junk, sizeof(junk)), 0);
    /* a well-formed record of the wrong kind */
    h.kind = REC_PUBLISH;
    h.rule = REC_NONE;
    h.step = REC_NONE;
    {
        unsigned char buf[128];
        long n = rec_encode(buf, sizeof(buf), &h, "t", 1, "p", 1);
        assert_true(n > 0);
        assert_int_equal(ring_push(e->in[0], buf, (size_t)n), 0);
    }
    push(e, 0, "ok/1", "fine", 7);
    flush_in(e);
    wait_got(e, 1);
    assert_string_equal(e->got[0].topic, "ok/1");
    assert_int_equal(e->got[0].h.seq, 7);
    wait_counter(&router_slot(e)->errors, 2, "errors");
    assert_int_equal(stats_get(&router_slot(e)->in), 1);
    assert_int_equal(WEXITSTATUS(stop_router(e)), 0);
}

/* Writes a record into ingress ring 0 whose ring header claims an impossible length. */
static void plant_corrupt(env *e)
{
    plant_corrupt_header(e->in[0], 0x5a);
    flush_in(e);
}

/* issue 8 item 4: a corrupt record header is a fault with a way out: the damaged region is
 * skipped and dead-lettered with its size, and what the ingress writes next is routed (the
 * ring was no longer read at all before, while status said running) */
static void test_route_corrupt_ring_region_quarantined(void **state)
{
    env *e = *state;
    env_start(e,
              "  - rule: all\n"
              "    topic: \"#\"\n"
              "    callback: cb\n",
              1, 1, 65536);
    plant_corrupt(e);
    wait_counter(&router_slot(e)->dead, 1, "dead");
    push(e, 0, "ok/after", "fine", 8);
    flush_in(e);
    wait_got(e, 1);
    assert_string_equal(e->got[0].topic, "ok/after");
    char path[160], line[4096] = "";
    snprintf(path, sizeof(path), "%s/dead/dead-letters.jsonl", e->dir);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    assert_non_null(fgets(line, sizeof(line), fp));
    fclose(fp);
    assert_non_null(strstr(line, "corrupt ring: "));
    unlink(path);
    snprintf(path, sizeof(path), "%s/dead", e->dir);
    rmdir(path);
    assert_int_equal(WEXITSTATUS(stop_router(e)), 0);
}

/* The dead-letter file's lines, concatenated (empty when there is none). */
static void read_dead(env *e, char *out, size_t cap)
{
    char path[160];
    snprintf(path, sizeof(path), "%s/dead/dead-letters.jsonl", e->dir);
    out[0] = '\0';
    FILE *fp = fopen(path, "r");
    if (!fp)
        return;
    size_t n = fread(out, 1, cap - 1, fp);
    out[n] = '\0';
    fclose(fp);
}

/* Waits for the one record routed (topic) and the one dead letter; the dead-letter file's
 * text into text. */
static void routed_then_dead(env *e, const char *topic, char *text, size_t cap)
{
    wait_got(e, 1);
    assert_string_equal(e->got[0].topic, topic);
    wait_counter(&router_slot(e)->dead, 1, "dead");
    read_dead(e, text, cap);
}

/* issue 8 item 3: a record that does not decode is a dead letter with the decode error, its
 * size and its bytes, and one that decodes but is of a kind an ingress ring does not carry is
 * one that says so (both were counted and logged only); what comes next is routed */
static void test_route_undecodable_record_is_dead_lettered(void **state)
{
    env *e = *state;
    unsigned char junk[64];
    env_start(e,
              "  - rule: all\n"
              "    topic: \"#\"\n"
              "    callback: cb\n",
              1, 1, 65536);
    memset(junk, 0xab, sizeof(junk)); /* lengths that disagree with the record's size */
    assert_int_equal(ring_push(e->in[0], junk, sizeof(junk)), 0);
    unsigned char rec[128];
    rec_hdr h = {.kind = REC_PUBLISH, .rule = REC_NONE, .step = REC_NONE};
    long n = rec_encode(rec, sizeof(rec), &h, "not/here", 8, "pub", 3);
    assert_true(n > 0);
    assert_int_equal(ring_push(e->in[0], rec, (size_t)n), 0);
    push(e, 0, "ok/after", "fine", 9);
    flush_in(e);
    char text[8192], want[128];
    wait_counter(&router_slot(e)->dead, 2, "dead");
    routed_then_dead(e, "ok/after", text, sizeof(text));
    snprintf(want, sizeof(want), "\"reason\":\"record of kind %d in an ingress ring: %ld bytes",
             REC_PUBLISH, n);
    assert_non_null(strstr(text, want));
    assert_non_null(strstr(text, "\"topic\":\"$mqttflow/misplaced-record\""));
    assert_non_null(strstr(text, "\"reason\":\"undecodable record: 64 bytes"));
    assert_non_null(strstr(text, "topic and payload lengths disagree with the record's size"));
    assert_non_null(strstr(text, "\"topic\":\"$mqttflow/undecodable-record\""));
    assert_non_null(strstr(text, "\"payload_b64\":\"q6urq6ur"));
    assert_non_null(strstr(text, "\"payload_len\":64"));
    assert_int_equal(WEXITSTATUS(stop_router(e)), 0);
}

/* issue 8 item 3: nothing is released before its dead letter is durable. While the store
 * cannot be written (its folder is a file here), the damaged region stays in the ingress
 * ring and holds what comes behind it (backpressure); once the store works it is written,
 * released and the ring read on. */
static void test_route_corrupt_region_kept_while_store_fails(void **state)
{
    env *e = *state;
    char path[160];
    env_start(e, "  - rule: all\n    topic: \"#\"\n    callback: cb\n", 1, 1, 65536);
    /* after the start (the config check refuses it) */
    snprintf(path, sizeof(path), "%s/dead", e->dir);
    write_file(path, "not a folder");
    /* a record before the damage, taken in the same turn: it is released, the region not */
    assert_int_equal(kill(e->pid, SIGSTOP), 0);
    push(e, 0, "ok/before", "fine", 9);
    flush_in(e);
    ring_stats rs;
    ring_get_stats(e->in_obs[0], &rs);
    uint64_t region_at = rs.head;
    plant_corrupt(e);
    assert_int_equal(kill(e->pid, SIGCONT), 0);
    /* the damage and a failed attempt to store it */
    wait_counter(&router_slot(e)->errors, 2, "errors");
    push(e, 0, "ok/behind", "held", 10);
    flush_in(e);
    /* two more attempts, so at least one retry after the push */
    wait_counter(&router_slot(e)->errors, 4, "errors");
    ring_get_stats(e->in_obs[0], &rs);
    assert_int_equal(rs.tail, region_at); /* nothing of the region released */
    drain(e);
    assert_int_equal(e->n_got, 1); /* the one before; nothing behind it */
    assert_string_equal(e->got[0].topic, "ok/before");
    e->n_got = 0;
    assert_int_equal(stats_get(&router_slot(e)->dead), 0);
    assert_int_equal(unlink(path), 0);
    char text[8192];
    routed_then_dead(e, "ok/behind", text, sizeof(text));
    assert_non_null(strstr(text, "corrupt ring: "));
    assert_int_equal(WEXITSTATUS(stop_router(e)), 0);
    ring_get_stats(e->in_obs[0], &rs);
    assert_true(rs.tail == rs.head);
}

static void test_route_poison_record_skipped_after_max_attempts(void **state)
{
    env *e = *state;
    char name[SHM_NAME_MAX];
    ring *c;
    const void *buf;
    size_t len;

    env_setup(e, "  - rule: all\n    topic: \"#\"\n    callback: cb\n", 1, 1, 65536);
    push(e, 0, "poison/1", "boom", 1);
    push(e, 0, "ok/2", "fine", 2);
    flush_in(e);
    /* three consumers died while routing the first record (max_attempts defaults to 3) */
    names_ingress_ring(name, sizeof(name), e->inst, 0);
    for (unsigned k = 1; k <= 3; k++) {
        assert_int_equal(ring_attach(name, RING_CONSUMER, &c), 0);
        assert_int_equal(ring_peek(c, &buf, &len), 0);
        assert_int_equal(ring_begin(c), k);
        ring_detach(c);
    }
    start_router(e);
    wait_got(e, 1);
    assert_int_equal(e->n_got, 1);
    assert_string_equal(e->got[0].topic, "ok/2");
    wait_counter(&router_slot(e)->dead, 1, "dead");
    assert_int_equal(WEXITSTATUS(stop_router(e)), 0);
    assert_int_equal(e->n_got, 1);
}

static void test_route_sigkill_and_restart_loses_nothing(void **state)
{
    env *e = *state;
    const size_t N = 20000;
    unsigned char *seen = calloc(N, 1);
    size_t unique = 0, dups = 0, scanned = 0;
    uint64_t end, last = 0;
    int status;

    assert_non_null(seen);
    env_start(e,
              "  - rule: seq\n"
              "    topic: \"k/#\"\n"
              "    callback: cb\n",
              1, 2, 65536);
    for (size_t k = 0; k < N; k++) {
        if (k == N / 3) {
            /* kill it mid-stream, while it holds unreleased ingress records and copies */
            flush_in(e);
            wait_got(e, 1);
            assert_int_equal(kill(e->pid, SIGKILL), 0);
            assert_int_equal(waitpid(e->pid, &status, 0), e->pid);
            e->pid = 0;
            start_router(e);
        }
        push(e, 0, "k/x", "kill-test-payload", k);
    }
    flush_in(e);
    end = clock_mono_ns() + DEADLINE_NS;
    while (unique < N) {
        if (!drain(e)) {
            if (clock_mono_ns() > end)
                break;
            ring_wait_any(e->out, e->n_w, NULL, 0, 50);
        }
        for (; scanned < e->n_got; scanned++) {
            uint64_t q = e->got[scanned].h.seq;
            assert_true(q < N);
            if (seen[q]) {
                dups++;
            } else {
                seen[q] = 1;
                unique++;
                /* a new record never comes before an older one (re-reads are duplicates) */
                assert_true(scanned == 0 || q >= last);
                last = q;
            }
        }
    }
    free(seen);
    if (unique != N)
        fail_msg("lost %zu of %zu records across a router SIGKILL", N - unique, N);
    /* at-least-once: duplicates only from the batch that was in flight at the kill */
    assert_true(dups <= 2 * 64);
    assert_int_equal(WEXITSTATUS(stop_router(e)), 0);
}

static void test_route_missing_ring_fails_without_ready(void **state)
{
    env *e = *state;
    char name[SHM_NAME_MAX];
    int status = 0;
    pid_t pid;
    uint64_t end;

    env_start(e, "  - rule: all\n    topic: \"#\"\n    callback: cb\n", 1, 1, 65536);
    assert_int_equal(WEXITSTATUS(stop_router(e)), 0);
    /* remove worker 0's ring: a new router must refuse to start (exit 1: respawn later) */
    names_worker_in(name, sizeof(name), e->inst, 0);
    assert_int_equal(ring_unlink(name), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 2);
        execl(router_bin, router_bin, e->cfgpath, (char *)NULL);
        _exit(127);
    }
    end = clock_mono_ns() + DEADLINE_NS;
    while (waitpid(pid, &status, WNOHANG) != pid) {
        if (clock_mono_ns() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fail_msg("router with a missing ring did not exit");
        }
        poll(NULL, 0, 10);
    }
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
}

int main(void)
{
    if (find_router() < 0)
        return 1;
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_route_rule_indices_copies_and_unmatched),
        T(test_route_sequential_order_10000),
        T(test_route_per_topic_order),
        T(test_route_parallel_uses_every_worker),
        T(test_route_reads_ingress_rings_fairly),
        T(test_route_sigterm_drains_every_record),
        T(test_route_bad_records_counted_and_skipped),
        T(test_route_corrupt_ring_region_quarantined),
        T(test_route_undecodable_record_is_dead_lettered),
        T(test_route_corrupt_region_kept_while_store_fails),
        T(test_route_poison_record_skipped_after_max_attempts),
        T(test_route_sigkill_and_restart_loses_nothing),
        T(test_route_missing_ring_fails_without_ready),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
