/* mqttflow-worker as a real process: the test plays router and relay. It creates the worker's
 * rings and the stats segment under a unique instance name, writes a config pointing at the
 * built test callbacks ($BUILD/tests/callbacks, BUILD default "build"), starts
 * $BUILD/bin/mqttflow-worker, pushes REC_MSG records with rule indices into its input ring
 * and reads REC_PUBLISH records from its output ring.
 *
 * Covered: echo round trip in order; a segfaulting callback kills the worker (SIGSEGV), a
 * restarted worker re-reads the record as attempt 2, and after max_attempts the record is
 * skipped as dead while the records around it still come out, its REC_DEAD naming the signal
 * of the last death (SIGSEGV) and a hung callback's the watchdog timeout; SIGTERM drains the input
 * ring, leaves open sampler windows to the next worker and exits 0 (closes them early when the
 * router is not running: the instance stops); a SIGKILLed worker's open window
 * closes at its original deadline in the next worker with every message once, also when the
 * records were read again after the crash; a window whose close kills the worker every time
 * is given up after max_attempts; a window closes on time with no further
 * input; a module built for another API version makes the worker exit 2 (do not respawn). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "clock.h"
#include "exitcode.h"
#include "names.h"
#include "ring.h"
#include "shm.h"
#include "stats.h"
#include "workers/run.h"
#include "wtest.h"
#include "ring_layout.h"
#include "tests/tools/ringfault.h"

#define RING_BYTES (1u << 16)
#define MAX_REC    (1u << 14)

typedef struct fx {
    char dir[64];
    char yaml[128];
    char log[128];
    char instance[32];
    char in_name[SHM_NAME_MAX], out_name[SHM_NAME_MAX], stats_name[SHM_NAME_MAX];
    char state_name[SHM_NAME_MAX];
    ring *in_obs, *out_obs; /* creator handles */
    ring *in;               /* we produce into the worker's input */
    ring *out;              /* we consume the worker's output */
    stats *st;
    stats_slot *slot;
    pid_t pid;
    uint64_t seq;
} fx;

static char worker_bin[PATH_MAX];

static const char *config_fmt = WT_TWO_CLIENTS
    "callbacks:\n"
    "  echo: {module: \"%s\", function: echo}\n"
    "  segv: {module: \"%s\", function: segv_every}\n"
    "  join: {module: \"%s\", function: join}\n"
    "  fail: {module: \"%s\", function: fail}\n"
    "  hang: {module: \"%s\", function: hang_on}\n"
    "  %s\n"
    "rules:\n"
    "  - {rule: r_echo, source_client_id: c1, topic: \"in/#\", callback: echo}\n"
    "  - {rule: r_segv, source_client_id: c1, topic: \"in/#\", callback: segv}\n"
    "  - {rule: r_slow, source_client_id: c1, topic: \"in/#\", action: slow}\n"
    "  - {rule: r_fast, source_client_id: c1, topic: \"in/#\", action: fast}\n"
    "  - {rule: r_fail, source_client_id: c1, topic: \"in/#\", callback: fail, on_error: "
    "dead_letter}\n"
    "  - {rule: r_hang, source_client_id: c1, topic: \"in/#\", callback: hang}\n"
    "  - {rule: r_mid, source_client_id: c1, topic: \"in/#\", action: mid}\n"
    "  - {rule: r_boom, source_client_id: c1, topic: \"in/#\", action: boom}\n"
    "processing_chains:\n"
    "  slow:\n"
    "    - step: sampler\n"
    "      config: {duration: 600, callback: join, topic: \"win/slow\"}\n"
    "    - step: relay\n"
    "      config: {target_client_id: c2}\n"
    "  boom:\n"
    "    - step: sampler\n"
    "      config: {duration: 0.2, callback: segv, topic: \"win/boom\"}\n"
    "  mid:\n"
    "    - step: sampler\n"
    "      config: {duration: 2, callback: join, topic: \"win/mid\"}\n"
    "    - step: relay\n"
    "      config: {target_client_id: c2}\n"
    "  fast:\n"
    "    - step: sampler\n"
    "      config: {duration: 0.3, callback: join, topic: \"win/fast\"}\n"
    "    - step: relay\n"
    "      config: {target_client_id: c2}\n"
    "runtime: {instance: \"%s\", workers: 1, max_attempts: 2, ring_size: 65536, "
    "callback_timeout_ms: 400}\n";

enum {
    R_ECHO = 0,
    R_SEGV = 1,
    R_SLOW = 2,
    R_FAST = 3,
    R_FAIL = 4,
    R_HANG = 5,
    R_MID = 6,
    R_BOOM = 7
};

static int write_config(fx *f, const char *extra_callback)
{
    FILE *cf = fopen(f->yaml, "w");
    if (!cf)
        return -1;
    fprintf(cf, config_fmt, wt_cb("echo"), wt_cb("segv_every"), wt_cb("echo"), wt_cb("echo"),
            wt_cb("hang_on"), extra_callback ? extra_callback : "", f->instance);
    return fclose(cf);
}

static int setup(void **state)
{
    static int counter;
    fx *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(worker_bin, sizeof(worker_bin), "%s/bin/mqttflow-worker", wt_build());
    if (access(worker_bin, X_OK) < 0) {
        fprintf(stderr, "%s not built\n", worker_bin);
        free(f);
        return -1;
    }
    snprintf(f->dir, sizeof(f->dir), "/tmp/mf-wt-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->yaml, sizeof(f->yaml), "%s/config.yaml", f->dir);
    snprintf(f->log, sizeof(f->log), "%s/worker.log", f->dir);
    snprintf(f->instance, sizeof(f->instance), "wt%d-%d", (int)getpid(), counter++);
    if (write_config(f, NULL) < 0)
        return -1;

    names_worker_in(f->in_name, sizeof(f->in_name), f->instance, 0);
    names_worker_out(f->out_name, sizeof(f->out_name), f->instance, 0);
    names_stats(f->stats_name, sizeof(f->stats_name), f->instance);
    names_worker_state(f->state_name, sizeof(f->state_name), f->instance, 0);
    if (ring_create(f->in_name, RING_BYTES, MAX_REC, &f->in_obs) < 0 ||
        ring_create(f->out_name, RING_BYTES, MAX_REC, &f->out_obs) < 0 ||
        ring_attach(f->in_name, RING_PRODUCER, &f->in) < 0 ||
        ring_attach(f->out_name, RING_CONSUMER, &f->out) < 0 ||
        stats_create(f->stats_name, stats_slot_total(1, 1), &f->st) < 0)
        return -1;
    f->slot = stats_slot_at(f->st, stats_slot_index(STATS_WORKER, 0, 1));
    *state = f;
    return 0;
}

static void reap(fx *f)
{
    if (f->pid > 0) {
        kill(f->pid, SIGKILL);
        waitpid(f->pid, NULL, 0);
        f->pid = 0;
    }
}

static int teardown(void **state)
{
    fx *f = *state;
    reap(f);
    ring_detach(f->in);
    ring_detach(f->out);
    ring_detach(f->in_obs);
    ring_detach(f->out_obs);
    ring_unlink(f->in_name);
    ring_unlink(f->out_name);
    stats_detach(f->st);
    shm_unlink_name(f->stats_name);
    shm_unlink_name(f->state_name); /* the worker leaves it for its successor */
    unlink(f->yaml);
    unlink(f->log);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Starts the worker; returns once it said ready (1) or exited before that (0). */
static int spawn(fx *f)
{
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char fdbuf[16];
        int fd = open(f->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0)
            dup2(fd, 2);
        fcntl(p[1], F_SETFD, 0);
        snprintf(fdbuf, sizeof(fdbuf), "%d", p[1]);
        setenv("MQTTFLOW_READY_FD", fdbuf, 1);
        execl(worker_bin, worker_bin, f->yaml, "0", (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    f->pid = pid;
    struct pollfd pfd = {.fd = p[0], .events = POLLIN};
    char buf[16] = {0};
    ssize_t n = 0;
    if (poll(&pfd, 1, 20000) == 1)
        n = read(p[0], buf, sizeof(buf) - 1);
    close(p[0]);
    return n > 0 && strcmp(buf, "ready\n") == 0;
}

/* What the supervisor does when it reaps a worker (stats.h STATS_W_DEATH): records the
 * terminating signal for the successor's dead letters. Returns wstatus. */
static int note_death(fx *f, int wstatus)
{
    stats_set(&f->slot->extra[STATS_W_DEATH],
              WIFSIGNALED(wstatus) ? (uint64_t)WTERMSIG(wstatus) : 0);
    return wstatus;
}

/* Waits (deadline 20 s) for the worker to end; returns its wait status. */
static int wait_exit(fx *f)
{
    int status = 0;
    uint64_t limit = clock_mono_ns() + 20000000000ull;
    for (;;) {
        pid_t r = waitpid(f->pid, &status, WNOHANG);
        if (r == f->pid)
            break;
        if (clock_mono_ns() > limit)
            fail_msg("worker %d did not exit", (int)f->pid);
        usleep(5000); /* polling waitpid: a child's exit has no fd to wait on here */
    }
    f->pid = 0;
    return status;
}

static void push(fx *f, int rule, const char *topic, const char *payload)
{
    rec_hdr h = {0};
    h.seq = ++f->seq;
    h.received_ns = 1000 + f->seq;
    h.client = 0;
    h.rule = (uint16_t)rule;
    h.step = REC_NONE;
    h.kind = REC_MSG;
    h.qos = 1;
    size_t tl = strlen(topic), pl = strlen(payload), size = rec_size(tl, pl);
    void *buf;
    int rc;
    while ((rc = ring_reserve(f->in, size, &buf)) == -EAGAIN)
        ring_wait_space(f->in, size, 200);
    assert_int_equal(rc, 0);
    assert_int_equal(rec_encode(buf, size, &h, topic, tl, payload, pl), (long)size);
    ring_commit(f->in, size);
    ring_flush(f->in);
}

/* The next output record, within timeout_ms: 0, or -ETIMEDOUT. */
static int next_out(fx *f, wt_rec *out, int timeout_ms)
{
    uint64_t limit = clock_mono_ns() + (uint64_t)timeout_ms * 1000000ull;
    for (;;) {
        const void *buf;
        size_t len;
        if (ring_peek(f->out, &buf, &len) == 0) {
            rec_view v;
            assert_int_equal(rec_decode(buf, len, &v), 0);
            out->h = v.h;
            snprintf(out->topic, sizeof(out->topic), "%s", v.topic);
            out->len = v.h.payload_len < sizeof(out->payload) - 1 ? v.h.payload_len
                                                                  : sizeof(out->payload) - 1;
            memcpy(out->payload, v.payload, out->len);
            out->payload[out->len] = '\0';
            ring_advance(f->out);
            ring_release(f->out);
            return 0;
        }
        uint64_t now = clock_mono_ns();
        if (now >= limit)
            return -ETIMEDOUT;
        uint64_t ms = (limit - now) / 1000000 + 1;
        ring_wait_data(f->out, ms > 200 ? 200 : (int)ms);
    }
}

static char *read_log(fx *f)
{
    static char buf[1 << 16];
    FILE *lf = fopen(f->log, "r");
    if (!lf)
        return strcpy(buf, "");
    size_t n = fread(buf, 1, sizeof(buf) - 1, lf);
    buf[n] = '\0';
    fclose(lf);
    return buf;
}

static void test_worker_echo_round_trip_in_order(void **state)
{
    fx *f = *state;
    enum { N = 300 };
    assert_true(spawn(f));
    for (int i = 0; i < N; i++) {
        char p[32];
        snprintf(p, sizeof(p), "m%d", i);
        push(f, R_ECHO, "in/x", p);
    }
    for (int i = 0; i < N; i++) {
        wt_rec r;
        char want[32];
        snprintf(want, sizeof(want), "m%d", i);
        assert_int_equal(next_out(f, &r, 10000), 0);
        assert_int_equal(r.h.kind, REC_PUBLISH);
        assert_int_equal(r.h.client, 0);
        assert_int_equal(r.h.src_client, 0);
        assert_int_equal(r.h.rule, R_ECHO);
        assert_int_equal(r.h.qos, 1);
        assert_int_equal(r.h.seq, (uint64_t)i + 1);
        assert_string_equal(r.topic, "in/x");
        assert_string_equal(r.payload, want);
    }
    assert_int_equal(stats_get(&f->slot->pid), (uint64_t)f->pid);
    kill(f->pid, SIGTERM);
    int st = wait_exit(f);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), MF_EXIT_OK);
    assert_int_equal(stats_get(&f->slot->in), N);
    assert_int_equal(stats_get(&f->slot->out), N);
    assert_int_equal(stats_get(&f->slot->errors), 0);
    ring_stats rs;
    ring_get_stats(f->in_obs, &rs);
    assert_int_equal(rs.records_out, N); /* every input released */
}

static void test_worker_crash_is_retried_then_skipped_as_dead(void **state)
{
    fx *f = *state;
    push(f, R_ECHO, "in/a", "A");
    push(f, R_SEGV, "in/c", "CRASH");
    push(f, R_ECHO, "in/b", "B");

    /* attempt 1 and attempt 2 die of SIGSEGV (a stale timeout mark of an earlier worker
     * must not make the second death look like a timeout: the first successor clears it) */
    stats_set(&f->slot->extra[STATS_W_TIMEOUT_NS], 1);
    for (int attempt = 1; attempt <= 2; attempt++) {
        assert_true(spawn(f));
        if (attempt == 1)
            assert_int_equal(stats_get(&f->slot->extra[STATS_W_TIMEOUT_NS]), 0);
        int st = note_death(f, wait_exit(f));
        assert_true(WIFSIGNALED(st));
        assert_int_equal(WTERMSIG(st), SIGSEGV);
    }
    assert_non_null(strstr(read_log(f), "topic \"in/c\": attempt 2"));

    /* max_attempts is 2: the third worker skips it, and what surrounds it comes out */
    assert_true(spawn(f));
    int seen_a = 0, seen_b = 0, dead = 0;
    wt_rec r;
    while (!seen_b && next_out(f, &r, 10000) == 0) {
        if (r.h.kind == REC_DEAD) {
            /* handed to the relay for the dead-letter store, as it came in */
            dead++;
            assert_string_equal(r.topic, "in/c");
            assert_string_equal(r.payload, "CRASH");
            /* the signal that killed the last worker, for the dead-letter reason */
            assert_int_equal(r.h.aux, REC_DEAD_AUX(REC_DEAD_CRASHED, SIGSEGV));
            assert_int_equal(REC_DEAD_AUX_SIGNAL(r.h.aux), SIGSEGV);
            assert_int_equal(r.h.rule, R_SEGV);
            assert_int_equal(r.h.src_client, 0);
            continue;
        }
        assert_int_equal(r.h.kind, REC_PUBLISH);
        seen_a += strcmp(r.payload, "A") == 0;
        seen_b += strcmp(r.payload, "B") == 0;
        assert_string_not_equal(r.payload, "CRASH");
    }
    assert_true(seen_a >= 1); /* at-least-once: A may come out again after a crash */
    assert_int_equal(seen_b, 1);
    assert_int_equal(dead, 1);
    assert_int_equal(stats_get(&f->slot->dead), 1);
    assert_non_null(
        strstr(read_log(f), "dead message: rule r_segv, callback segv, topic \"in/c\""));
    kill(f->pid, SIGTERM);
    int st = wait_exit(f);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_worker_window_whose_close_always_crashes_is_given_up(void **state)
{
    fx *f = *state;
    assert_true(spawn(f));
    push(f, R_BOOM, "in/b", "CRASH");
    /* the close of attempt 1 (at the deadline) and of attempt 2 (right after the restart) die */
    for (int attempt = 1; attempt <= 2; attempt++) {
        int st = wait_exit(f);
        assert_true(WIFSIGNALED(st));
        assert_int_equal(WTERMSIG(st), SIGSEGV);
        assert_true(spawn(f));
    }
    /* max_attempts is 2: the third worker gives the window up and carries on */
    push(f, R_ECHO, "in/x", "after");
    wt_rec r;
    assert_int_equal(next_out(f, &r, 5000), 0);
    assert_string_equal(r.payload, "after");
    assert_non_null(strstr(read_log(f), "close attempt 2 (the worker died closing it)"));
    assert_non_null(strstr(read_log(f), "closing it killed the worker 2 times: given up, 1 held"));
    assert_int_equal(stats_get(&f->slot->dropped), 1);
    kill(f->pid, SIGTERM);
    assert_int_equal(WEXITSTATUS(wait_exit(f)), 0);
}

/* Plays a running router in the stats segment (a live restart of one worker), or none. */
static void router_up(fx *f, int up)
{
    stats_slot *rs = stats_slot_at(f->st, stats_slot_index(STATS_ROUTER, 0, 1));
    stats_set(&rs->pid, up ? (uint64_t)getpid() : 0);
}

static void test_worker_sigterm_drains_and_keeps_windows(void **state)
{
    fx *f = *state;
    enum { N = 500 };
    router_up(f, 1);
    assert_true(spawn(f));
    push(f, R_SLOW, "in/s", "s1");
    push(f, R_SLOW, "in/s", "s2");
    for (int i = 0; i < N; i++)
        push(f, R_ECHO, "in/x", "e");
    kill(f->pid, SIGTERM);
    int st = wait_exit(f);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), MF_EXIT_OK);

    int echoes = 0, windows = 0;
    wt_rec r;
    while (next_out(f, &r, 100) == 0) {
        echoes += strcmp(r.topic, "in/x") == 0;
        windows += strcmp(r.topic, "win/slow") == 0;
    }
    assert_int_equal(echoes, N);
    assert_int_equal(windows, 0); /* the 600 s window stays open for the next worker */
    ring_stats rs;
    ring_get_stats(f->in_obs, &rs);
    assert_int_equal(rs.records_out, N + 2);

    /* a live restart: the next worker carries the window on */
    assert_true(spawn(f));
    assert_non_null(strstr(read_log(f), "window of 2 messages carried over"));
    kill(f->pid, SIGTERM);
    assert_int_equal(WEXITSTATUS(wait_exit(f)), 0);
    assert_int_equal(next_out(f, &r, 100), -ETIMEDOUT);

    /* the whole instance stops (no router): the window is closed early, not lost */
    router_up(f, 0);
    assert_true(spawn(f));
    kill(f->pid, SIGTERM);
    assert_int_equal(WEXITSTATUS(wait_exit(f)), 0);
    assert_int_equal(next_out(f, &r, 1000), 0);
    assert_string_equal(r.topic, "win/slow");
    assert_string_equal(r.payload, "2:s1,s2");
    assert_int_equal(r.h.client, 1);
    assert_int_equal(next_out(f, &r, 100), -ETIMEDOUT);
}

/* Waits (deadline 10 s) until the worker released `n` input records in total. */
static void wait_released(fx *f, uint64_t n)
{
    uint64_t limit = clock_mono_ns() + 10000000000ull;
    ring_stats rs;
    for (;;) {
        ring_get_stats(f->in_obs, &rs);
        if (rs.records_out >= n)
            return;
        if (clock_mono_ns() > limit)
            fail_msg("worker released %llu of %llu records", (unsigned long long)rs.records_out,
                     (unsigned long long)n);
        usleep(2000); /* polling a counter in shared memory: no event to wait on */
    }
}

static void test_worker_sigkill_keeps_open_window_and_closes_it_on_time(void **state)
{
    fx *f = *state;
    assert_true(spawn(f));
    uint64_t t0 = clock_mono_ns();
    push(f, R_MID, "in/m", "a");
    push(f, R_MID, "in/m", "b");
    push(f, R_MID, "in/m", "c");
    wait_released(f, 3);
    kill(f->pid, SIGKILL);
    int st = wait_exit(f);
    assert_true(WIFSIGNALED(st));

    assert_true(spawn(f));
    push(f, R_MID, "in/m", "d");
    push(f, R_MID, "in/m", "e");
    wt_rec r;
    assert_int_equal(next_out(f, &r, 6000), 0);
    uint64_t dt = clock_mono_ns() - t0;
    assert_string_equal(r.topic, "win/mid");
    assert_string_equal(r.payload, "5:a,b,c,d,e"); /* every message once, none lost */
    assert_true(dt >= 2000000000ull);              /* not before the original deadline */
    assert_true(dt < 3000000000ull);               /* nor much after it */
    assert_int_equal(next_out(f, &r, 300), -ETIMEDOUT);
    kill(f->pid, SIGTERM);
    assert_int_equal(WEXITSTATUS(wait_exit(f)), 0);
}

static void test_worker_window_records_reread_after_crash_count_once(void **state)
{
    fx *f = *state;
    /* one batch: a and b go into the window, then the crash kills the worker before the
     * batch is released, so the next worker reads a and b again */
    push(f, R_MID, "in/m", "a");
    push(f, R_MID, "in/m", "b");
    push(f, R_SEGV, "in/c", "CRASH");
    uint64_t t0 = clock_mono_ns();
    for (int attempt = 1; attempt <= 2; attempt++) {
        assert_true(spawn(f));
        int st = wait_exit(f);
        assert_true(WIFSIGNALED(st));
        assert_int_equal(WTERMSIG(st), SIGSEGV);
    }
    ring_stats rs;
    ring_get_stats(f->in_obs, &rs);
    assert_int_equal(rs.records_out, 0); /* a and b were read three times in all */
    assert_true(spawn(f));               /* skips CRASH as dead */
    push(f, R_MID, "in/m", "c");
    wt_rec r;
    int windows = 0;
    while (next_out(f, &r, 4000) == 0) {
        if (strcmp(r.topic, "win/mid") != 0)
            continue;
        windows++;
        assert_string_equal(r.payload, "3:a,b,c");
        assert_true(clock_mono_ns() - t0 < 3500000000ull);
        break;
    }
    assert_int_equal(windows, 1);
    kill(f->pid, SIGTERM);
    assert_int_equal(WEXITSTATUS(wait_exit(f)), 0);
    assert_int_equal(next_out(f, &r, 100), -ETIMEDOUT);
}

static void test_worker_window_closes_on_time_without_input(void **state)
{
    fx *f = *state;
    assert_true(spawn(f));
    uint64_t t0 = clock_mono_ns();
    push(f, R_FAST, "in/f", "x");
    push(f, R_FAST, "in/f", "y");
    wt_rec r;
    assert_int_equal(next_out(f, &r, 5000), 0);
    uint64_t dt = clock_mono_ns() - t0;
    assert_string_equal(r.topic, "win/fast");
    assert_string_equal(r.payload, "2:x,y");
    assert_true(dt >= 300000000ull); /* not before the window's end */
    assert_true(dt < 1500000000ull); /* and without waiting for another message */
    kill(f->pid, SIGTERM);
    assert_int_equal(WEXITSTATUS(wait_exit(f)), 0);
}

static void test_worker_refuses_module_of_other_version(void **state)
{
    fx *f = *state;
    char extra[PATH_MAX + 64];
    snprintf(extra, sizeof(extra), "bad: {module: \"%s\", function: cb}", wt_cb("wrong_version"));
    assert_int_equal(write_config(f, extra), 0);
    assert_false(spawn(f));
    int st = wait_exit(f);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), MF_EXIT_CONFIG);
    assert_non_null(strstr(read_log(f), "version 999"));
}

/* Non-blocking push: 0, or -EAGAIN when the input ring is full. */
static int try_push(fx *f, int rule, const char *topic, const char *payload)
{
    rec_hdr h = {0};
    h.seq = f->seq + 1;
    h.client = 0;
    h.rule = (uint16_t)rule;
    h.step = REC_NONE;
    h.kind = REC_MSG;
    h.qos = 1;
    size_t tl = strlen(topic), pl = strlen(payload), size = rec_size(tl, pl);
    void *buf;
    int rc = ring_reserve(f->in, size, &buf);
    if (rc < 0)
        return rc;
    assert_int_equal(rec_encode(buf, size, &h, topic, tl, payload, pl), (long)size);
    ring_commit(f->in, size);
    f->seq++;
    return 0;
}

static void test_worker_sustained_load_keeps_order_under_backpressure(void **state)
{
    fx *f = *state;
    enum { N = 100000 };
    assert_true(spawn(f));
    uint64_t t0 = clock_mono_ns(), limit = t0 + 50000000000ull;
    int sent = 0, got = 0;
    while (got < N && clock_mono_ns() < limit) {
        int progress = 0;
        while (sent < N) {
            char p[32];
            snprintf(p, sizeof(p), "%d", sent);
            if (try_push(f, R_ECHO, "in/load", p) < 0)
                break;
            sent++;
            progress = 1;
        }
        ring_flush(f->in);
        const void *buf;
        size_t len;
        while (ring_peek(f->out, &buf, &len) == 0) {
            rec_view v;
            assert_int_equal(rec_decode(buf, len, &v), 0);
            if (atoi(v.payload) != got)
                fail_msg("output %d carries %s: lost or reordered", got, (const char *)v.payload);
            got++;
            ring_advance(f->out);
            progress = 1;
        }
        ring_release(f->out);
        if (!progress)
            ring_wait_data(f->out, 1);
    }
    double secs = (double)(clock_mono_ns() - t0) * 1e-9;
    assert_int_equal(got, N);
    fprintf(stderr, "worker echo: %d messages in %.3f s: %.0f msg/s through one worker\n", N, secs,
            N / secs);
    kill(f->pid, SIGTERM);
    assert_int_equal(WEXITSTATUS(wait_exit(f)), 0);
    assert_int_equal(stats_get(&f->slot->out), N);
}

/* The worker went on after a dead letter: the next output is the echo of "after"; then it
 * stops cleanly. */
static void expect_after_then_stop(fx *f)
{
    wt_rec r;
    assert_int_equal(next_out(f, &r, 10000), 0);
    assert_int_equal(r.h.kind, REC_PUBLISH);
    assert_string_equal(r.payload, "after");
    kill(f->pid, SIGTERM);
    assert_int_equal(WEXITSTATUS(wait_exit(f)), 0);
}

static void test_worker_failed_callback_goes_to_dead_letter(void **state)
{
    fx *f = *state;
    assert_true(spawn(f));
    push(f, R_FAIL, "in/f", "bad");
    push(f, R_ECHO, "in/e", "after");
    wt_rec r;
    assert_int_equal(next_out(f, &r, 10000), 0);
    assert_int_equal(r.h.kind, REC_DEAD);
    assert_int_equal(r.h.aux, REC_DEAD_AUX(REC_DEAD_CALLBACK_ERROR, 0));
    assert_string_equal(r.payload, "bad");
    expect_after_then_stop(f);
    assert_int_equal(stats_get(&f->slot->errors), 1);
    assert_int_equal(stats_get(&f->slot->dead), 1);
    assert_non_null(strstr(read_log(f), "rule r_fail: callback fail returned 7"));
}

/* issue 8 item 4: a corrupt record header in the input ring (something wrote into it) is a
 * fault with a way out: the damaged region is skipped and dead-lettered with its size, and
 * the worker goes on with what comes next, instead of exiting on it after every restart */
static void test_worker_corrupt_input_is_quarantined_and_dead_lettered(void **state)
{
    fx *f = *state;
    assert_true(spawn(f));
    push(f, R_ECHO, "in/e", "before");
    wt_rec r;
    assert_int_equal(next_out(f, &r, 10000), 0);
    assert_string_equal(r.payload, "before");
    /* a record whose ring header claims an impossible length */
    plant_corrupt_header(f->in, 0xA5);
    ring_flush(f->in);
    assert_int_equal(next_out(f, &r, 10000), 0);
    assert_int_equal(r.h.kind, REC_DEAD);
    assert_int_equal(REC_DEAD_AUX_REASON(r.h.aux), REC_DEAD_CORRUPT_RING);
    assert_true(r.h.seq >= 64); /* the bytes skipped */
    push(f, R_ECHO, "in/e", "after");
    assert_int_equal(next_out(f, &r, 10000), 0);
    assert_int_equal(r.h.kind, REC_PUBLISH);
    assert_string_equal(r.payload, "after");
    assert_int_equal(kill(f->pid, 0), 0); /* the same worker: it did not stop */
    kill(f->pid, SIGTERM);
    assert_int_equal(WEXITSTATUS(wait_exit(f)), 0);
    assert_int_equal(stats_get(&f->slot->dead), 1);
    assert_non_null(strstr(read_log(f), "is corrupt at position"));
}

/* issue 8 item 3: a record that does not decode is handed to the relay's dead-letter store
 * with its length, the decode error and its bytes (it was only counted and logged), and the
 * worker goes on */
static void test_worker_undecodable_input_is_dead_lettered(void **state)
{
    fx *f = *state;
    assert_true(spawn(f));
    unsigned char junk[64];
    memset(junk, 0xA5, sizeof(junk)); /* lengths that disagree with the record's size */
    assert_int_equal(ring_push(f->in, junk, sizeof(junk)), 0);
    push(f, R_ECHO, "in/e", "after");
    wt_rec r;
    assert_int_equal(next_out(f, &r, 10000), 0);
    assert_int_equal(r.h.kind, REC_DEAD);
    assert_int_equal(REC_DEAD_AUX_REASON(r.h.aux), REC_DEAD_UNDECODABLE);
    assert_int_equal(REC_DEAD_AUX_SIGNAL(r.h.aux), REC_BAD_LENGTHS);
    assert_int_equal(r.h.seq, sizeof(junk)); /* the record's length */
    assert_int_equal(r.len, sizeof(junk));
    assert_memory_equal(r.payload, junk, sizeof(junk));
    expect_after_then_stop(f);
    assert_int_equal(stats_get(&f->slot->dead), 1);
    assert_int_equal(stats_get(&f->slot->errors), 1);
}

/* issue 8 item 3: a record that decodes but names a rule this worker does not have is a dead
 * letter ("unknown rule N": its number and length in seq, its bytes as the payload); it was
 * only counted and logged */
static void test_worker_unknown_rule_is_dead_lettered(void **state)
{
    fx *f = *state;
    assert_true(spawn(f));
    push(f, 999, "in/u", "lost?");
    push(f, R_ECHO, "in/e", "after");
    wt_rec r;
    assert_int_equal(next_out(f, &r, 10000), 0);
    assert_int_equal(r.h.kind, REC_DEAD);
    assert_int_equal(REC_DEAD_AUX_REASON(r.h.aux), REC_DEAD_MISPLACED);
    assert_int_equal(REC_DEAD_AUX_SIGNAL(r.h.aux), REC_MISPLACED_RULE);
    size_t size = rec_size(strlen("in/u"), strlen("lost?"));
    assert_int_equal(REC_MISPLACED_LEN(r.h.seq), size);
    assert_int_equal(REC_MISPLACED_WHAT(r.h.seq), 999);
    assert_int_equal(r.len, size); /* the whole record, header first */
    expect_after_then_stop(f);
    assert_int_equal(stats_get(&f->slot->dead), 1);
    assert_int_equal(stats_get(&f->slot->errors), 1);
}

static void test_worker_stop_waits_for_room_in_a_full_output_ring(void **state)
{
    fx *f = *state;
    assert_true(spawn(f));
    /* fill the input ring while nobody reads the output: the worker blocks on a full output
     * ring with input records it has not released */
    int sent = 0;
    uint64_t limit = clock_mono_ns() + 10000000000ull;
    while (clock_mono_ns() < limit) {
        char p[32];
        snprintf(p, sizeof(p), "%d", sent);
        if (try_push(f, R_ECHO, "in/full", p) == 0) {
            sent++;
            continue;
        }
        ring_flush(f->in);
        ring_stats in_st, out_st;
        ring_get_stats(f->in_obs, &in_st);
        ring_get_stats(f->out_obs, &out_st);
        /* both rings full: the input is not drained further, the output holds what it can */
        if (out_st.head - out_st.tail > RING_BYTES - 256 &&
            in_st.head - in_st.tail > RING_BYTES - 256)
            break;
        ring_wait_space(f->in, 256, 10);
    }
    ring_flush(f->in);
    assert_true(sent > 1000);
    kill(f->pid, SIGTERM);
    /* it must not give up the records it holds: still running a while later */
    usleep(300000); /* waiting for the absence of an event: nothing to poll for */
    assert_int_equal(waitpid(f->pid, NULL, WNOHANG), 0);
    /* now read everything: every input comes out once, in order, and then it exits 0 */
    int got = 0;
    wt_rec r;
    while (got < sent && next_out(f, &r, 10000) == 0) {
        assert_int_equal(atoi(r.payload), got);
        got++;
    }
    assert_int_equal(got, sent);
    int st = wait_exit(f);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_worker_hung_callback_is_killed_then_dead_lettered(void **state)
{
    fx *f = *state;
    push(f, R_HANG, "in/h", "HANG");
    push(f, R_ECHO, "in/e", "after");
    for (int attempt = 1; attempt <= 2; attempt++) {
        assert_true(spawn(f));
        int st = note_death(f, wait_exit(f)); /* the watchdog, 400 ms into the callback */
        assert_true(WIFSIGNALED(st));
        assert_int_equal(WTERMSIG(st), SIGKILL);
        /* marked before the kill, for the successor */
        assert_true(stats_get(&f->slot->extra[STATS_W_TIMEOUT_NS]) != 0);
    }
    assert_non_null(strstr(read_log(f), "rule r_hang: callback hang has run for"));
    assert_non_null(strstr(read_log(f), "past runtime.callback_timeout_ms (400)"));
    assert_true(spawn(f));
    wt_rec r;
    assert_int_equal(next_out(f, &r, 10000), 0);
    assert_int_equal(r.h.kind, REC_DEAD);
    assert_string_equal(r.payload, "HANG");
    /* a timeout, not a plain crash: the reason names the watchdog */
    assert_int_equal(REC_DEAD_AUX_REASON(r.h.aux), REC_DEAD_TIMEOUT);
    assert_int_equal(stats_get(&f->slot->extra[STATS_W_TIMEOUT_NS]), 0); /* one death only */
    assert_int_equal(next_out(f, &r, 10000), 0);
    assert_int_equal(r.h.kind, REC_PUBLISH);
    assert_string_equal(r.payload, "after");
    kill(f->pid, SIGTERM);
    assert_int_equal(WEXITSTATUS(wait_exit(f)), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_worker_echo_round_trip_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_crash_is_retried_then_skipped_as_dead, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_worker_sigkill_keeps_open_window_and_closes_it_on_time,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_window_records_reread_after_crash_count_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_window_whose_close_always_crashes_is_given_up,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_sigterm_drains_and_keeps_windows, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_worker_window_closes_on_time_without_input, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_worker_refuses_module_of_other_version, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_worker_corrupt_input_is_quarantined_and_dead_lettered,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_unknown_rule_is_dead_lettered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_undecodable_input_is_dead_lettered, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_worker_failed_callback_goes_to_dead_letter, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_worker_stop_waits_for_room_in_a_full_output_ring,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_hung_callback_is_killed_then_dead_lettered,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_sustained_load_keeps_order_under_backpressure,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
