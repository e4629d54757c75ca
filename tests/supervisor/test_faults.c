/* Fault tests of the supervisor's share of DESIGN §5 (issue 4), with real processes:
 *
 *   - kill -9 of the supervisor leaves no orphan stage (PR_SET_PDEATHSIG), and the next
 *     `mqttflow run` of the instance adopts the rings it finds: records queued in them at the
 *     crash are all delivered (counted by mfsub through a real mosquitto);
 *   - a stage crash-looping at start backs off exponentially, ends in the failed state with
 *     the reason in `mqttflow status`, and the loop costs under 5% of a CPU;
 *   - a worker whose module's mf_init fails (exit 2) is never respawned;
 *   - live restarts of the router, the relay, every worker (rolling) and the ingress under
 *     QoS 1 load lose nothing (mfpub -q 1 -> mosquitto -> pipeline -> mosquitto -> mfsub).
 *
 * The harness (temporary folder, fake stages, private mosquitto, CLI and polling helpers) is
 * run_fixture.h. Waits poll for the event with a deadline.
 */
#include "clock.h"
#include "names.h"
#include "rec.h"
#include "ring.h"
#include "run_fixture.h"
#include "stats.h"
#include "tests/tools/testlib.h"

static char cbdir[PATH_MAX + 32]; /* $(BUILD)/tests/callbacks */
static char mfpub[PATH_MAX + 48], mfsub[PATH_MAX + 48];

/* Whether pid is a live process (a zombie nobody reaped yet counts as gone). */
static int alive(pid_t pid)
{
    char buf[512];
    const char *s = testlib_proc_stat(pid, buf, sizeof(buf));
    return s && *s != '\0' && *s != 'Z' && *s != 'X';
}

/* CPU seconds of pid and of the children it has reaped (utime+stime+cutime+cstime). */
static double cpu_of(pid_t pid)
{
    char buf[1024];
    const char *p = testlib_proc_stat(pid, buf, sizeof(buf));
    assert_non_null(p);
    unsigned long long v[4];
    /* after ")": state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
     * utime(14) stime cutime cstime */
    int got = sscanf(p, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu", &v[0],
                     &v[1], &v[2], &v[3]);
    assert_int_equal(got, 4);
    return (double)(v[0] + v[1] + v[2] + v[3]) / (double)sysconf(_SC_CLK_TCK);
}

/* A pipeline config for the real stages: client c1 takes in/# at QoS 1 (clean_session as
 * given) and every message is relayed to out/<topic> at the message's QoS by `workers`
 * workers (rule "fwd", index 0). */
static void write_pipeline_config(fx *f, int port, int workers, int clean_session)
{
    char text[2048];
    snprintf(text, sizeof(text),
             "mqtt_clients:\n"
             "  - client_id: \"c1_%s\"\n"
             "    broker_url: \"mqtt://127.0.0.1\"\n"
             "    port: %d\n"
             "    clean_session: %s\n"
             "    topics: [{name: \"in/#\", qos: 1}]\n"
             "rules:\n"
             "  - {rule: \"fwd\", topic: \"in/#\", action: \"out\"}\n"
             "processing_chains:\n"
             "  out:\n"
             "    - {step: \"format\", config: {topic_prefix: \"out/\"}}\n"
             "    - {step: \"relay\", config: {}}\n"
             "runtime:\n"
             "  instance: \"%s\"\n"
             "  workers: %d\n"
             "  ring_size: 1048576\n"
             "  control_socket: \"%s\"\n"
             "  spool_dir: \"%s/spool\"\n"
             "  dead_letter: { dir: \"%s/dead\" }\n"
             "%s",
             f->instance, port, clean_session ? "true" : "false", f->instance, workers, f->sock,
             f->dir, f->dir, f->extra_runtime);
    write_file(f->cfg, text, 0644);
}

/* The path of test callback module NAME.so; skips the test when it is not built. */
static void callback_path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s.so", cbdir, name);
    if (access(buf, R_OK) != 0) {
        fprintf(stderr, "SKIP: test callback %s not built\n", buf);
        skip();
    }
}

/* Spawns argv (mfpub or mfsub) with its stdout and stderr in <dir>/<tag>.log. */
static pid_t spawn_logged(fx *f, char *const argv[], const char *tag)
{
    char logp[192];
    snprintf(logp, sizeof(logp), "%s/%s.log", f->dir, tag);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, logp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        fail_msg("cannot start %s (%s): %s", argv[0], tag, strerror(rc));
    return pid;
}

/* Starts mfsub on filter at QoS 1 expecting n messages; waits until it has subscribed.
 * Its output goes to <dir>/<tag>.log. */
static pid_t start_sub(fx *f, int port, const char *filter, long n, const char *tag)
{
    char ports[16], ns[24], ready[192];
    snprintf(ports, sizeof(ports), "%d", port);
    snprintf(ns, sizeof(ns), "%ld", n);
    snprintf(ready, sizeof(ready), "%s/%s.ready", f->dir, tag);
    char *argv[] = {mfsub, "-p", ports, "-t", (char *)filter, "-q", "1",   "-n",
                    ns,    "-I", "20",  "-T", "55",           "-R", ready, NULL};
    pid_t pid = spawn_logged(f, argv, tag);
    if (testlib_wait_file(ready, 10000) != 0)
        fail_msg("mfsub %s (%s) did not subscribe within 10 s", tag, filter);
    return pid;
}

/* Waits for mfsub (or mfpub) to finish; its RESULT line's field key, -1 when absent. */
static long result_field(fx *f, pid_t pid, const char *tag, const char *key)
{
    char logp[192], want[32];
    if (pid > 0)
        assert_true(wait_exit(pid, 60000) >= 0);
    snprintf(logp, sizeof(logp), "%s/%s.log", f->dir, tag);
    char *s = slurp(logp);
    char *r = strstr(s, "RESULT ");
    snprintf(want, sizeof(want), " %s=", key);
    char *k = r ? strstr(r, want) : NULL;
    long v = k ? strtol(k + strlen(want), NULL, 10) : -1;
    if (v < 0)
        fprintf(stderr, "%s.log:\n%s\n", tag, s);
    free(s);
    return v;
}

/* Pushes n REC_MSG records of the test payload (source src, sequences 0..n-1) on topic into
 * ring name as its producer: as the ingress (rule REC_NONE) or the router (rule given)
 * would have left them queued. */
static void push_messages(const char *name, const char *topic, uint16_t rule, uint32_t src, long n)
{
    ring *p = NULL;
    assert_int_equal(ring_attach(name, RING_PRODUCER, &p), 0);
    unsigned char payload[64], rec[512];
    for (long i = 0; i < n; i++) {
        testlib_fill(payload, sizeof(payload), src, (uint64_t)i, testlib_now_ns());
        rec_hdr h = {.seq = (uint64_t)i,
                     .received_ns = clock_wall_ns(),
                     .client = 0,
                     .rule = rule,
                     .step = REC_NONE,
                     .kind = REC_MSG,
                     .qos = 1};
        long len = rec_encode(rec, sizeof(rec), &h, topic, strlen(topic), payload, sizeof(payload));
        assert_true(len > 0);
        assert_int_equal(ring_push(p, rec, (size_t)len), 0);
    }
    ring_flush(p);
    ring_detach(p);
}

static void stage_pids(fx *f, long pids[5])
{
    char ingress[64];
    snprintf(ingress, sizeof(ingress), "ingress c1_%s", f->instance);
    wait_stage_pids(f, ingress, -1, pids, 20000);
}

static void wait_running(fx *f)
{
    if (wait_text(f->err, "running: 1 ingress, router, 2 workers, relay", 30000) != 0) {
        char *s = slurp(f->err);
        fprintf(stderr, "supervisor log:\n%s\n", s);
        free(s);
        fail_msg("the instance did not come up");
    }
}

static void stop_supervisor(fx *f)
{
    stop_by_cli(f, 30000);
    assert_int_equal(shm_left(f->instance), 0); /* a clean stop leaves no segment */
}

/* The real pipeline (write_pipeline_config, two workers) on a private broker, running. Skips
 * without the stage binaries. The broker's port. */
static int start_pipeline(fx *f, int clean_session)
{
    require_real_stages();
    int port = start_broker(f);
    write_pipeline_config(f, port, 2, clean_session);
    start_supervisor(f, 1);
    wait_running(f);
    return port;
}

static long router_in(fx *f);

/* Polls until the router has taken in at least mark records (30 s at most). */
static void wait_router_in(fx *f, long mark)
{
    uint64_t end = now_ms() + 30000;
    long in;
    while ((in = router_in(f)) < mark && now_ms() < end)
        nap_ms(20);
    if (in < mark)
        fail_msg("the router took in %ld records within 30 s, not %ld", in, mark);
}

/* Waits for mfpub pub, then asserts that mfsub "sub" got each of the n messages (duplicates
 * allowed: QoS 1), none lost, none corrupted; what names the case in the log and a failure. */
static void assert_all_delivered(fx *f, pid_t pub, pid_t sub, long n, const char *what)
{
    int code = wait_exit(pub, 60000);
    if (code != 0)
        fail_msg("%s: mfpub exited with %d", what, code);
    long unique = result_field(f, sub, "sub", "unique");
    long dup = result_field(f, 0, "sub", "dup");
    long lost = result_field(f, 0, "sub", "lost");
    long bad = result_field(f, 0, "sub", "badsum");
    fprintf(stderr, "%s: unique %ld of %ld, duplicates %ld, lost %ld, bad checksums %ld\n", what,
            unique, n, dup, lost, bad);
    if (lost != 0 || unique != n || bad != 0)
        fail_msg("%s: %ld of %ld arrived, %ld lost, %ld with a bad checksum", what, unique, n, lost,
                 bad);
}

static void test_faults_supervisor_kill9_no_orphans_and_next_run_resumes(void **state)
{
    fx *f = *state;
    int port = start_pipeline(f, 1);
    long pids[5];
    stage_pids(f, pids);

    /* the whole tree crashes: every stage dies with its supervisor, within about a second */
    assert_int_equal(kill(f->sup, SIGKILL), 0);
    assert_int_equal(wait_exit(f->sup, 5000), 128 + SIGKILL);
    f->sup = 0;
    uint64_t t0 = now_ms(), end = t0 + 2000;
    int left;
    do {
        left = 0;
        for (int i = 0; i < 5; i++)
            left += alive((pid_t)pids[i]);
        if (left)
            nap_ms(10);
    } while (left && now_ms() < end);
    assert_int_equal(left, 0);
    fprintf(stderr, "every stage gone %llu ms after the supervisor's SIGKILL\n",
            (unsigned long long)(now_ms() - t0));

    /* records the dead pipeline still held: 1,500 the ingress had queued for the router and
     * 1,000 the router had queued for worker 1 */
    char name[SHM_NAME_MAX];
    assert_int_equal(names_ingress_ring(name, sizeof(name), f->instance, 0), 0);
    push_messages(name, "in/a", REC_NONE, 71, 1500);
    assert_int_equal(names_worker_in(name, sizeof(name), f->instance, 1), 0);
    push_messages(name, "in/b", 0, 72, 1000);

    pid_t sub = start_sub(f, port, "out/#", 2500, "sub");
    start_supervisor(f, 1);
    wait_running(f);
    char want[160];
    snprintf(want, sizeof(want), "resuming 1500 queued record(s) (%d bytes) in mqttflow.%s.in0",
             (int)(1500 * (8 + rec_size(4, 64))), f->instance);
    if (wait_text(f->err, "resuming 1500 queued record(s)", 100) != 0 ||
        wait_text(f->err, "resuming 1000 queued record(s)", 100) != 0) {
        char *s = slurp(f->err);
        fprintf(stderr, "supervisor log:\n%s\n(wanted %s)\n", s, want);
        free(s);
        fail_msg("no resume line");
    }
    assert_int_equal(result_field(f, sub, "sub", "unique"), 2500);
    assert_int_equal(result_field(f, 0, "sub", "lost"), 0);
    assert_int_equal(result_field(f, 0, "sub", "badsum"), 0);
    stop_supervisor(f);
}

/* Starts mfpub: n QoS 1 test payloads from source src at rate msg/s over 8 topics
 * <prefix>0..7 */
static pid_t start_pub(fx *f, int port, const char *prefix, long n, int rate, int src,
                       const char *tag)
{
    char ports[16], ns[24], rs[16], srcs[16];
    snprintf(ports, sizeof(ports), "%d", port);
    snprintf(ns, sizeof(ns), "%ld", n);
    snprintf(rs, sizeof(rs), "%d", rate);
    snprintf(srcs, sizeof(srcs), "%d", src);
    char *argv[] = {mfpub, "-p", ports, "-q",           "1",  "-i", srcs, "-n", ns,
                    "-r",  rs,   "-T",  (char *)prefix, "-k", "8",  NULL};
    return spawn_logged(f, argv, tag);
}

static void test_faults_supervisor_kill9_under_load_loses_nothing(void **state)
{
    fx *f = *state;
    /* a persistent session: the broker keeps c1's messages while no instance runs */
    int port = start_pipeline(f, 0);
    const long n = 5000;
    pid_t sub = start_sub(f, port, "out/#", n, "sub");
    pid_t pub = start_pub(f, port, "in/t", n, 1000, 9, "pub");
    wait_router_in(f, 1500);
    /* the whole tree dies mid-stream, whatever was in its rings stays there */
    assert_int_equal(kill(f->sup, SIGKILL), 0);
    assert_int_equal(wait_exit(f->sup, 5000), 128 + SIGKILL);
    f->sup = 0;
    start_supervisor(f, 1);
    wait_running(f);
    assert_all_delivered(f, pub, sub, n, "kill -9 of the supervisor under load");
    char *s = slurp(f->err);
    char *r = strstr(s, "resumes ");
    fprintf(stderr, "%.60s\n", r ? r : "(nothing was queued in the rings)");
    free(s);
    stop_supervisor(f);
}

/* A metric of `mqttflow status --prom` for one stage ("worker", "0"), -1 when not found. */
static long metric(fx *f, const char *name, const char *stage, const char *id)
{
    char *out = NULL, want[160];
    char *argv[] = {mqttflow, "status", "--prom", "-s", f->sock, NULL};
    if (run_cmd(argv, &out, 10000) != 0) {
        free(out);
        return -1;
    }
    snprintf(want, sizeof(want), "%s{instance=\"%s\",stage=\"%s\",id=\"%s\"} ", name, f->instance,
             stage, id);
    char *p = strstr(out, want);
    long v = p ? strtol(p + strlen(want), NULL, 10) : -1;
    free(out);
    return v;
}

static void test_faults_poison_messages_restart_only_their_worker_at_once(void **state)
{
    fx *f = *state;
    require_real_stages();
    char segv[PATH_MAX + 64], echo[PATH_MAX + 64], text[PATH_MAX * 2 + 1536];
    callback_path(segv, sizeof(segv), "segv_every");
    callback_path(echo, sizeof(echo), "echo");
    int port = start_broker(f);
    /* two sequential rules, one per worker; the crashy one segfaults on every 250th message */
    snprintf(text, sizeof(text),
             "mqtt_clients:\n"
             "  - {client_id: \"c1_%s\", broker_url: \"mqtt://127.0.0.1\", port: %d,\n"
             "     clean_session: false, topics: [{name: \"in/#\", qos: 1}]}\n"
             "callbacks:\n"
             "  echo: {module: \"%s\", function: \"echo\"}\n"
             "  segv: {module: \"%s\", function: \"segv_every\"}\n"
             "rules:\n"
             "  - {rule: \"crashy\", topic: \"in/crash/#\", action: \"crash_chain\",\n"
             "     execution_mode: \"sequential\"}\n"
             "  - {rule: \"steady\", topic: \"in/steady/#\", action: \"steady_chain\",\n"
             "     execution_mode: \"sequential\"}\n"
             "processing_chains:\n"
             "  crash_chain:\n"
             "    - {step: \"custom_processor\",\n"
             "       config: {callback: \"segv\", topic: \"out/crash\", every: \"250\"}}\n"
             "  steady_chain:\n"
             "    - {step: \"custom_processor\", config: {callback: \"echo\", prefix: \"out/\"}}\n"
             "runtime:\n"
             "  instance: \"%s\"\n"
             "  workers: 2\n"
             "  max_attempts: 3\n"
             "  control_socket: \"%s\"\n"
             "  spool_dir: \"%s/spool\"\n"
             "  dead_letter: { dir: \"%s/dead\" }\n",
             f->instance, port, echo, segv, f->instance, f->sock, f->dir, f->dir);
    write_file(f->cfg, text, 0644);
    start_supervisor(f, 1);
    wait_running(f);
    pid_t s_crash = start_sub(f, port, "out/crash", 1992, "sub_crash");
    pid_t s_steady = start_sub(f, port, "out/in/steady/#", 2000, "sub_steady");
    char ports[16];
    snprintf(ports, sizeof(ports), "%d", port);
    char *argv[] = {mfpub,  "-p", ports,  "-q", "1",          "-i", "3", "-n",
                    "2000", "-r", "1000", "-t", "in/crash/a", "-j", NULL};
    pid_t p_crash = spawn_logged(f, argv, "pub_crash");
    pid_t p_steady = start_pub(f, port, "in/steady/", 2000, 1000, 4, "pub_steady");
    assert_int_equal(wait_exit(p_crash, 60000), 0);
    assert_int_equal(wait_exit(p_steady, 60000), 0);

    /* seq 0, 250, ..., 1750: 8 poison messages, each run 3 times then dead-lettered; every
     * other message of the crashy rule and all of the steady one come out */
    long crash_unique = result_field(f, s_crash, "sub_crash", "unique");
    long steady_unique = result_field(f, s_steady, "sub_steady", "unique");
    long w0 = metric(f, "mqttflow_stage_restarts_total", "worker", "0");
    long w1 = metric(f, "mqttflow_stage_restarts_total", "worker", "1");
    long dead = metric(f, "mqttflow_stage_dead_total", "worker", "0") +
                metric(f, "mqttflow_stage_dead_total", "worker", "1");
    fprintf(stderr,
            "poison every 250th: crashy %ld of 1992, steady %ld of 2000, restarts %ld/%ld, "
            "dead %ld\n",
            crash_unique, steady_unique, w0, w1, dead);
    assert_int_equal(crash_unique, 1992);
    assert_int_equal(steady_unique, 2000);
    assert_int_equal(result_field(f, 0, "sub_steady", "lost"), 0);
    assert_int_equal(dead, 8);
    /* only the crashy rule's worker restarted, once per run of a poison message, and it was
     * never failed for it */
    assert_true((w0 == 24 && w1 == 0) || (w0 == 0 && w1 == 24));
    assert_int_equal(wait_stage(f, w0 ? "worker 0" : "worker 1", "running", -1, NULL, 2000), 0);
    assert_int_equal(wait_text(f->err, "died in a callback: killed by SIGSEGV; restarting in", 100),
                     0);
    stop_supervisor(f);
}

static void test_faults_crash_loop_at_start_backs_off_fails_and_costs_no_cpu(void **state)
{
    fx *f = *state;
    long pid = 0;
    start_running(f, "router", &pid);
    /* from now on the router dies before it is ready, every time */
    char path[256];
    snprintf(path, sizeof(path), "%s/crashstart.mqttflow-router", f->fake);
    write_file(path, "", 0644);
    double cpu0 = cpu_of(f->sup);
    uint64_t t0 = now_ms();
    assert_int_equal(kill((pid_t)pid, SIGKILL), 0);
    assert_int_equal(wait_stage(f, "router", "failed", -1, NULL, 20000), 0);
    uint64_t t1 = now_ms();
    double cpu = cpu_of(f->sup) - cpu0, secs = (double)(t1 - t0) / 1000.0;
    fprintf(stderr,
            "crash loop: %.2f s to failed, %.3f s CPU (supervisor + reaped stages): %.2f%%\n", secs,
            cpu, 100.0 * cpu / secs);
    /* backoff 100+200+400+800+1600 ms between the five respawns, then failed */
    assert_true(t1 - t0 >= 3100);
    assert_true(cpu / secs < 0.05);
    char *out = NULL;
    assert_int_equal(cli(f, &out, "status", NULL, NULL), 0);
    assert_non_null(strstr(out, "router: failed: restart intensity: more than 5 restarts in 10 s"));
    free(out);
    char *s = slurp(f->fake_log);
    int starts = 0;
    for (char *p = s; (p = strstr(p, "start mqttflow-router")); p++)
        starts++;
    free(s);
    assert_int_equal(starts, 1 + 5); /* the first, then five respawns */
    /* failed means no process and no CPU until the cool-down retry (30 s) */
    double cpu1 = cpu_of(f->sup);
    uint64_t t2 = now_ms();
    assert_int_equal(wait_stage(f, "worker 0", "running", 0, NULL, 1000), 0);
    nap_ms(1000);
    assert_int_equal(wait_stage(f, "router", "failed", -1, NULL, 1000), 0);
    double idle = (cpu_of(f->sup) - cpu1) / ((double)(now_ms() - t2) / 1000.0);
    fprintf(stderr, "failed, idle: %.2f%% CPU\n", 100.0 * idle);
    assert_true(idle < 0.05);
    assert_int_equal(term_supervisor(f, 10000), 0);
    assert_int_equal(shm_left(f->instance), 0);
}

static void test_faults_real_worker_crash_loop_fails_under_5pct_cpu(void **state)
{
    fx *f = *state;
    (void)start_pipeline(f, 1);
    long pids[5];
    stage_pids(f, pids);
    /* worker 0's input ring disappears: every new worker 0 fails at start (exit 1, before
     * it is ready), the real binary's whole start-up cost paid each time */
    char name[SHM_NAME_MAX];
    assert_int_equal(names_worker_in(name, sizeof(name), f->instance, 0), 0);
    assert_int_equal(ring_unlink(name), 0);
    double cpu0 = cpu_of(f->sup);
    uint64_t t0 = now_ms();
    assert_int_equal(kill((pid_t)pids[2], SIGKILL), 0);
    assert_int_equal(wait_stage(f, "worker 0", "failed", -1, NULL, 20000), 0);
    uint64_t t1 = now_ms();
    double cpu = cpu_of(f->sup) - cpu0, secs = (double)(t1 - t0) / 1000.0;
    fprintf(stderr, "real worker crash loop: %.2f s to failed, %.3f s CPU: %.2f%%\n", secs, cpu,
            100.0 * cpu / secs);
    assert_true(t1 - t0 >= 3100);
    assert_true(cpu / secs < 0.05);
    char *out = NULL;
    assert_int_equal(cli(f, &out, "status", NULL, NULL), 0);
    assert_non_null(strstr(out, "worker 0: failed: restart intensity"));
    free(out);
    /* the other stages were not disturbed */
    long again = 0;
    assert_int_equal(wait_stage(f, "worker 1", "running", 0, &again, 1000), 0);
    assert_int_equal(again, pids[3]);
    assert_int_equal(wait_stage(f, "router", "running", 0, &again, 1000), 0);
    assert_int_equal(again, pids[1]);
    assert_true(term_supervisor(f, 20000) >= 0);
}

static void test_faults_module_init_failure_is_never_respawned(void **state)
{
    fx *f = *state;
    require_real_stages();
    char echo[PATH_MAX + 64], fail[PATH_MAX + 64], text[PATH_MAX * 2 + 1024];
    callback_path(echo, sizeof(echo), "echo");
    callback_path(fail, sizeof(fail), "fail_init");
    int port = start_broker(f); /* an ingress is ready once connected */
    const char *fmt = "mqtt_clients:\n"
                      "  - {client_id: \"c1_%s\", broker_url: \"mqtt://127.0.0.1\", port: %d,\n"
                      "     topics: [{name: \"in/#\", qos: 1}]}\n"
                      "callbacks:\n"
                      "  cb: {module: \"%s\", function: \"%s\"}\n"
                      "processing_chains:\n"
                      "  ch: [{step: \"custom_processor\", config: {callback: \"cb\"}}]\n"
                      "rules:\n"
                      "  - {rule: \"r\", topic: \"in/#\", action: \"ch\"}\n"
                      "runtime:\n"
                      "  instance: \"%s\"\n"
                      "  workers: 2\n"
                      "  control_socket: \"%s\"\n"
                      "  spool_dir: \"%s/spool\"\n"
                      "  dead_letter: { dir: \"%s/dead\" }\n";
    snprintf(text, sizeof(text), fmt, f->instance, port, echo, "echo", f->instance, f->sock, f->dir,
             f->dir);
    write_file(f->cfg, text, 0644);
    start_supervisor(f, 1);
    wait_running(f);
    /* the module is replaced by one whose mf_init fails; the worker is restarted */
    snprintf(text, sizeof(text), fmt, f->instance, port, fail, "never_called", f->instance, f->sock,
             f->dir, f->dir);
    write_file(f->cfg, text, 0644);
    double cpu0 = cpu_of(f->sup);
    uint64_t t0 = now_ms();
    char *out = NULL;
    assert_int_equal(cli(f, &out, "restart", "worker", "0"), 1);
    free(out);
    assert_int_equal(wait_stage(f, "worker 0", "failed", 1, NULL, 10000), 0);
    assert_int_equal(cli(f, &out, "status", NULL, NULL), 0);
    assert_non_null(strstr(out, "worker 0: failed: exit 2: configuration error, not restarted"));
    free(out);
    /* and it stays so: no respawn (restarts stays 1), no CPU */
    nap_ms(1500);
    assert_int_equal(wait_stage(f, "worker 0", "failed", 1, NULL, 1000), 0);
    double cpu = cpu_of(f->sup) - cpu0, secs = (double)(now_ms() - t0) / 1000.0;
    fprintf(stderr, "mf_init failure: %.3f s CPU over %.2f s (%.2f%%)\n", cpu, secs,
            100.0 * cpu / secs);
    assert_true(cpu / secs < 0.05);
    char *s = slurp(f->err);
    int starts = 0;
    for (char *p = s; (p = strstr(p, "fail_init: refusing on purpose")); p++)
        starts++;
    free(s);
    assert_int_equal(starts, 1);
    assert_int_equal(wait_stage(f, "worker 1", "running", 0, NULL, 1000), 0);
    /* the ingress of this config subscribes with QoS 1 and sets no clean_session: a
     * persistent session (issue 8), so its restart costs nothing and the answer carries no
     * clean-session warning */
    char ingress[64];
    snprintf(ingress, sizeof(ingress), "c1_%s", f->instance);
    assert_int_equal(cli(f, &out, "restart", "ingress", ingress), 0);
    assert_null(strstr(out, "has clean_session: true"));
    assert_non_null(strstr(out, "restarted ingress "));
    free(out);
    assert_true(term_supervisor(f, 20000) >= 0);
}

/* The router's "in" counter (messages it took from the ingress rings), -1 when not readable. */
static long router_in(fx *f)
{
    char *out = NULL;
    char *argv[] = {mqttflow, "status", "--prom", "-s", f->sock, NULL};
    if (run_cmd(argv, &out, 10000) != 0) {
        free(out);
        return -1;
    }
    long v = -1;
    for (char *p = out; (p = strstr(p, "mqttflow_stage_in_total{")); p++) {
        char *nl = strchr(p, '\n');
        char *r = strstr(p, "stage=\"router\"");
        if (r && (!nl || r < nl)) {
            char *sp = strchr(r, ' ');
            if (sp)
                v = strtol(sp + 1, NULL, 10);
            break;
        }
    }
    free(out);
    return v;
}

static void restart_when(fx *f, long router_mark, const char *a2, const char *a3)
{
    wait_router_in(f, router_mark);
    char *out = NULL;
    int rc = cli(f, &out, "restart", a2, a3);
    fprintf(stderr, "restart %s%s%s (router in %ld): %s", a2, a3 ? " " : "", a3 ? a3 : "",
            router_in(f), out);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "restarted "));
    free(out);
}

static void test_faults_live_restarts_under_load_lose_nothing(void **state)
{
    fx *f = *state;
    /* a persistent session: the broker keeps c1's QoS 1 messages while its ingress restarts */
    int port = start_pipeline(f, 0);

    const long n = 6000;
    pid_t sub = start_sub(f, port, "out/#", n, "sub");
    pid_t pub = start_pub(f, port, "in/t", n, 1000, 5, "pub");
    char ingress[64];
    snprintf(ingress, sizeof(ingress), "c1_%s", f->instance);
    restart_when(f, 500, "router", NULL);
    restart_when(f, 1500, "relay", NULL);
    restart_when(f, 2500, "workers", NULL);
    restart_when(f, 3500, "ingress", ingress);
    assert_all_delivered(f, pub, sub, n, "live restarts");
    char *out = NULL;
    assert_int_equal(cli(f, &out, "status", NULL, NULL), 0);
    fprintf(stderr, "%s", out);
    free(out);
    stop_supervisor(f);
}

int main(void)
{
    int rc = fixture_init();
    if (rc)
        return rc;
    snprintf(cbdir, sizeof(cbdir), "%s/../tests/callbacks", bindir);
    snprintf(mfpub, sizeof(mfpub), "%s/../tests/tools/mfpub", bindir);
    snprintf(mfsub, sizeof(mfsub), "%s/../tests/tools/mfsub", bindir);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_faults_supervisor_kill9_no_orphans_and_next_run_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_faults_supervisor_kill9_under_load_loses_nothing,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_faults_poison_messages_restart_only_their_worker_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_faults_crash_loop_at_start_backs_off_fails_and_costs_no_cpu, setup, teardown),
        cmocka_unit_test_setup_teardown(test_faults_real_worker_crash_loop_fails_under_5pct_cpu,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_faults_module_init_failure_is_never_respawned, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_faults_live_restarts_under_load_lose_nothing, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
