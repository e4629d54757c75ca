/* ingress_fixture: the harness of test_ingress (one translation unit includes it).
 *
 * A fixture is a mosquitto on a free 127.0.0.1 port started from a test-local config, the
 * instance's ingress ring and stats segment created as the supervisor would create them, a
 * small YAML (one client, two subscriptions: "t/a" QoS 1 and "t/b/#" QoS 0; setup_opts adds
 * client/runtime/broker lines), and a real mqttflow-ingress spawned with MQTTFLOW_READY_FD
 * whose "ready" it waits for. The test reads the ring as the consumer and drives mfpub/mfsub.
 * Binaries are found under $BUILD (default "build"). MF_TEST_KEEP=1 keeps each fixture's
 * folder (configs and logs) instead of removing it.
 */
#ifndef MF_INGRESS_FIXTURE_H
#define MF_INGRESS_FIXTURE_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <cmocka.h>

#include "../tools/stage_fixture.h"
#include "cfg.h"
#include "clock.h"
#include "names.h"
#include "rec.h"
#include "ring.h"
#include "shm.h"
#include "stats.h"

typedef struct fixture {
    char dir[128];
    char instance[40];
    char ring_name[SHM_NAME_MAX];
    char stats_name[SHM_NAME_MAX];
    char yaml[256];
    int port;
    const char *broker_extra; /* appended to mosquitto.conf */
    pid_t broker, ingress;
    ring *owner; /* the creator's observer handle (keeps the segment) */
    ring *cons;
    stats *st;
    stats_slot *slot;
} fixture;

static int start_broker(fixture *f)
{
    return testlib_broker_start(f->dir, "mosquitto", f->port, NULL, f->broker_extra, &f->broker);
}

/* Spawns the ingress and waits for "ready" on its notification pipe. 0 or -1. */
static int start_ingress(fixture *f)
{
    char bin[256], log[256];
    snprintf(bin, sizeof(bin), "%s/bin/mqttflow-ingress", build_dir());
    snprintf(log, sizeof(log), "%s/ingress.log", f->dir);
    char *argv[] = {bin, f->yaml, "0", NULL};
    return testlib_spawn_ready(argv, log, 10000, &f->ingress);
}

static int teardown(void **state);

/* Per-test variations of the fixture. */
typedef struct setup_opts {
    const char *runtime_extra; /* YAML lines under runtime: */
    const char *client_extra;  /* YAML lines under the client */
    const char *broker_extra;  /* mosquitto.conf lines; "@DIR@" is not substituted */
    size_t ring_cap;
    int with_passwd; /* write DIR/passwd with user "ingress", password "s3cret" */
    int websockets;  /* the ingress connects to a second, websockets listener (ws://) */
} setup_opts;

static int setup_opts_run(void **state, const setup_opts *o)
{
    fixture *f = calloc(1, sizeof(*f));
    char broker_extra[512] = "";
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/mf-test-ingress.XXXXXX");
    if (!mkdtemp(f->dir))
        goto fail;
    if (o->with_passwd) {
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "mosquitto_passwd -b -c '%s/passwd' ingress s3cret", f->dir);
        if (system(cmd) != 0)
            goto fail;
        snprintf(broker_extra, sizeof(broker_extra),
                 "allow_anonymous false\npassword_file %s/passwd\n", f->dir);
        /* read by the ingress through password_env; the child inherits it */
        setenv("MF_TEST_INGRESS_PW", "s3cret", 1);
    }
    if (o->broker_extra)
        snprintf(broker_extra + strlen(broker_extra), sizeof(broker_extra) - strlen(broker_extra),
                 "%s", o->broker_extra);
    f->broker_extra = broker_extra;
    snprintf(f->instance, sizeof(f->instance), "ti%d%ld", (int)getpid(),
             (long)(clock_mono_ns() % 100000));
    f->port = free_port();
    int client_port = f->port;
    if (o->websockets) {
        client_port = free_port();
        snprintf(broker_extra + strlen(broker_extra), sizeof(broker_extra) - strlen(broker_extra),
                 "listener %d 127.0.0.1\nprotocol websockets\n", client_port);
    }
    if (f->port <= 0 || client_port <= 0 || start_broker(f) < 0)
        goto fail;
    snprintf(f->yaml, sizeof(f->yaml), "%s/config.yaml", f->dir);
    FILE *y = fopen(f->yaml, "w");
    if (!y)
        goto fail;
    fprintf(y,
            "mqtt_clients:\n"
            "  - client_id: \"ingress-test-%s\"\n"
            "    broker_url: \"%s://127.0.0.1\"\n"
            "    port: %d\n"
            "    reconnect: {min_delay: 0.1, max_delay: 0.5}\n"
            "%s"
            "    topics:\n"
            "      - name: \"t/a\"\n"
            "        qos: 1\n"
            "      - name: \"t/b/#\"\n"
            "        qos: 0\n"
            "runtime:\n"
            "  instance: \"%s\"\n"
            "  max_payload: 1024\n"
            "  spool_dir: \"%s/spool\"\n"
            /* the ingress dead-letters what it refuses: in the test's folder, never in the
             * service's default state folder (/var/lib/mqttflow as root) */
            "  dead_letter: {dir: \"%s/dead\"}\n"
            "%s",
            f->instance, o->websockets ? "ws" : "mqtt", client_port,
            o->client_extra ? o->client_extra : "", f->instance, f->dir, f->dir,
            o->runtime_extra ? o->runtime_extra : "");
    fclose(y);
    /* the config must be valid for the real loader, or the ingress would exit 2 */
    if (stage_fixture_check_config(f->yaml) < 0)
        goto fail;

    if (names_ingress_ring(f->ring_name, sizeof(f->ring_name), f->instance, 0) < 0 ||
        names_stats(f->stats_name, sizeof(f->stats_name), f->instance) < 0)
        goto fail;
    if (ring_create(f->ring_name, o->ring_cap, o->ring_cap / 4, &f->owner) < 0)
        goto fail;
    if (stats_create(f->stats_name, stats_slot_total(1, 2), &f->st) < 0)
        goto fail;
    f->slot = stats_slot_at(f->st, stats_slot_index(STATS_INGRESS, 0, 1));
    if (ring_attach(f->ring_name, RING_CONSUMER, &f->cons) < 0)
        goto fail;
    if (start_ingress(f) < 0) {
        fprintf(stderr, "ingress did not report ready (log in %s)\n", f->dir);
        goto fail;
    }
    f->broker_extra = NULL; /* a restart reuses the conf file as written */
    *state = f;
    return 0;
fail:
    /* cmocka skips the teardown of a failed setup: clean up here */
    *state = f;
    teardown(state);
    *state = NULL;
    return -1;
}

static int setup(void **state)
{
    setup_opts o = {.ring_cap = 1u << 20};
    return setup_opts_run(state, &o);
}

static int setup_small_drop(void **state)
{
    setup_opts o = {.runtime_extra = "  overflow: drop\n", .ring_cap = 8192};
    return setup_opts_run(state, &o);
}

static int setup_small_block(void **state)
{
    setup_opts o = {.ring_cap = 8192};
    return setup_opts_run(state, &o);
}

static int setup_auth(void **state)
{
    setup_opts o = {.client_extra = "    username: \"ingress\"\n"
                                    "    password_env: \"MF_TEST_INGRESS_PW\"\n",
                    .ring_cap = 1u << 20,
                    .with_passwd = 1};
    return setup_opts_run(state, &o);
}

static int setup_will(void **state)
{
    setup_opts o = {.client_extra =
                        "    will: {topic: \"status/ingress\", payload: \"gone\", qos: 1}\n",
                    .ring_cap = 1u << 20};
    return setup_opts_run(state, &o);
}

static int setup_shared(void **state)
{
    setup_opts o = {.client_extra = "    shared_group: \"g\"\n", .ring_cap = 1u << 20};
    return setup_opts_run(state, &o);
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (!f)
        return 0;
    kill_wait(&f->ingress);
    kill_wait(&f->broker);
    ring_detach(f->cons);
    ring_detach(f->owner);
    stats_detach(f->st);
    if (f->ring_name[0])
        ring_unlink(f->ring_name);
    if (f->stats_name[0])
        shm_unlink_name(f->stats_name);
    testlib_remove_dir(f->dir);
    free(f);
    return 0;
}

/* argv[0..n) (room for 40), then the NULL-terminated arguments in ap: spawned with its
 * output in log. */
static pid_t spawn_tool(const char **argv, int n, const char *first, va_list ap, const char *log)
{
    for (const char *a = first; a && n < 39; a = va_arg(ap, const char *))
        argv[n++] = a;
    argv[n] = NULL;
    return spawn((char *const *)argv, -1, log);
}

/* Runs mfpub with the given extra arguments (NULL-terminated) and returns its exit status. */
static pid_t mfpub_start(fixture *f, const char *first, ...)
{
    char bin[256], port[16];
    snprintf(bin, sizeof(bin), "%s/tests/tools/mfpub", build_dir());
    snprintf(port, sizeof(port), "%d", f->port);
    char log[256];
    snprintf(log, sizeof(log), "%s/mfpub.log", f->dir);
    const char *argv[40] = {bin, "-p", port};
    va_list ap;
    va_start(ap, first);
    pid_t pid = spawn_tool(argv, 3, first, ap, log);
    va_end(ap);
    return pid;
}

static void expect_exit0(pid_t pid, int timeout_ms)
{
    int st = wait_exit(pid, timeout_ms);
    if (st == -1)
        kill_wait(&pid);
    assert_int_not_equal(st, -1);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* Starts mfsub with stdout to DIR/<name>.out and -R DIR/<name>.ready, waits for the ready
 * file. Extra arguments are NULL-terminated. */
static pid_t mfsub_start(fixture *f, const char *name, const char *first, ...)
{
    char bin[256], port[16], ready[256], out[256];
    snprintf(bin, sizeof(bin), "%s/tests/tools/mfsub", build_dir());
    snprintf(port, sizeof(port), "%d", f->port);
    snprintf(ready, sizeof(ready), "%s/%s.ready", f->dir, name);
    snprintf(out, sizeof(out), "%s/%s.out", f->dir, name);
    const char *argv[40] = {bin, "-p", port, "-R", ready};
    va_list ap;
    va_start(ap, first);
    pid_t pid = spawn_tool(argv, 5, first, ap, out);
    va_end(ap);
    if (testlib_wait_file(ready, 10000) != 0)
        fail_msg("mfsub %s did not subscribe within 10 s (see %s)", name, out);
    return pid;
}

/* The whole output of mfsub <name> (static buffer). */
static const char *mfsub_output(fixture *f, const char *name)
{
    static char buf[65536];
    char path[256];
    snprintf(path, sizeof(path), "%s/%s.out", f->dir, name);
    FILE *in = fopen(path, "r");
    size_t n = in ? fread(buf, 1, sizeof(buf) - 1, in) : 0;
    if (in)
        fclose(in);
    buf[n] = 0;
    return buf;
}

/* KEY=value from the RESULT line of mfsub <name>, or -1. */
static long mfsub_result(fixture *f, const char *name, const char *key)
{
    const char *out = mfsub_output(f, name);
    const char *r = strstr(out, "RESULT ");
    char pat[64];
    snprintf(pat, sizeof(pat), " %s=", key);
    const char *k = r ? strstr(r, pat) : NULL;
    return k ? atol(k + strlen(pat)) : -1;
}

/* Whether DIR/name contains text (logs of the broker and the ingress). */
static int file_has(fixture *f, const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", f->dir, name);
    return testlib_file_has(path, text);
}

/* Reads one record from the ring (waiting up to timeout_ms): 0 and *v (valid until the next
 * read, which releases it), or -1 on timeout. */
static int next_record(fixture *f, rec_view *v, int timeout_ms)
{
    uint64_t end = clock_mono_ns() + (uint64_t)timeout_ms * 1000000ull;
    const void *buf;
    size_t len;
    for (;;) {
        int rc = ring_peek(f->cons, &buf, &len);
        if (rc == 0)
            break;
        assert_int_equal(rc, -EAGAIN);
        if (clock_mono_ns() >= end)
            return -1;
        ring_wait_data(f->cons, 50);
    }
    assert_int_equal(rec_decode(buf, len, v), 0);
    ring_advance(f->cons);
    return 0;
}

static uint64_t wait_counter(const uint64_t *c, uint64_t want, int timeout_ms)
{
    uint64_t end = clock_mono_ns() + (uint64_t)timeout_ms * 1000000ull;
    while (stats_get(c) < want && clock_mono_ns() < end)
        sleep_ms(10);
    return stats_get(c);
}

#endif
