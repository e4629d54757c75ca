/* test_ingress: the real mqttflow-ingress process against a real mosquitto.
 *
 * Each test starts a mosquitto on a free 127.0.0.1 port from a test-local config, creates the
 * instance's ingress ring and stats segment itself (as the supervisor would), writes a small
 * YAML (one client, two subscriptions: "t/a" QoS 1 and "t/b/#" QoS 0), spawns the ingress
 * with MQTTFLOW_READY_FD and waits for "ready", publishes with mfpub and reads the ring as
 * the consumer. Binaries are found under $BUILD (default "build").
 */
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

#include "../tools/testlib.h"
#include "cfg.h"
#include "clock.h"
#include "names.h"
#include "rec.h"
#include "ring.h"
#include "shm.h"
#include "stats.h"

#define N_MSG 200

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

static const char *build_dir(void)
{
    const char *b = getenv("BUILD");
    return b && *b ? b : "build";
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &l) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static int port_is_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static void sleep_ms(int ms)
{
    poll(NULL, 0, ms);
}

static pid_t spawn(char *const argv[], int ready_fd, const char *log_path)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (log_path) {
            int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
                close(fd);
            }
        }
        if (ready_fd >= 0) {
            char v[16];
            snprintf(v, sizeof(v), "%d", ready_fd);
            setenv("MQTTFLOW_READY_FD", v, 1);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* waitpid with a deadline: the exit status (as waitpid's), or -1 on timeout */
static int wait_exit(pid_t pid, int timeout_ms)
{
    uint64_t end = clock_mono_ns() + (uint64_t)timeout_ms * 1000000ull;
    int status;
    do {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        if (r < 0)
            return -1;
        sleep_ms(10);
    } while (clock_mono_ns() < end);
    return -1;
}

static void kill_wait(pid_t *pid)
{
    if (*pid > 0) {
        kill(*pid, SIGKILL);
        waitpid(*pid, NULL, 0);
        *pid = 0;
    }
}

static int start_broker(fixture *f)
{
    char conf[256], log[256];
    snprintf(conf, sizeof(conf), "%s/mosquitto.conf", f->dir);
    snprintf(log, sizeof(log), "%s/mosquitto.log", f->dir);
    FILE *c = fopen(conf, "w");
    if (!c)
        return -1;
    fprintf(c,
            "listener %d 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n"
            "set_tcp_nodelay true\npersistence false\n%s%s",
            f->port,
            /* as root mosquitto would become user "mosquitto", who cannot read our 0700 dir */
            geteuid() == 0 ? "user root\n" : "", f->broker_extra ? f->broker_extra : "");
    fclose(c);
    char *argv[] = {"/usr/sbin/mosquitto", "-c", conf, NULL};
    f->broker = spawn(argv, -1, log);
    uint64_t end = clock_mono_ns() + 10000000000ull;
    while (clock_mono_ns() < end) {
        if (port_is_open(f->port))
            return 0;
        if (waitpid(f->broker, NULL, WNOHANG) == f->broker) {
            f->broker = 0;
            return -1;
        }
        sleep_ms(20);
    }
    return -1;
}

/* Spawns the ingress and waits for "ready" on its notification pipe. 0 or -1. */
static int start_ingress(fixture *f)
{
    int p[2];
    if (pipe(p) < 0)
        return -1;
    char bin[256], log[256];
    snprintf(bin, sizeof(bin), "%s/bin/mqttflow-ingress", build_dir());
    snprintf(log, sizeof(log), "%s/ingress.log", f->dir);
    char *argv[] = {bin, f->yaml, "0", NULL};
    f->ingress = spawn(argv, p[1], log);
    close(p[1]);
    struct pollfd pfd = {.fd = p[0], .events = POLLIN};
    char buf[16] = {0};
    int ok = poll(&pfd, 1, 10000) == 1 && read(p[0], buf, sizeof(buf) - 1) > 0 &&
             strcmp(buf, "ready\n") == 0;
    close(p[0]);
    return ok ? 0 : -1;
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
            "%s",
            f->instance, o->websockets ? "ws" : "mqtt", client_port,
            o->client_extra ? o->client_extra : "", f->instance,
            o->runtime_extra ? o->runtime_extra : "");
    fclose(y);
    /* the config must be valid for the real loader, or the ingress would exit 2 */
    cfg *c = NULL;
    cfg_diag d = {0};
    int rc = cfg_load(f->yaml, 0, &c, &d);
    for (size_t i = 0; i < d.n_errors; i++)
        fprintf(stderr, "config: %s\n", d.errors[i]);
    cfg_diag_fini(&d);
    cfg_destroy(c);
    if (rc < 0)
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
    if (f->dir[0] && getenv("MF_TEST_KEEP")) {
        fprintf(stderr, "kept %s\n", f->dir);
    } else if (f->dir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", f->dir);
    }
    free(f);
    return 0;
}

/* Runs mfpub with the given extra arguments (NULL-terminated) and returns its exit status. */
static pid_t mfpub_start(fixture *f, const char *first, ...)
{
    char bin[256], port[16];
    snprintf(bin, sizeof(bin), "%s/tests/tools/mfpub", build_dir());
    snprintf(port, sizeof(port), "%d", f->port);
    const char *argv[40] = {bin, "-p", port};
    int n = 3;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && n < 39; a = va_arg(ap, const char *))
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    char log[256];
    snprintf(log, sizeof(log), "%s/mfpub.log", f->dir);
    return spawn((char *const *)argv, -1, log);
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
    int n = 5;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && n < 39; a = va_arg(ap, const char *))
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    pid_t pid = spawn((char *const *)argv, -1, out);
    uint64_t end = clock_mono_ns() + 10000000000ull;
    while (access(ready, F_OK) != 0 && clock_mono_ns() < end)
        sleep_ms(10);
    assert_int_equal(access(ready, F_OK), 0);
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
    char path[256], buf[65536];
    snprintf(path, sizeof(path), "%s/%s", f->dir, name);
    FILE *in = fopen(path, "r");
    size_t n = in ? fread(buf, 1, sizeof(buf) - 1, in) : 0;
    if (in)
        fclose(in);
    buf[n] = 0;
    return strstr(buf, text) != NULL;
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

static void test_ingress_records_match_published(void **state)
{
    fixture *f = *state;
    char n[16];
    snprintf(n, sizeof(n), "%d", N_MSG);
    /* round-robin: even seq -> t/a (QoS 1 subscription), odd -> t/b/x (QoS 0) */
    expect_exit0(mfpub_start(f, "-t", "t/a", "-t", "t/b/x", "-n", n, "-s", "100", "-q", "1", "-i",
                             "9", NULL),
                 20000);
    uint64_t last_pub[2] = {0, 0}, last_rec = 0;
    int seen[2] = {0, 0};
    for (int i = 0; i < N_MSG; i++) {
        rec_view v;
        assert_int_equal(next_record(f, &v, 5000), 0);
        assert_int_equal(v.h.kind, REC_MSG);
        assert_int_equal(v.h.client, 0);
        assert_int_equal(v.h.rule, REC_NONE);
        assert_int_equal(v.h.payload_len, 100);
        assert_true(v.h.received_ns > 0);
        testlib_hdr th;
        assert_int_equal(testlib_parse(v.payload, v.h.payload_len, &th), 0);
        assert_true(th.sumok);
        assert_int_equal(th.src, 9);
        int which = (int)(th.seq % 2);
        assert_string_equal(v.topic, which ? "t/b/x" : "t/a");
        assert_int_equal(v.h.qos, which ? 0 : 1);
        assert_int_equal(v.h.retain, 0);
        /* order kept per topic, ingress sequence strictly increasing */
        if (seen[which])
            assert_true(th.seq > last_pub[which]);
        last_pub[which] = th.seq;
        seen[which]++;
        if (i > 0)
            assert_int_equal(v.h.seq, last_rec + 1);
        last_rec = v.h.seq;
    }
    assert_int_equal(seen[0], N_MSG / 2);
    assert_int_equal(seen[1], N_MSG / 2);
    ring_release(f->cons);
    rec_view v;
    assert_int_equal(next_record(f, &v, 300), -1); /* exactly N, nothing more */
    assert_int_equal(wait_counter(&f->slot->in, N_MSG, 2000), N_MSG);
    assert_int_equal(stats_get(&f->slot->connected), 1);
    assert_int_equal(stats_get(&f->slot->pid), (uint64_t)f->ingress);
    assert_true(stats_get(&f->slot->heartbeat_ns) > 0);
}

static void test_ingress_oversized_counted_not_written(void **state)
{
    fixture *f = *state;
    /* max_payload is 1024: a 2000-byte message is refused, the next one still arrives */
    expect_exit0(mfpub_start(f, "-t", "t/a", "-n", "1", "-s", "2000", "-q", "1", "-i", "1", NULL),
                 10000);
    assert_int_equal(wait_counter(&f->slot->errors, 1, 5000), 1);
    assert_int_equal(stats_get(&f->slot->dead), 1);
    expect_exit0(mfpub_start(f, "-t", "t/a", "-n", "1", "-s", "64", "-q", "1", "-i", "2", NULL),
                 10000);
    rec_view v;
    assert_int_equal(next_record(f, &v, 5000), 0);
    assert_int_equal(v.h.payload_len, 64);
    testlib_hdr th;
    assert_int_equal(testlib_parse(v.payload, v.h.payload_len, &th), 0);
    assert_int_equal(th.src, 2);
    ring_release(f->cons);
    assert_int_equal(next_record(f, &v, 300), -1);
    assert_int_equal(stats_get(&f->slot->in), 1);
    assert_int_equal(stats_get(&f->slot->errors), 1);
}

static void test_ingress_sigterm_exits_zero(void **state)
{
    fixture *f = *state;
    expect_exit0(mfpub_start(f, "-t", "t/a", "-n", "10", "-q", "1", NULL), 10000);
    assert_int_equal(wait_counter(&f->slot->in, 10, 5000), 10);
    assert_int_equal(kill(f->ingress, SIGTERM), 0);
    int st = wait_exit(f->ingress, 5000);
    assert_int_not_equal(st, -1);
    f->ingress = 0;
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_int_equal(stats_get(&f->slot->connected), 0);
    /* everything it acknowledged is in the ring */
    int got = 0;
    rec_view v;
    while (next_record(f, &v, 200) == 0)
        got++;
    assert_int_equal(got, 10);
}

static void test_ingress_full_ring_blocks_without_loss(void **state)
{
    fixture *f = *state;
    /* an 8 KiB ring holds 64 of these records: nobody reads until the ingress has parked on
     * the full ring, then every message must still come out, in order, none dropped */
    pid_t pub = mfpub_start(f, "-t", "t/a", "-n", "1000", "-s", "64", "-q", "1", "-w", "50", "-i",
                            "4", NULL);
    ring_stats rs;
    uint64_t end = clock_mono_ns() + 10000000000ull;
    do {
        sleep_ms(10);
        ring_get_stats(f->cons, &rs);
    } while (rs.producer_waits == 0 && clock_mono_ns() < end);
    assert_true(rs.producer_waits > 0);
    assert_true(ring_used(f->cons) > ring_capacity(f->cons) - 256);
    uint64_t want = 0;
    for (int i = 0; i < 1000; i++) {
        rec_view v;
        assert_int_equal(next_record(f, &v, 10000), 0);
        testlib_hdr th;
        assert_int_equal(testlib_parse(v.payload, v.h.payload_len, &th), 0);
        assert_int_equal(th.seq, want); /* one topic, QoS 1: exact order, no gap */
        want++;
        if (i % 16 == 15)
            ring_release(f->cons);
    }
    ring_release(f->cons);
    expect_exit0(pub, 20000);
    rec_view v;
    assert_int_equal(next_record(f, &v, 300), -1);
    assert_int_equal(stats_get(&f->slot->dropped), 0);
    assert_int_equal(stats_get(&f->slot->in), 1000);
}

static void test_ingress_full_ring_drops_qos0(void **state)
{
    fixture *f = *state;
    /* overflow: drop and nobody reads: QoS 0 messages beyond the ring's room are counted */
    expect_exit0(mfpub_start(f, "-t", "t/b/x", "-n", "500", "-s", "64", "-q", "0", NULL), 10000);
    uint64_t end = clock_mono_ns() + 5000000000ull;
    while (stats_get(&f->slot->in) + stats_get(&f->slot->dropped) < 500 && clock_mono_ns() < end)
        sleep_ms(10);
    uint64_t in = stats_get(&f->slot->in), dropped = stats_get(&f->slot->dropped);
    assert_int_equal(in + dropped, 500);
    assert_true(dropped > 0);
    assert_true(in > 0);
    ring_stats rs;
    ring_get_stats(f->cons, &rs);
    assert_int_equal(rs.drops, dropped);
    int got = 0;
    rec_view v;
    while (next_record(f, &v, 200) == 0)
        got++;
    assert_int_equal((uint64_t)got, in);
}

static void test_ingress_reconnects_and_resubscribes(void **state)
{
    fixture *f = *state;
    kill_wait(&f->broker);
    uint64_t end = clock_mono_ns() + 5000000000ull;
    while (stats_get(&f->slot->connected) != 0 && clock_mono_ns() < end)
        sleep_ms(10);
    assert_int_equal(stats_get(&f->slot->connected), 0);
    /* the process stays up while the broker is away */
    assert_int_equal(waitpid(f->ingress, NULL, WNOHANG), 0);
    /* at least one reconnect attempt fails (logged) before the broker is back */
    end = clock_mono_ns() + 5000000000ull;
    while (!file_has(f, "ingress.log", "failed (paho rc") && clock_mono_ns() < end)
        sleep_ms(10);
    assert_true(file_has(f, "ingress.log", "failed (paho rc"));
    assert_int_equal(start_broker(f), 0);
    end = clock_mono_ns() + 10000000000ull;
    while (stats_get(&f->slot->connected) != 1 && clock_mono_ns() < end)
        sleep_ms(10);
    assert_int_equal(stats_get(&f->slot->connected), 1);
    /* subscribed again (the broker had no session): a message arrives; retry the publish
     * until the SUBACK has been processed */
    rec_view v;
    int got = -1;
    for (int attempt = 0; attempt < 50 && got != 0; attempt++) {
        expect_exit0(mfpub_start(f, "-t", "t/a", "-n", "1", "-q", "1", "-i", "77", NULL), 10000);
        got = next_record(f, &v, 200);
    }
    assert_int_equal(got, 0);
    testlib_hdr th;
    assert_int_equal(testlib_parse(v.payload, v.h.payload_len, &th), 0);
    assert_int_equal(th.src, 77);
}

static void test_ingress_sigterm_while_disconnected_exits_zero(void **state)
{
    fixture *f = *state;
    kill_wait(&f->broker);
    uint64_t end = clock_mono_ns() + 5000000000ull;
    while (stats_get(&f->slot->connected) != 0 && clock_mono_ns() < end)
        sleep_ms(10);
    assert_int_equal(stats_get(&f->slot->connected), 0);
    /* it keeps retrying (heartbeat moves) until told to stop, then stops promptly */
    uint64_t hb = stats_get(&f->slot->heartbeat_ns);
    assert_true(wait_counter(&f->slot->heartbeat_ns, hb + 1, 2000) > hb);
    assert_int_equal(kill(f->ingress, SIGTERM), 0);
    int st = wait_exit(f->ingress, 5000);
    assert_int_not_equal(st, -1);
    f->ingress = 0;
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_ingress_authenticates_with_username_password(void **state)
{
    fixture *f = *state;
    /* the broker refuses anonymous clients (mfpub has no credentials)... */
    pid_t anon = mfpub_start(f, "-t", "t/a", "-n", "1", "-q", "1", NULL);
    int st = wait_exit(anon, 15000);
    assert_true(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) != 0);
    /* ...yet the ingress got ready, so it connected and subscribed with username/password;
     * prove the subscription is live with an authenticated publisher (mosquitto_pub) */
    char port[16];
    snprintf(port, sizeof(port), "%d", f->port);
    char *argv[] = {"/usr/bin/mosquitto_pub",
                    "-p",
                    port,
                    "-u",
                    "ingress",
                    "-P",
                    "s3cret",
                    "-t",
                    "t/a",
                    "-q",
                    "1",
                    "-m",
                    "hello",
                    NULL};
    expect_exit0(spawn(argv, -1, NULL), 10000);
    rec_view v;
    assert_int_equal(next_record(f, &v, 5000), 0);
    assert_string_equal(v.topic, "t/a");
    assert_int_equal(v.h.payload_len, 5);
    assert_memory_equal(v.payload, "hello", 6); /* with its NUL */
}

static void test_ingress_will_published_when_killed(void **state)
{
    fixture *f = *state;
    pid_t sub = mfsub_start(f, "will", "-t", "status/ingress", "-q", "1", "-n", "1", "-D", "-I",
                            "10", NULL);
    kill_wait(&f->ingress); /* SIGKILL: no DISCONNECT, so the broker sends the will */
    expect_exit0(sub, 15000);
    assert_non_null(strstr(mfsub_output(f, "will"), "status/ingress\tgone\n"));
}

static void test_ingress_shared_group_splits_messages(void **state)
{
    fixture *f = *state;
    /* a second member of group "g": the broker must share t/a between it and the ingress */
    pid_t sub = mfsub_start(f, "peer", "-t", "$share/g/t/a", "-q", "1", "-I", "2", NULL);
    expect_exit0(mfpub_start(f, "-t", "t/a", "-n", "100", "-q", "1", "-i", "3", NULL), 10000);
    int st = wait_exit(sub, 15000);
    assert_int_not_equal(st, -1);
    long peer = mfsub_result(f, "peer", "unique");
    long got = 0;
    rec_view v;
    while (next_record(f, &v, 500) == 0)
        got++;
    assert_true(peer > 0);
    assert_true(got > 0);
    assert_int_equal(got + peer, 100);
}

static int setup_persistent_block(void **state)
{
    setup_opts o = {.client_extra = "    clean_session: false\n    keepalive: 2\n",
                    .ring_cap = 8192};
    return setup_opts_run(state, &o);
}

static void test_ingress_persistent_session_survives_keepalive_timeout(void **state)
{
    fixture *f = *state;
    /* nobody reads: the ingress blocks in messageArrived, paho's receive thread sends no
     * PINGREQ, and the broker drops the connection after 1.5 x keepalive (subscriber.h).
     * With clean_session: false the broker keeps what it had not delivered and sends it
     * again after the reconnect: nothing is lost (a few duplicates are allowed). */
    expect_exit0(mfpub_start(f, "-t", "t/a", "-n", "1000", "-s", "64", "-q", "1", "-i", "4", NULL),
                 20000);
    uint64_t end = clock_mono_ns() + 15000000000ull;
    while (!file_has(f, "mosquitto.log", "exceeded timeout") && clock_mono_ns() < end)
        sleep_ms(50);
    assert_true(file_has(f, "mosquitto.log", "exceeded timeout"));
    static char seen[1000];
    memset(seen, 0, sizeof(seen));
    int uniq = 0, dups = 0;
    rec_view v;
    while (uniq < 1000 && next_record(f, &v, 10000) == 0) {
        testlib_hdr th;
        assert_int_equal(testlib_parse(v.payload, v.h.payload_len, &th), 0);
        assert_true(th.seq < 1000);
        if (seen[th.seq]++)
            dups++;
        else
            uniq++;
        ring_release(f->cons);
    }
    assert_int_equal(uniq, 1000);
    assert_true(dups <= 100);
    assert_int_equal(stats_get(&f->slot->connected), 1);
}

static void test_ingress_retained_flag_kept(void **state)
{
    fixture *f = *state;
    /* a retained message is flagged only when a new subscription receives it: publish it,
     * drain the live copy, then start a fresh ingress that subscribes again */
    expect_exit0(mfpub_start(f, "-t", "t/a", "-n", "1", "-q", "1", "-R", "-m", "kept", NULL),
                 10000);
    rec_view v;
    assert_int_equal(next_record(f, &v, 5000), 0);
    assert_int_equal(v.h.retain, 0);
    ring_release(f->cons);
    assert_int_equal(kill(f->ingress, SIGTERM), 0);
    int st = wait_exit(f->ingress, 5000);
    f->ingress = 0;
    assert_true(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(start_ingress(f), 0);
    assert_int_equal(next_record(f, &v, 5000), 0);
    assert_string_equal(v.topic, "t/a");
    assert_int_equal(v.h.retain, 1);
    assert_int_equal(v.h.qos, 1);
    assert_memory_equal(v.payload, "kept", 5);
    /* sequence numbers continue across the restart of the ingress */
    assert_int_equal(v.h.seq, 1);
}

static int setup_v5(void **state)
{
    setup_opts o = {.client_extra = "    mqtt_version: 5\n    clean_session: false\n",
                    .ring_cap = 1u << 20};
    return setup_opts_run(state, &o);
}

static void test_ingress_mqtt5_session_receives_in_order(void **state)
{
    fixture *f = *state;
    /* the broker saw an MQTT 5 client without clean start ("p5, c0") */
    assert_true(file_has(f, "mosquitto.log", "(p5, c0"));
    expect_exit0(mfpub_start(f, "-t", "t/a", "-n", "50", "-q", "1", "-i", "5", NULL), 10000);
    for (uint64_t i = 0; i < 50; i++) {
        rec_view v;
        assert_int_equal(next_record(f, &v, 5000), 0);
        testlib_hdr th;
        assert_int_equal(testlib_parse(v.payload, v.h.payload_len, &th), 0);
        assert_int_equal(th.seq, i);
        assert_int_equal(v.h.qos, 1);
    }
    /* reconnects with the session kept (session expiry set): the subscription survives a
     * restart of the ingress and what was published meanwhile is delivered */
    assert_int_equal(kill(f->ingress, SIGTERM), 0);
    int st = wait_exit(f->ingress, 5000);
    f->ingress = 0;
    assert_true(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    expect_exit0(mfpub_start(f, "-t", "t/a", "-n", "10", "-q", "1", "-i", "6", NULL), 10000);
    assert_int_equal(start_ingress(f), 0);
    for (uint64_t i = 0; i < 10; i++) {
        rec_view v;
        assert_int_equal(next_record(f, &v, 5000), 0);
        testlib_hdr th;
        assert_int_equal(testlib_parse(v.payload, v.h.payload_len, &th), 0);
        assert_int_equal(th.src, 6);
        assert_int_equal(th.seq, i);
    }
}

static int setup_ws(void **state)
{
    setup_opts o = {.websockets = 1, .ring_cap = 1u << 20};
    return setup_opts_run(state, &o);
}

static void test_ingress_websockets_url(void **state)
{
    fixture *f = *state;
    /* ready means connected and subscribed over ws://; messages published over TCP arrive */
    expect_exit0(mfpub_start(f, "-t", "t/a", "-n", "20", "-q", "1", "-i", "8", NULL), 10000);
    for (uint64_t i = 0; i < 20; i++) {
        rec_view v;
        assert_int_equal(next_record(f, &v, 5000), 0);
        testlib_hdr th;
        assert_int_equal(testlib_parse(v.payload, v.h.payload_len, &th), 0);
        assert_int_equal(th.src, 8);
        assert_int_equal(th.seq, i);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ingress_records_match_published, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ingress_oversized_counted_not_written, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ingress_sigterm_exits_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ingress_full_ring_blocks_without_loss,
                                        setup_small_block, teardown),
        cmocka_unit_test_setup_teardown(test_ingress_full_ring_drops_qos0, setup_small_drop,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ingress_reconnects_and_resubscribes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ingress_sigterm_while_disconnected_exits_zero, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ingress_authenticates_with_username_password,
                                        setup_auth, teardown),
        cmocka_unit_test_setup_teardown(test_ingress_will_published_when_killed, setup_will,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ingress_shared_group_splits_messages, setup_shared,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ingress_persistent_session_survives_keepalive_timeout,
                                        setup_persistent_block, teardown),
        cmocka_unit_test_setup_teardown(test_ingress_retained_flag_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ingress_mqtt5_session_receives_in_order, setup_v5,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ingress_websockets_url, setup_ws, teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    if (getenv("MF_TEST_FILTER")) /* e.g. MF_TEST_FILTER='*full_ring*' */
        cmocka_set_test_filter(getenv("MF_TEST_FILTER"));
    return cmocka_run_group_tests_name("ingress", tests, NULL, NULL);
}
