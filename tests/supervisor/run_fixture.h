/* run_fixture: the harness of the real-process supervisor tests (test_run.c, test_faults.c).
 *
 * Each test gets a temporary folder with a config, a control socket path, the supervisor's
 * stderr and, for tests over fake stages, a folder of small bash scripts selected with
 * MQTTFLOW_STAGE_DIR that behave per the stage contract of common/stage.h (say "ready" on
 * MQTTFLOW_READY_FD, exit 0 on SIGTERM, log what happened to them) with switch files for
 * faults: exit2.<stage> (exit 2 before ready), crashstart.<stage> (exit 1 before ready),
 * crash.<stage> (exit 1 right after ready), hang.<stage> (ignore SIGTERM). Helpers start the
 * supervisor, a private mosquitto, run the CLI and poll for events with deadlines (never a
 * fixed sleep standing in for an event). Everything here is static inline: each test file
 * uses a part of it.
 */
#ifndef MF_TESTS_SUPERVISOR_RUN_FIXTURE_H
#define MF_TESTS_SUPERVISOR_RUN_FIXTURE_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../tools/testlib.h"

extern char **environ;

static char bindir[PATH_MAX + 8];    /* $(BUILD)/bin */
static char mqttflow[PATH_MAX + 24]; /* $(BUILD)/bin/mqttflow */

typedef struct fx {
    char dir[64];
    char fake[128]; /* fake stage folder */
    char cfg[128];
    char sock[128];
    char err[128]; /* supervisor's stderr */
    char fake_log[128];
    char instance[32];
    const char *extra_runtime; /* more lines of the runtime: section */
    pid_t sup;
    pid_t broker;
} fx;

static uint64_t now_ms(void)
{
    return testlib_now_ns() / 1000000ull;
}

static inline void nap_ms(int ms)
{
    testlib_sleep_ms(ms); /* the pause between two polls of a condition */
}

static inline char *slurp(const char *path)
{
    char *s = testlib_slurp(path);
    assert_non_null(s);
    return s;
}

static inline void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

/* Runs argv to completion, stdout and stderr into *out (malloc'ed). Exit code, or
 * -1 when it did not finish in timeout_ms (then it is killed). */
static inline int run_cmd(char *const argv[], char **out, int timeout_ms)
{
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_adddup2(&fa, p[1], 2);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    assert_int_equal(rc, 0);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        uint64_t t = now_ms();
        if (t >= end)
            break;
        struct pollfd pf = {.fd = p[0], .events = POLLIN};
        if (poll(&pf, 1, (int)(end - t)) <= 0)
            continue;
        if (cap - len < 1024) {
            cap = cap ? cap * 2 : 4096;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        ssize_t n = read(p[0], buf + len, cap - len - 1);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(p[0]);
    if (!buf)
        buf = malloc(1);
    buf[len] = '\0';
    if (out)
        *out = buf;
    else
        free(buf);
    int st;
    int fd = pidfd_open(pid, 0);
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    uint64_t t = now_ms();
    int left = t < end ? (int)(end - t) : 0;
    if (poll(&pf, 1, left) != 1) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        close(fd);
        return -1;
    }
    close(fd);
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static inline int cli(fx *f, char **out, const char *a1, const char *a2, const char *a3)
{
    char *argv[] = {mqttflow, (char *)a1, "-s", f->sock, (char *)a2, (char *)a3, NULL};
    return run_cmd(argv, out, 30000);
}

/* The status reply's line for a stage ("worker 1"), parsed: pid, state, restarts. 0 when the
 * line is there. */
static inline int stage_line(const char *status, const char *stage, long *pid, char *state,
                             unsigned long long *restarts)
{
    size_t sl = strlen(stage);
    for (const char *p = status; p && *p;) {
        const char *nl = strchr(p, '\n');
        if (!strncmp(p, stage, sl) && p[sl] == ' ') {
            char pidtxt[24], cpu[16];
            if (sscanf(p + sl, " %23s %15s %15s %llu", pidtxt, cpu, state, restarts) != 4)
                return -1;
            *pid = strcmp(pidtxt, "-") ? strtol(pidtxt, NULL, 10) : 0;
            return 0;
        }
        p = nl ? nl + 1 : NULL;
    }
    return -1;
}

/* Polls `mqttflow status` until stage shows state (and, if want_restarts >= 0, that many
 * restarts) or the deadline. Fills *pid. */
static inline int wait_stage(fx *f, const char *stage, const char *state, long want_restarts,
                             long *pid, int timeout_ms)
{
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    do {
        char *out = NULL, st[32];
        unsigned long long restarts;
        long p;
        int rc = cli(f, &out, "status", NULL, NULL);
        int ok = rc == 0 && stage_line(out, stage, &p, st, &restarts) == 0 && !strcmp(st, state) &&
                 (want_restarts < 0 || (long)restarts == want_restarts);
        free(out);
        if (ok) {
            if (pid)
                *pid = p;
            return 0;
        }
        nap_ms(50);
    } while (now_ms() < end);
    return -1;
}

static inline int wait_text(const char *path, const char *text, int timeout_ms)
{
    return testlib_wait_file_has(path, text, timeout_ms);
}

/* Waits for the supervisor to exit: its exit code, -1 on timeout. */
static inline int wait_exit(pid_t pid, int timeout_ms)
{
    int fd = pidfd_open(pid, 0);
    if (fd < 0)
        return -1;
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    int n = poll(&pf, 1, timeout_ms);
    close(fd);
    if (n != 1)
        return -1;
    int st;
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static inline int shm_left(const char *instance)
{
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "mqttflow.%s.", instance);
    DIR *d = opendir("/dev/shm");
    int n = 0;
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, prefix, strlen(prefix)))
            n++;
    closedir(d);
    return n;
}

/* The supervisor's log must not hold a sanitizer report (ASan/UBSan builds). */
static inline void assert_no_sanitizer_report(fx *f)
{
    char *s = slurp(f->err);
    int bad = strstr(s, "Sanitizer") != NULL || strstr(s, "runtime error:") != NULL;
    if (bad)
        fprintf(stderr, "supervisor log:\n%s\n", s);
    free(s);
    assert_false(bad);
}

static const char fake_stage[] =
    "#!/bin/bash\n"
    "# fake stage: the stage contract of common/stage.h, with switches for faults\n"
    "name=\"$(basename \"$0\")${2:+ $2}\"\n"
    "dir=$(dirname \"$0\")\n"
    "trap 'echo \"stop $name\" >> \"$FAKE_LOG\"; exit 0' TERM\n"
    "[ -e \"$dir/hang.$name\" ] && trap 'echo \"ignore $name\" >> \"$FAKE_LOG\"' TERM\n"
    "echo \"start $name $$ $*\" >> \"$FAKE_LOG\"\n"
    "[ -e \"$dir/exit2.$name\" ] && exit 2\n"
    "[ -e \"$dir/crashstart.$name\" ] && exit 1\n"
    "echo ready >&\"$MQTTFLOW_READY_FD\"\n"
    "eval \"exec $MQTTFLOW_READY_FD>&-\"\n"
    "[ -e \"$dir/crash.$name\" ] && exit 1\n"
    "# a real stage dies with its supervisor (PR_SET_PDEATHSIG); this one notices it\n"
    "while kill -0 $PPID 2>/dev/null; do sleep 0.05; done\n";

static inline void write_config(fx *f, int port, int workers)
{
    char text[2048];
    snprintf(text, sizeof(text),
             "mqtt_clients:\n"
             "  - client_id: \"client1\"\n"
             "    broker_url: \"mqtt://127.0.0.1\"\n"
             "    port: %d\n"
             "    topics:\n"
             "      - name: \"sensors/#\"\n"
             "        qos: 1\n"
             "rules:\n"
             "  - rule: \"fwd\"\n"
             "    source_client_id: \"client1\"\n"
             "    topic: \"sensors/#\"\n"
             "    action: \"fwd_chain\"\n"
             "processing_chains:\n"
             "  fwd_chain:\n"
             "    - step: \"relay\"\n"
             "      config: { target_client_id: \"client1\", target_topic: \"processed/x\" }\n"
             "runtime:\n"
             "  instance: \"%s\"\n"
             "  workers: %d\n"
             "  ring_size: 65536\n"
             "  control_socket: \"%s\"\n"
             "  spool_dir: \"%s/spool\"\n"
             "  dead_letter: { dir: \"%s/dead\" }\n"
             "%s",
             port, f->instance, workers, f->sock, f->dir, f->dir, f->extra_runtime);
    write_file(f->cfg, text, 0644);
}

static inline int setup(void **state)
{
    static int seq;
    fx *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    f->extra_runtime = "";
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_run.XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->instance, sizeof(f->instance), "trun%d_%d", (int)getpid(), seq++);
    snprintf(f->fake, sizeof(f->fake), "%s/fake", f->dir);
    snprintf(f->cfg, sizeof(f->cfg), "%s/config.yaml", f->dir);
    snprintf(f->sock, sizeof(f->sock), "%s/ctl.sock", f->dir);
    snprintf(f->err, sizeof(f->err), "%s/supervisor.err", f->dir);
    snprintf(f->fake_log, sizeof(f->fake_log), "%s/fake.log", f->dir);
    mkdir(f->fake, 0755);
    char path[256];
    snprintf(path, sizeof(path), "%s/stage", f->fake);
    write_file(path, fake_stage, 0755);
    const char *stages[] = {"mqttflow-ingress", "mqttflow-router", "mqttflow-worker",
                            "mqttflow-relay"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof(path), "%s/%s", f->fake, stages[i]);
        if (symlink("stage", path) < 0)
            return -1;
    }
    write_config(f, 1883, 2);
    *state = f;
    return 0;
}

static inline int teardown(void **state)
{
    fx *f = *state;
    if (f->sup > 0) {
        kill(f->sup, SIGKILL); /* its stages die with it (PDEATHSIG / fake: orphaned sleeps) */
        waitpid(f->sup, NULL, 0);
    }
    if (f->broker > 0) {
        kill(f->broker, SIGTERM);
        waitpid(f->broker, NULL, 0);
    }
    char cmd[512];
    /* a killed instance keeps its segments on purpose (the next run resumes them); the test
     * has no next run, so it removes them: rings, stats, the workers' state */
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' /dev/shm/mqttflow.%s.*", f->dir, f->instance);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", f->dir);
    free(f);
    return 0;
}

/* Starts `mqttflow run` (fake stages unless real) with stderr into f->err. fork rather than
 * posix_spawn so the supervisor gets PR_SET_PDEATHSIG: if this test is killed (timeout), the
 * supervisor receives SIGTERM and stops its stages instead of running on. */
static inline void start_supervisor(fx *f, int real)
{
    if (real)
        unsetenv("MQTTFLOW_STAGE_DIR");
    else
        setenv("MQTTFLOW_STAGE_DIR", f->fake, 1);
    setenv("FAKE_LOG", f->fake_log, 1);
    pid_t parent = getpid();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(f->err, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (fd < 0 || null < 0 || dup2(fd, 2) < 0 || dup2(null, 1) < 0)
            _exit(127);
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
            _exit(127);
        execl(mqttflow, mqttflow, "run", f->cfg, (char *)NULL);
        _exit(127);
    }
    f->sup = pid;
}

/* start_supervisor with fake stages, then waits up to 15 s for its "running:" line and, when
 * stage is not NULL, up to 5 s for stage to be running with no restart (its pid in *pid when
 * pid is not NULL). Fails the test, naming what did not come. */
static inline void start_running(fx *f, const char *stage, long *pid)
{
    start_supervisor(f, 0);
    if (wait_text(f->err, "running:", 15000) != 0)
        fail_msg("the supervisor did not say \"running:\" within 15 s (log %s)", f->err);
    if (stage && wait_stage(f, stage, "running", 0, pid, 5000) != 0)
        fail_msg("%s was not running 5 s after the supervisor said \"running:\"", stage);
}

/* The order of "start ..." / "stop ..." lines of the fake log, as "a,b,c". */
static inline void log_order(fx *f, const char *verb, char *buf, size_t len)
{
    char *s = slurp(f->fake_log);
    buf[0] = '\0';
    size_t vl = strlen(verb);
    for (char *p = s; p && *p;) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        if (!strncmp(p, verb, vl) && p[vl] == ' ') {
            char name[64] = "", idx[16] = "";
            /* "start mqttflow-worker 1 PID CONFIG 1" or "start mqttflow-router PID CONFIG" */
            sscanf(p + vl + 1, "mqttflow-%63s %15s", name, idx);
            if (!strcmp(name, "worker") || !strcmp(name, "ingress")) {
                strncat(name, idx, sizeof(name) - strlen(name) - 1);
            }
            if (buf[0])
                strncat(buf, ",", len - strlen(buf) - 1);
            strncat(buf, name, len - strlen(buf) - 1);
        }
        p = nl ? nl + 1 : NULL;
    }
    free(s);
}

static inline int free_port(void)
{
    return testlib_free_port();
}

static inline int port_open(int port)
{
    return testlib_port_open(port);
}

/* Starts a private mosquitto on a free port of 127.0.0.1 (f->broker; teardown stops it) and
 * waits for its listener. The port; skips the test when mosquitto is not installed. */
static inline int start_broker(fx *f)
{
    if (access(TESTLIB_MOSQUITTO, X_OK) != 0) {
        fprintf(stderr, "SKIP: mosquitto not installed\n");
        skip();
    }
    int port = free_port();
    assert_true(port > 0);
    assert_int_equal(testlib_broker_start(f->dir, "mosquitto", port, NULL, NULL, &f->broker), 0);
    return port;
}

/* Waits for the five stages of a two-worker instance to run (ingress: the ingress's row name,
 * e.g. "ingress client1"; want_restarts as wait_stage's); their pids in pids[], in the order
 * ingress, router, worker 0, worker 1, relay. */
static inline void wait_stage_pids(fx *f, const char *ingress, long want_restarts, long pids[5],
                                   int timeout_ms)
{
    const char *stages[] = {ingress, "router", "worker 0", "worker 1", "relay"};
    for (int i = 0; i < 5; i++) {
        if (wait_stage(f, stages[i], "running", want_restarts, &pids[i], timeout_ms) != 0 ||
            pids[i] <= 0)
            fail_msg("%s is not running after %d ms", stages[i], timeout_ms);
    }
}

/* SIGKILLs stage NAME (its pid) and waits for it to run again as a new process with a
 * restart count of 1. The new pid. */
static inline long kill_and_wait_respawn(fx *f, const char *name, long pid, int timeout_ms)
{
    assert_int_equal(kill((pid_t)pid, SIGKILL), 0);
    long newpid = 0;
    if (wait_stage(f, name, "running", 1, &newpid, timeout_ms) != 0 || newpid <= 0 || newpid == pid)
        fail_msg("%s (pid %ld) did not run again after SIGKILL within %d ms", name, pid,
                 timeout_ms);
    return newpid;
}

/* SIGTERM to the supervisor; its exit code within timeout_ms (-1: it did not exit), then
 * no sanitizer report in its log. */
static inline int term_supervisor(fx *f, int timeout_ms)
{
    kill(f->sup, SIGTERM);
    int code = wait_exit(f->sup, timeout_ms);
    f->sup = 0;
    assert_no_sanitizer_report(f);
    return code;
}

/* Skips the test unless the real stage binaries are built. */
static inline void require_real_stages(void)
{
    const char *bins[] = {"mqttflow-ingress", "mqttflow-router", "mqttflow-worker",
                          "mqttflow-relay"};
    for (size_t i = 0; i < 4; i++) {
        char p[PATH_MAX + 64];
        snprintf(p, sizeof(p), "%s/%s", bindir, bins[i]);
        if (access(p, X_OK) != 0) {
            fprintf(stderr, "SKIP: %s not built\n", p);
            skip();
        }
    }
}

/* Finds $(BUILD)/bin from this test binary's path ($(BUILD)/tests/supervisor/test_x). 0, or
 * 77 (the automake SKIP code) when the mqttflow binary is not built. */
static inline int fixture_init(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return 1;
    exe[n] = '\0';
    for (int i = 0; i < 3; i++)
        *strrchr(exe, '/') = '\0';
    snprintf(bindir, sizeof(bindir), "%s/bin", exe);
    snprintf(mqttflow, sizeof(mqttflow), "%s/mqttflow", bindir);
    if (access(mqttflow, X_OK) != 0) {
        fprintf(stderr, "SKIP: %s not built\n", mqttflow);
        return 77;
    }
    return 0;
}

/* `mqttflow stop`, then waits up to timeout_ms for the supervisor to exit 0 and checks its log
 * for sanitizer reports. Fails the test naming the step that went wrong. */
static inline void stop_by_cli(fx *f, int timeout_ms)
{
    char *out = NULL;
    int rc = cli(f, &out, "stop", NULL, NULL);
    if (rc != 0)
        fail_msg("mqttflow stop exited %d: %s", rc, out ? out : "");
    free(out);
    rc = wait_exit(f->sup, timeout_ms);
    if (rc != 0)
        fail_msg("the supervisor ended with %d within %d ms of mqttflow stop, want 0", rc,
                 timeout_ms);
    f->sup = 0;
    assert_no_sanitizer_report(f);
}

#endif
