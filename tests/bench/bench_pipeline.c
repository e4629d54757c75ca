/* bench_pipeline: messages/s and CPU per message through the internal pipeline, no broker.
 *
 *   bench_pipeline [RECORDS [ROUNDS [WORKERS]]]     (defaults 2000000, 5, 1)
 *
 * The real mqttflow-router and mqttflow-worker processes run between rings this process
 * creates (the way the supervisor does: instance rings, stats segment): one thread of this
 * process plays the ingress (encodes REC_MSG records, common/rec.h, 64-byte payload, 64
 * topics, into the ingress ring), the main thread plays the relay (reads every worker's
 * output ring and counts the records, waiting the way the relay does: ring_wait_paced). The worker
 * runs a C callback that forwards each message (tests/callbacks echo.so, prefix "out/"): a chain of
 * one custom_processor step, one rule in/# in per_topic mode.
 *
 * Each round pushes RECORDS records and ends when the last copy was counted; per round:
 * msgs/s from the first push to the last count, and CPU (utime + stime from /proc/PID/stat)
 * of the router and the worker(s) per message, plus this process's (the feeder and the
 * counter together, getrusage). Prints one row per round and the median. On 2 vCPUs the four
 * parties share two cores, so the figure is what the pipeline gets from half a machine each.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "names.h"
#include "rec.h"
#include "ring.h"
#include "shm.h"
#include "stats.h"
#include "tests/bench/benchlib.h"
#include "tests/tools/testlib.h"

#define RING_SIZE  (4u << 20)
#define MAX_REC    (RING_SIZE / 4)
#define N_TOPICS   64
#define MAX_W      8
#define MAX_ROUNDS 64

static char dir[64], cfgpath[128], inst[32], bindir[PATH_MAX + 8];

typedef struct feeder {
    ring *in;
    size_t n;
    uint64_t seq;
} feeder;

static void *feed(void *arg)
{
    feeder *f = arg;
    char payload[64], topics[N_TOPICS][24];
    int tlen[N_TOPICS];

    memset(payload, 'x', sizeof(payload));
    for (int t = 0; t < N_TOPICS; t++)
        tlen[t] = snprintf(topics[t], sizeof(topics[t]), "in/dev%d/temp", t);
    for (size_t k = 0; k < f->n; k++) {
        int t = (int)(k % N_TOPICS);
        bench_put_msg(f->in, f->seq++, topics[t], (size_t)tlen[t], payload, sizeof(payload));
    }
    ring_flush(f->in);
    return NULL;
}

static void write_config(int workers)
{
    FILE *f = fopen(cfgpath, "w");
    if (!f)
        bench_die("fopen config", errno);
    fprintf(f,
            "mqtt_clients:\n  - client_id: c0\n    broker_url: mqtt://127.0.0.1\n"
            "    topics: [{name: \"in/#\"}]\n"
            "callbacks:\n  echo: {module: \"%s/../tests/callbacks/echo.so\", function: echo}\n"
            "rules:\n  - {rule: fwd, topic: \"in/#\", action: fwd, execution_mode: per_topic}\n"
            "processing_chains:\n  fwd:\n"
            "    - {step: custom_processor, config: {callback: echo, prefix: \"out/\"}}\n"
            "runtime:\n  instance: \"%s\"\n  workers: %d\n  ring_size: %u\n"
            /* its own folders: the default state folder may be another user's (an installed
             * package's), which the loader refuses */
            "  spool_dir: \"%s/spool\"\n  dead_letter: {dir: \"%s/dead\"}\n"
            "logging:\n  default_level: WARNING\n",
            bindir, inst, workers, RING_SIZE, dir, dir);
    fclose(f);
}

/* Starts BIN CONFIG [ARG] and waits for its ready line. */
static pid_t spawn(const char *bin, const char *arg)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/%s", bindir, bin);
    char *argv[] = {path, cfgpath, (char *)arg, NULL};
    pid_t pid = 0;
    if (testlib_spawn_ready(argv, NULL, 20000, &pid) < 0 || pid <= 0)
        bench_die(bin, EPIPE);
    return pid;
}

static uint64_t cpu_ticks(pid_t pid)
{
    char buf[1024];
    /* from the state (field 3) on: utime is field 14, stime 15 */
    const char *p = testlib_proc_stat(pid, buf, sizeof(buf));
    unsigned long ut = 0, st = 0;
    if (p && sscanf(p, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
        return ut + st;
    return 0;
}

static uint64_t self_cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ull +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ull;
}

/* The relay's wait: ring_wait_paced where the ring has it. The #ifdef lets this file measure
 * a tree from before it too (a baseline built from an older commit in the same run). */
static int wait_out(ring *const *out, size_t n, int busy)
{
#ifdef RING_NAP_US
    return ring_wait_paced(out, n, NULL, 0, 5000, busy);
#else
    (void)busy;
    return ring_wait_any(out, n, NULL, 0, 5000);
#endif
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return v[n / 2];
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 2000000;
    int rounds = argc > 2 ? atoi(argv[2]) : 5, nw = argc > 3 ? atoi(argv[3]) : 1;
    char name[SHM_NAME_MAX], self[PATH_MAX], warg[16];
    ring *in_obs, *in, *wi_obs[MAX_W], *wo_obs[MAX_W], *out[MAX_W];
    stats *st;
    pid_t router, worker[MAX_W];
    double rate[MAX_ROUNDS], c_router[MAX_ROUNDS], c_worker[MAX_ROUNDS], c_self[MAX_ROUNDS];
    long tck = sysconf(_SC_CLK_TCK);
    feeder fd = {0};
    int rc, ok = 1;

    if (nw < 1 || nw > MAX_W || rounds < 1 || rounds > MAX_ROUNDS || n == 0) {
        fprintf(stderr, "usage: bench_pipeline [RECORDS [ROUNDS(1..%d) [WORKERS(1..%d)]]]\n",
                MAX_ROUNDS, MAX_W);
        return 2;
    }
    bench_paths(self, sizeof(self), "/tmp/mf-bench-pipeline-XXXXXX", dir, sizeof(dir), cfgpath,
                sizeof(cfgpath));
    snprintf(bindir, sizeof(bindir), "%s/bin", self);
    snprintf(inst, sizeof(inst), "bp%d", (int)getpid());
    write_config(nw);

    names_ingress_ring(name, sizeof(name), inst, 0);
    if ((rc = ring_create(name, RING_SIZE, MAX_REC, &in_obs)) < 0 ||
        (rc = ring_attach(name, RING_PRODUCER, &in)) < 0)
        bench_die("ingress ring", -rc);
    for (int w = 0; w < nw; w++) {
        names_worker_in(name, sizeof(name), inst, (size_t)w);
        if ((rc = ring_create(name, RING_SIZE, MAX_REC, &wi_obs[w])) < 0)
            bench_die("worker input ring", -rc);
        names_worker_out(name, sizeof(name), inst, (size_t)w);
        if ((rc = ring_create(name, RING_SIZE, MAX_REC, &wo_obs[w])) < 0 ||
            (rc = ring_attach(name, RING_CONSUMER, &out[w])) < 0)
            bench_die("worker output ring", -rc);
    }
    names_stats(name, sizeof(name), inst);
    if ((rc = stats_create(name, stats_slot_total(1, (size_t)nw), &st)) < 0)
        bench_die("stats", -rc);
    router = spawn("mqttflow-router", NULL);
    for (int w = 0; w < nw; w++) {
        snprintf(warg, sizeof(warg), "%d", w);
        worker[w] = spawn("mqttflow-worker", warg);
    }

    printf("| round | records | seconds | msgs/s | router us/msg | worker(s) us/msg | "
           "feeder+counter us/msg |\n|---:|---:|---:|---:|---:|---:|---:|\n");
    fd.in = in;
    fd.n = n;
    for (int r = 0; r < rounds; r++) {
        pthread_t th;
        size_t got = 0;
        uint64_t r0 = cpu_ticks(router), w0 = 0, r1, w1 = 0, s0 = self_cpu_ns();
        for (int w = 0; w < nw; w++)
            w0 += cpu_ticks(worker[w]);
        uint64_t t0 = clock_mono_ns();
        pthread_create(&th, NULL, feed, &fd);
        int busy = 0; /* waits the way the relay does (pump.c wait_idle) */
        while (got < n) {
            size_t before = got;
            for (int w = 0; w < nw; w++) {
                const void *b;
                size_t l;
                while (ring_peek(out[w], &b, &l) == 0) {
                    ring_advance(out[w]);
                    got++;
                }
                ring_release(out[w]);
            }
            if (got != before) {
                busy = 1;
                continue;
            }
            if (wait_out(out, (size_t)nw, busy) == -ETIMEDOUT && !busy)
                break;
            busy = 0;
        }
        uint64_t t1 = clock_mono_ns();
        pthread_join(th, NULL);
        r1 = cpu_ticks(router);
        for (int w = 0; w < nw; w++)
            w1 += cpu_ticks(worker[w]);
        double secs = (double)(t1 - t0) / 1e9, tick_us = 1e6 / (double)tck;
        rate[r] = (double)got / secs;
        c_router[r] = (double)(r1 - r0) * tick_us / (double)n;
        c_worker[r] = (double)(w1 - w0) * tick_us / (double)n;
        c_self[r] = (double)(self_cpu_ns() - s0) / 1e3 / (double)n;
        printf("| %d | %zu | %.3f | %.0f | %.3f | %.3f | %.3f |\n", r + 1, got, secs, rate[r],
               c_router[r], c_worker[r], c_self[r]);
        if (got != n) {
            fprintf(stderr, "bench_pipeline: round %d: %zu of %zu records came out\n", r + 1, got,
                    n);
            ok = 0;
            break;
        }
    }
    if (ok)
        printf("| median | %zu | | %.0f | %.3f | %.3f | %.3f |\n", n, median(rate, rounds),
               median(c_router, rounds), median(c_worker, rounds), median(c_self, rounds));

    kill(router, SIGTERM);
    waitpid(router, NULL, 0);
    for (int w = 0; w < nw; w++) {
        kill(worker[w], SIGTERM);
        waitpid(worker[w], NULL, 0);
    }
    ring_detach(in);
    ring_detach(in_obs);
    names_ingress_ring(name, sizeof(name), inst, 0);
    ring_unlink(name);
    for (int w = 0; w < nw; w++) {
        ring_detach(out[w]);
        ring_detach(wo_obs[w]);
        ring_detach(wi_obs[w]);
        names_worker_in(name, sizeof(name), inst, (size_t)w);
        ring_unlink(name);
        names_worker_out(name, sizeof(name), inst, (size_t)w);
        ring_unlink(name);
        names_worker_state(name, sizeof(name), inst, (size_t)w);
        shm_unlink_name(name);
    }
    stats_detach(st);
    names_stats(name, sizeof(name), inst);
    shm_unlink_name(name);
    unlink(cfgpath);
    rmdir(dir);
    return ok ? 0 : 1;
}
