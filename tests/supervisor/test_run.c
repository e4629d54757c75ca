/* Real-process tests of `mqttflow run` and the control commands: the supervisor binary is
 * started for real, with real signals and a real control socket.
 *
 * Most tests run the supervisor over fake stages (small bash scripts put in a temporary folder
 * and selected with MQTTFLOW_STAGE_DIR) that behave per the stage contract of common/stage.h:
 * they say "ready" on MQTTFLOW_READY_FD and exit 0 on SIGTERM, and log what happened to them.
 * That tests the supervisor's start order, restart policy and stop order independently of the
 * real stages. test_run_real_stages_with_mosquitto runs the real stage binaries against a
 * real mosquitto when both exist (else it is skipped).
 *
 * Everything waits for events with deadlines (poll the status, the log, the process), never
 * for a fixed sleep.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
#include <dirent.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "clock.h"
#include "names.h"
#include "shm.h"
#include "stats.h"

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
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void nap_ms(int ms)
{
    /* the pause between two polls of a condition, not a synchronisation */
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return strdup("");
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n = getdelim(&buf, &cap, '\0', f);
    fclose(f);
    if (n < 0) {
        free(buf);
        return strdup("");
    }
    return buf;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

/* Runs argv to completion, stdout and stderr into *out (malloc'ed). Exit code, or
 * -1 when it did not finish in timeout_ms (then it is killed). */
static int run_cmd(char *const argv[], char **out, int timeout_ms)
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

static int cli(fx *f, char **out, const char *a1, const char *a2, const char *a3)
{
    char *argv[] = {mqttflow, (char *)a1, "-s", f->sock, (char *)a2, (char *)a3, NULL};
    return run_cmd(argv, out, 30000);
}

/* The status reply's line for a stage ("worker 1"), parsed: pid, state, restarts. 0 when the
 * line is there. */
static int stage_line(const char *status, const char *stage, long *pid, char *state,
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
static int wait_stage(fx *f, const char *stage, const char *state, long want_restarts, long *pid,
                      int timeout_ms)
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

static int wait_text(const char *path, const char *text, int timeout_ms)
{
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    do {
        char *s = slurp(path);
        int found = strstr(s, text) != NULL;
        free(s);
        if (found)
            return 0;
        nap_ms(20);
    } while (now_ms() < end);
    return -1;
}

/* Waits for the supervisor to exit: its exit code, -1 on timeout. */
static int wait_exit(pid_t pid, int timeout_ms)
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

static int shm_left(const char *instance)
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
static void assert_no_sanitizer_report(fx *f)
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
    "echo ready >&\"$MQTTFLOW_READY_FD\"\n"
    "eval \"exec $MQTTFLOW_READY_FD>&-\"\n"
    "[ -e \"$dir/crash.$name\" ] && exit 1\n"
    "# a real stage dies with its supervisor (PR_SET_PDEATHSIG); this one notices it\n"
    "while kill -0 $PPID 2>/dev/null; do sleep 0.05; done\n";

static void write_config(fx *f, int port, int workers)
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

static int setup(void **state)
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

static int teardown(void **state)
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
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", f->dir);
    free(f);
    return 0;
}

/* Starts `mqttflow run` (fake stages unless real) with stderr into f->err. fork rather than
 * posix_spawn so the supervisor gets PR_SET_PDEATHSIG: if this test is killed (timeout), the
 * supervisor receives SIGTERM and stops its stages instead of running on. */
static void start_supervisor(fx *f, int real)
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

/* The order of "start ..." / "stop ..." lines of the fake log, as "a,b,c". */
static void log_order(fx *f, const char *verb, char *buf, size_t len)
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

static void test_run_starts_in_reverse_order_and_stops_in_pipeline_order(void **state)
{
    fx *f = *state;
    start_supervisor(f, 0);
    assert_int_equal(wait_text(f->err, "running: 1 ingress, router, 2 workers, relay", 15000), 0);
    char order[256];
    log_order(f, "start", order, sizeof(order));
    assert_string_equal(order, "relay,worker0,worker1,router,ingress0");

    /* the control socket is private */
    struct stat st;
    assert_int_equal(stat(f->sock, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_true(shm_left(f->instance) >= 6); /* in0, w0.in/out, w1.in/out, stats */

    char *out = NULL;
    assert_int_equal(cli(f, &out, "stop", NULL, NULL), 0);
    assert_non_null(strstr(out, "stopped"));
    free(out);
    assert_int_equal(wait_exit(f->sup, 10000), 0);
    f->sup = 0;
    assert_no_sanitizer_report(f);
    log_order(f, "stop", order, sizeof(order));
    /* ingress, router, then both workers (either order), then relay */
    assert_true(!strcmp(order, "ingress0,router,worker0,worker1,relay") ||
                !strcmp(order, "ingress0,router,worker1,worker0,relay"));
    assert_int_equal(shm_left(f->instance), 0);
    assert_int_equal(access(f->sock, F_OK), -1);
}

static void test_run_status_kill9_restart_and_stop(void **state)
{
    fx *f = *state;
    start_supervisor(f, 0);
    long pids[5];
    const char *stages[] = {"ingress client1", "router", "worker 0", "worker 1", "relay"};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(wait_stage(f, stages[i], "running", 0, &pids[i], 15000), 0);
        assert_true(pids[i] > 0);
    }
    /* a crash: respawned after the 100 ms backoff, with a new pid and restarts 1 */
    assert_int_equal(kill((pid_t)pids[3], SIGKILL), 0);
    long newpid = 0;
    assert_int_equal(wait_stage(f, "worker 1", "running", 1, &newpid, 10000), 0);
    assert_true(newpid > 0 && newpid != pids[3]);
    assert_int_equal(wait_text(f->err, "worker 1 (pid", 1000), 0);

    /* a requested restart: the old one got SIGTERM (exits 0), the new one is ready */
    char *out = NULL;
    assert_int_equal(cli(f, &out, "restart", "worker", "0"), 0);
    char want[96];
    snprintf(want, sizeof(want), "restarted worker 0: pid %ld -> ", pids[2]);
    assert_non_null(strstr(out, want));
    free(out);
    assert_int_equal(wait_stage(f, "worker 0", "running", 1, NULL, 5000), 0);
    assert_int_equal(wait_text(f->fake_log, "stop mqttflow-worker 0", 1000), 0);

    /* unknown stage: an error reply, exit 1 */
    /* all workers, one after the other */
    assert_int_equal(cli(f, &out, "restart", "workers", NULL), 0);
    char *w0 = strstr(out, "restarted worker 0: pid "),
         *w1 = strstr(out, "restarted worker 1: pid ");
    assert_non_null(w0);
    assert_non_null(w1);
    assert_true(w0 < w1);
    free(out);
    assert_int_equal(wait_stage(f, "worker 1", "running", 2, NULL, 5000), 0);
    assert_int_equal(cli(f, &out, "restart", "worker", "7"), 1);
    free(out);
    /* Prometheus text */
    char *argv[] = {mqttflow, "status", "--prom", "-s", f->sock, NULL};
    assert_int_equal(run_cmd(argv, &out, 10000), 0);
    assert_non_null(strstr(out, "mqttflow_stage_restarts_total{instance=\""));
    free(out);

    assert_int_equal(cli(f, &out, "stop", NULL, NULL), 0);
    free(out);
    assert_int_equal(wait_exit(f->sup, 10000), 0);
    f->sup = 0;
    assert_no_sanitizer_report(f);
    assert_int_equal(shm_left(f->instance), 0);
    /* once it is gone, the CLI says so */
    assert_int_equal(cli(f, &out, "status", NULL, NULL), 1);
    free(out);
}

static void test_run_refuses_a_second_instance(void **state)
{
    fx *f = *state;
    start_supervisor(f, 0);
    assert_int_equal(wait_text(f->err, "running:", 15000), 0);
    char *argv[] = {mqttflow, "run", f->cfg, NULL};
    char *out = NULL;
    assert_int_equal(run_cmd(argv, &out, 10000), 2);
    char want[96];
    snprintf(want, sizeof(want), "instance %s is already running (pid %d)", f->instance,
             (int)f->sup);
    assert_non_null(strstr(out, want));
    free(out);
    /* the first one is untouched */
    assert_int_equal(wait_stage(f, "relay", "running", 0, NULL, 5000), 0);
    kill(f->sup, SIGTERM);
    assert_int_equal(wait_exit(f->sup, 10000), 0);
    f->sup = 0;
    assert_no_sanitizer_report(f);
    assert_int_equal(shm_left(f->instance), 0);
}

static void test_run_stage_config_error_fails_the_start_with_exit_2(void **state)
{
    fx *f = *state;
    char path[256];
    snprintf(path, sizeof(path), "%s/exit2.mqttflow-worker 1", f->fake);
    write_file(path, "", 0644);
    start_supervisor(f, 0);
    assert_int_equal(wait_exit(f->sup, 15000), 2);
    f->sup = 0;
    assert_no_sanitizer_report(f);
    assert_int_equal(wait_text(f->err, "worker 1 (pid", 100), 0);
    assert_int_equal(wait_text(f->err, "configuration error", 100), 0);
    char *s = slurp(f->fake_log);
    assert_null(strstr(s, "start mqttflow-router")); /* never got that far */
    assert_non_null(strstr(s, "stop mqttflow-worker 0"));
    assert_non_null(strstr(s, "stop mqttflow-relay"));
    free(s);
    assert_int_equal(shm_left(f->instance), 0);
}

static void test_run_crash_loop_ends_failed_with_reason(void **state)
{
    fx *f = *state;
    start_supervisor(f, 0);
    assert_int_equal(wait_text(f->err, "running:", 15000), 0);
    /* from now on the router exits 1 right after saying ready */
    char path[256];
    snprintf(path, sizeof(path), "%s/crash.mqttflow-router", f->fake);
    write_file(path, "", 0644);
    char *out = NULL;
    cli(f, &out, "restart", "router", NULL);
    free(out);
    /* 100+200+400+800+1600 ms of backoff, then the sixth death in 10 s: failed */
    assert_int_equal(wait_stage(f, "router", "failed", -1, NULL, 15000), 0);
    assert_int_equal(cli(f, &out, "status", NULL, NULL), 0);
    assert_non_null(strstr(out, "router: failed: restart intensity"));
    free(out);
    /* the rest keeps running */
    assert_int_equal(wait_stage(f, "worker 0", "running", -1, NULL, 1000), 0);
    /* the cause is fixed; the operator brings it back at once (no wait for the cool-down) */
    unlink(path);
    assert_int_equal(cli(f, &out, "restart", "router", NULL), 0);
    assert_non_null(strstr(out, "started router: pid "));
    free(out);
    assert_int_equal(wait_stage(f, "router", "running", -1, NULL, 1000), 0);
    assert_int_equal(cli(f, &out, "status", NULL, NULL), 0);
    assert_null(strstr(out, "router: failed"));
    free(out);
    kill(f->sup, SIGINT);
    assert_int_equal(wait_exit(f->sup, 10000), 0);
    f->sup = 0;
    assert_no_sanitizer_report(f);
    assert_int_equal(shm_left(f->instance), 0);
}

static void test_run_reclaims_a_killed_instance(void **state)
{
    fx *f = *state;
    start_supervisor(f, 0);
    assert_int_equal(wait_text(f->err, "running:", 15000), 0);
    long relay = 0;
    assert_int_equal(wait_stage(f, "relay", "running", 0, &relay, 5000), 0);
    /* the supervisor dies without cleaning up: segments and the socket file stay behind */
    kill(f->sup, SIGKILL);
    assert_int_equal(wait_exit(f->sup, 5000), 128 + SIGKILL);
    f->sup = 0;
    assert_true(shm_left(f->instance) >= 6);
    assert_int_equal(access(f->sock, F_OK), 0);
    char *out = NULL;
    assert_int_equal(cli(f, &out, "status", NULL, NULL), 1);
    free(out);
    /* the fake stages notice (real ones get SIGKILL from PR_SET_PDEATHSIG) */
    uint64_t end = now_ms() + 5000;
    while (kill((pid_t)relay, 0) == 0 && now_ms() < end)
        nap_ms(20);
    /* a new supervisor reclaims the stale segments and socket */
    start_supervisor(f, 0);
    assert_int_equal(wait_stage(f, "relay", "running", 0, NULL, 15000), 0);
    assert_int_equal(cli(f, &out, "stop", NULL, NULL), 0);
    free(out);
    assert_int_equal(wait_exit(f->sup, 10000), 0);
    f->sup = 0;
    assert_no_sanitizer_report(f);
    assert_int_equal(shm_left(f->instance), 0);
}

static void test_run_second_signal_kills_a_stage_that_does_not_stop(void **state)
{
    fx *f = *state;
    char path[256];
    snprintf(path, sizeof(path), "%s/hang.mqttflow-ingress 0", f->fake);
    write_file(path, "", 0644);
    start_supervisor(f, 0);
    assert_int_equal(wait_text(f->err, "running:", 15000), 0);
    kill(f->sup, SIGTERM);
    /* the ingress ignores SIGTERM: the stop waits for it (up to its 10 s deadline)... */
    assert_int_equal(wait_text(f->fake_log, "ignore mqttflow-ingress 0", 5000), 0);
    /* ...until a second signal, which kills every stage at once */
    uint64_t t0 = now_ms();
    kill(f->sup, SIGTERM);
    assert_int_equal(wait_exit(f->sup, 5000), 0);
    f->sup = 0;
    assert_true(now_ms() - t0 < 3000);
    assert_int_equal(wait_text(f->err, "second stop signal", 100), 0);
    assert_no_sanitizer_report(f);
    assert_int_equal(shm_left(f->instance), 0);
}

static void test_run_kills_a_worker_stuck_in_a_callback(void **state)
{
    fx *f = *state;
    f->extra_runtime = "  callback_timeout_ms: 100\n";
    write_config(f, 1883, 2);
    start_supervisor(f, 0);
    long pid = 0;
    assert_int_equal(wait_stage(f, "worker 1", "running", 0, &pid, 15000), 0);
    /* play a worker whose callback never returns and whose own watchdog is dead: mark it
     * busy in its stats slot, as ctx_call does, and never clear it */
    char name[SHM_NAME_MAX];
    stats *st = NULL;
    assert_int_equal(names_stats(name, sizeof(name), f->instance), 0);
    assert_int_equal(stats_attach(name, &st), 0);
    stats_slot *slot = stats_slot_at(st, stats_slot_index(STATS_WORKER, 1, 1));
    stats_set(&slot->busy_since_ns, clock_mono_ns());
    /* 100 ms + the 2 s grace, seen at the next 1 s sample: killed and respawned */
    long newpid = 0;
    assert_int_equal(wait_stage(f, "worker 1", "running", 1, &newpid, 8000), 0);
    assert_true(newpid != pid);
    assert_int_equal(wait_text(f->err, "past runtime.callback_timeout_ms", 1000), 0);
    /* the mark now predates the new worker (which, being fake, never clears it): the new
     * one must not be killed for it. Two samples past the limit are enough to see that. */
    uint64_t end = now_ms() + 3500;
    while (now_ms() < end) {
        long p2 = 0;
        assert_int_equal(wait_stage(f, "worker 1", "running", 1, &p2, 1000), 0);
        assert_int_equal(p2, newpid);
        nap_ms(200);
    }
    stats_detach(st);
    assert_int_equal(wait_stage(f, "worker 0", "running", 0, NULL, 1000), 0);
    char *out = NULL;
    assert_int_equal(cli(f, &out, "stop", NULL, NULL), 0);
    free(out);
    assert_int_equal(wait_exit(f->sup, 10000), 0);
    f->sup = 0;
    assert_no_sanitizer_report(f);
}

/* ---- the real stages against a real mosquitto ---- */

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(a);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(s, (struct sockaddr *)&a, &l) < 0) {
        if (s >= 0)
            close(s);
        return -1;
    }
    close(s);
    return ntohs(a.sin_port);
}

static int port_open(int port)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = connect(s, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(s);
    return ok;
}

static void test_run_real_stages_with_mosquitto(void **state)
{
    fx *f = *state;
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
    const char *mosq = access("/usr/sbin/mosquitto", X_OK) == 0 ? "/usr/sbin/mosquitto" : NULL;
    if (!mosq) {
        fprintf(stderr, "SKIP: mosquitto not installed\n");
        skip();
    }
    int port = free_port();
    assert_true(port > 0);
    char conf[256], text[512];
    snprintf(conf, sizeof(conf), "%s/mosquitto.conf", f->dir);
    snprintf(text, sizeof(text),
             "listener %d 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n"
             "set_tcp_nodelay true\npersistence false\n",
             port);
    write_file(conf, text, 0644);
    char *margv[] = {(char *)mosq, "-c", conf, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    assert_int_equal(posix_spawn(&f->broker, mosq, &fa, NULL, margv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    uint64_t end = now_ms() + 10000;
    while (!port_open(port) && now_ms() < end)
        nap_ms(20);
    assert_true(port_open(port));

    write_config(f, port, 2);
    start_supervisor(f, 1);
    if (wait_text(f->err, "running: 1 ingress, router, 2 workers, relay", 30000) != 0) {
        char *s = slurp(f->err);
        fprintf(stderr, "supervisor log:\n%s\n", s);
        free(s);
        fail_msg("the instance did not come up");
    }
    long pids[5];
    const char *stages[] = {"ingress client1", "router", "worker 0", "worker 1", "relay"};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(wait_stage(f, stages[i], "running", 0, &pids[i], 5000), 0);
        assert_true(pids[i] > 0);
    }
    assert_int_equal(kill((pid_t)pids[2], SIGKILL), 0);
    long newpid = 0;
    assert_int_equal(wait_stage(f, "worker 0", "running", 1, &newpid, 15000), 0);
    assert_true(newpid > 0 && newpid != pids[2]);

    char *out = NULL;
    assert_int_equal(cli(f, &out, "stop", NULL, NULL), 0);
    free(out);
    assert_int_equal(wait_exit(f->sup, 30000), 0);
    f->sup = 0;
    assert_no_sanitizer_report(f);
    assert_int_equal(shm_left(f->instance), 0);
    for (int i = 0; i < 5; i++)
        assert_true(kill((pid_t)pids[i], 0) < 0 || i == 2);
}

int main(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return 1;
    exe[n] = '\0';
    /* $(BUILD)/tests/supervisor/test_run -> $(BUILD)/bin */
    for (int i = 0; i < 3; i++)
        *strrchr(exe, '/') = '\0';
    snprintf(bindir, sizeof(bindir), "%s/bin", exe);
    snprintf(mqttflow, sizeof(mqttflow), "%s/mqttflow", bindir);
    if (access(mqttflow, X_OK) != 0) {
        fprintf(stderr, "SKIP: %s not built\n", mqttflow);
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_run_starts_in_reverse_order_and_stops_in_pipeline_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_status_kill9_restart_and_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_refuses_a_second_instance, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_stage_config_error_fails_the_start_with_exit_2,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_crash_loop_ends_failed_with_reason, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_run_reclaims_a_killed_instance, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_second_signal_kills_a_stage_that_does_not_stop,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_kills_a_worker_stuck_in_a_callback, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_run_real_stages_with_mosquitto, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
