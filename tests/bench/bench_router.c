/* bench_router: records/s through the real mqttflow-router process.
 *
 *   bench_router [RECORDS]     (default 1000000)
 *   bench_router RECORDS TAP   TAP = none | stalled | reading: one "tap=... records/s=..." line
 *
 * One thread of this process is the ingress (pushes RECORDS records of a 64-byte payload
 * into one ingress ring), the main thread is both workers (drains their input rings); the
 * router runs as its own process with 100 rules (wildcards, one condition) of which a
 * message matches one or two. Prints records in, copies out and the rate, measured from the
 * first push to the last copy read. On a 2-CPU machine the three parties share two CPUs, so
 * the figure is a floor.
 *
 * With TAP (tests/bench/run.sh runs the three in turn, to compare within one run): "stalled"
 * attaches a tap at both points of the router (ingress and rule) whose reader never reads,
 * the cost of a `mqttflow tap` that is stopped or too slow: its ring fills, and every later
 * copy is a counted drop; "reading" attaches the same taps with a thread of this process
 * draining them (a tap that keeps up, or nearly: it shares the CPUs).
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
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "names.h"
#include "rec.h"
#include "ring.h"
#include "shm.h"
#include "stats.h"
#include "tap.h"
#include "tests/bench/benchlib.h"
#include "tests/tools/testlib.h"

#define RING_SIZE (4u << 20)
#define N_WORKERS 2

static char dir[64], cfgpath[128], inst[32], bin[PATH_MAX + 32];

typedef struct feeder {
    ring *in;
    size_t n;
} feeder;

static void *feed(void *arg)
{
    feeder *f = arg;
    char payload[65];

    memset(payload, 'x', 64);
    payload[64] = '\0';
    for (size_t k = 0; k < f->n; k++) {
        char topic[48];
        int tl = snprintf(topic, sizeof(topic), "site%zu/dev%zu/temp", k % 50, k % 1000);
        bench_put_msg(f->in, k, topic, (size_t)tl, payload, 64);
    }
    ring_flush(f->in);
    return NULL;
}

/* TAP=reading: drains the taps until told to stop; counts what it read. */
typedef struct drainer {
    tap **taps;
    int n;
    volatile int stop;
    uint64_t read;
} drainer;

static void *drain(void *arg)
{
    drainer *d = arg;
    while (!d->stop) {
        int any = 0;
        for (int i = 0; i < d->n; i++) {
            tap_msg m;
            while (tap_take(d->taps[i], &m) == 1) {
                tap_next(d->taps[i]);
                d->read++;
                any = 1;
            }
        }
        if (!any)
            usleep(1000); /* as the CLI polls an empty tap */
    }
    return NULL;
}

static void write_config(void)
{
    FILE *f;
    char path[160];

    snprintf(path, sizeof(path), "%s/cb.so", dir);
    f = fopen(path, "w");
    if (!f)
        bench_die("fopen cb.so", errno);
    fclose(f);
    f = fopen(cfgpath, "w");
    if (!f)
        bench_die("fopen config", errno);
    fprintf(f, "mqtt_clients:\n  - client_id: c0\n    broker_url: mqtt://127.0.0.1\n"
               "    topics:\n      - name: \"#\"\n"
               "callbacks:\n  cb:\n    module: cb.so\n    function: f\n"
               "rules:\n");
    /* 100 rules; a topic site<s>/dev<d>/temp matches "site<s>/+/temp" (s < 50: one rule) and
     * half of the topics also match the per_topic rule with a condition */
    for (int i = 0; i < 100; i++) {
        if (i < 50)
            fprintf(f, "  - rule: r%d\n    topic: \"site%d/+/temp\"\n    callback: cb\n", i, i);
        else if (i == 50)
            fprintf(f,
                    "  - rule: r%d\n    topic: \"+/+/temp\"\n    regex: \"dev[0-9]*[02468]/\"\n"
                    "    execution_mode: per_topic\n    callback: cb\n",
                    i);
        else
            fprintf(f, "  - rule: r%d\n    topic: \"other%d/#\"\n    callback: cb\n", i, i);
    }
    fprintf(f,
            "runtime:\n  instance: \"%s\"\n  workers: %d\n  ring_size: %u\n"
            "logging:\n  default_level: WARNING\n",
            inst, N_WORKERS, RING_SIZE);
    fclose(f);
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000, got = 0;
    char name[SHM_NAME_MAX], self[PATH_MAX];
    ring *in_obs, *in, *out_obs[N_WORKERS], *out[N_WORKERS];
    stats *st;
    pthread_t th;
    feeder fd;
    pid_t pid;
    int rc, status;
    uint64_t t0, t1, want;

    bench_paths(self, sizeof(self), "/tmp/mf-bench-router-XXXXXX", dir, sizeof(dir), cfgpath,
                sizeof(cfgpath));
    snprintf(bin, sizeof(bin), "%s/bin/mqttflow-router", self);
    snprintf(inst, sizeof(inst), "br%d", (int)getpid());
    write_config();

    names_ingress_ring(name, sizeof(name), inst, 0);
    if ((rc = ring_create(name, RING_SIZE, RING_SIZE / 4, &in_obs)) < 0 ||
        (rc = ring_attach(name, RING_PRODUCER, &in)) < 0)
        bench_die("ingress ring", -rc);
    for (int w = 0; w < N_WORKERS; w++) {
        names_worker_in(name, sizeof(name), inst, (size_t)w);
        if ((rc = ring_create(name, RING_SIZE, RING_SIZE / 4, &out_obs[w])) < 0 ||
            (rc = ring_attach(name, RING_CONSUMER, &out[w])) < 0)
            bench_die("worker ring", -rc);
    }
    names_stats(name, sizeof(name), inst);
    if ((rc = stats_create(name, stats_slot_total(1, N_WORKERS), &st)) < 0)
        bench_die("stats", -rc);
    const char *tap_mode = argc > 2 ? argv[2] : NULL;
    tap *taps[2] = {NULL, NULL}, *readers[2] = {NULL, NULL};
    drainer dr = {.taps = readers, .n = 2};
    pthread_t dth;
    if (tap_mode && strcmp(tap_mode, "none") != 0) {
        static const int points[2] = {TAP_INGRESS, TAP_RULE};
        for (int i = 0; i < 2; i++) {
            names_tap(name, sizeof(name), inst, tap_point_name(points[i]));
            if ((rc = tap_create(name, points[i], TAP_RULE_ANY, &taps[i])) < 0 ||
                (rc = tap_attach(name, &readers[i])) < 0)
                bench_die("tap", -rc);
            /* as the supervisor does: the segment first, then its generation (release) */
            __atomic_store_n(stats_tap_gen(st, points[i]), (uint64_t)i + 1, __ATOMIC_RELEASE);
        }
        if (!strcmp(tap_mode, "reading"))
            pthread_create(&dth, NULL, drain, &dr);
    }

    {
        char *rargv[] = {bin, cfgpath, NULL};
        if (testlib_spawn_ready(rargv, NULL, 60000, &pid) < 0 || pid <= 0)
            bench_die("router did not get ready", EPIPE);
    }

    /* expected copies: every topic matches its site rule; even devices also match r50 */
    want = n;
    for (size_t k = 0; k < n; k++)
        want += (k % 1000) % 2 == 0;
    t0 = clock_mono_ns();
    fd.in = in;
    fd.n = n;
    pthread_create(&th, NULL, feed, &fd);
    while (got < want) {
        size_t before = got;
        for (int w = 0; w < N_WORKERS; w++) {
            const void *b;
            size_t l;
            while (ring_peek(out[w], &b, &l) == 0) {
                ring_advance(out[w]);
                got++;
            }
            ring_release(out[w]);
        }
        if (got == before && ring_wait_any(out, N_WORKERS, NULL, 0, 2000) == -ETIMEDOUT)
            break;
    }
    t1 = clock_mono_ns();
    pthread_join(th, NULL);
    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
    if (tap_mode && !strcmp(tap_mode, "reading")) {
        dr.stop = 1;
        pthread_join(dth, NULL);
    }
    if (tap_mode) {
        double secs = (double)(t1 - t0) / 1e9;
        uint64_t dropped = 0, copied = 0;
        for (int i = 0; i < 2 && readers[0]; i++) {
            dropped += tap_dropped(readers[i]);
            copied += tap_written(readers[i]);
        }
        printf("tap=%s records/s=%.0f copies=%llu tap_copied=%llu tap_dropped=%llu ok=%d\n",
               tap_mode, (double)n / secs, (unsigned long long)got, (unsigned long long)copied,
               (unsigned long long)dropped, got == want);
    } else {
        double secs = (double)(t1 - t0) / 1e9;
        printf("| records in | copies out | expected | seconds | records/s | copies/s |\n");
        printf("|---:|---:|---:|---:|---:|---:|\n");
        printf("| %zu | %zu | %llu | %.3f | %.0f | %.0f |\n", n, got, (unsigned long long)want,
               secs, (double)n / secs, (double)got / secs);
    }

    ring_detach(in);
    ring_detach(in_obs);
    names_ingress_ring(name, sizeof(name), inst, 0);
    ring_unlink(name);
    for (int w = 0; w < N_WORKERS; w++) {
        ring_detach(out[w]);
        ring_detach(out_obs[w]);
        names_worker_in(name, sizeof(name), inst, (size_t)w);
        ring_unlink(name);
    }
    for (int i = 0; i < 2; i++) {
        tap_detach(readers[i]);
        tap_destroy(taps[i]);
    }
    stats_detach(st);
    names_stats(name, sizeof(name), inst);
    shm_unlink_name(name);
    snprintf(self, sizeof(self), "%s/cb.so", dir);
    unlink(self);
    unlink(cfgpath);
    rmdir(dir);
    return got == want && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
