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
#include "clock.h"
#include "names.h"
#include "run_fixture.h"
#include "shm.h"
#include "stats.h"

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
    wait_stage_pids(f, "ingress client1", 0, pids, 15000);
    /* a crash: respawned after the 100 ms backoff, with a new pid and restarts 1 */
    (void)kill_and_wait_respawn(f, "worker 1", pids[3], 10000);
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

    stop_by_cli(f, 10000);
    assert_int_equal(shm_left(f->instance), 0);
    /* once it is gone, the CLI says so */
    assert_int_equal(cli(f, &out, "status", NULL, NULL), 1);
    free(out);
}

static void test_run_refuses_a_second_instance(void **state)
{
    fx *f = *state;
    start_running(f, NULL, NULL);
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
    assert_int_equal(term_supervisor(f, 10000), 0);
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
    start_running(f, NULL, NULL);
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
    long relay = 0;
    start_running(f, "relay", &relay);
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
    stop_by_cli(f, 10000);
    assert_int_equal(shm_left(f->instance), 0);
}

static void test_run_second_signal_kills_a_stage_that_does_not_stop(void **state)
{
    fx *f = *state;
    char path[256];
    snprintf(path, sizeof(path), "%s/hang.mqttflow-ingress 0", f->fake);
    write_file(path, "", 0644);
    start_running(f, NULL, NULL);
    uint64_t first = now_ms();
    kill(f->sup, SIGTERM);
    /* the ingress ignores SIGTERM: the stop waits for it (up to its 10 s deadline)... */
    assert_int_equal(wait_text(f->fake_log, "ignore mqttflow-ingress 0", 5000), 0);
    /* ...until a second signal a second or more later (issue 8: sooner it is the same request
     * delivered twice), which kills every stage at once: the person's second Ctrl-C */
    while (now_ms() - first < 1100)
        usleep(10000);
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
    stop_by_cli(f, 10000);
}

/* ---- the real stages against a real mosquitto ---- */

static void test_run_real_stages_with_mosquitto(void **state)
{
    fx *f = *state;
    require_real_stages();
    int port = start_broker(f);
    write_config(f, port, 2);
    start_supervisor(f, 1);
    if (wait_text(f->err, "running: 1 ingress, router, 2 workers, relay", 30000) != 0) {
        char *s = slurp(f->err);
        fprintf(stderr, "supervisor log:\n%s\n", s);
        free(s);
        fail_msg("the instance did not come up");
    }
    long pids[5];
    wait_stage_pids(f, "ingress client1", 0, pids, 5000);
    (void)kill_and_wait_respawn(f, "worker 0", pids[2], 15000);

    stop_by_cli(f, 30000);
    assert_int_equal(shm_left(f->instance), 0);
    for (int i = 0; i < 5; i++)
        assert_true(kill((pid_t)pids[i], 0) < 0 || i == 2);
}

int main(void)
{
    int rc = fixture_init();
    if (rc)
        return rc;
    const struct CMUnitTest tests[] = {
        TEST_ST(test_run_starts_in_reverse_order_and_stops_in_pipeline_order),
        TEST_ST(test_run_status_kill9_restart_and_stop),
        TEST_ST(test_run_refuses_a_second_instance),
        TEST_ST(test_run_stage_config_error_fails_the_start_with_exit_2),
        TEST_ST(test_run_crash_loop_ends_failed_with_reason),
        TEST_ST(test_run_reclaims_a_killed_instance),
        TEST_ST(test_run_second_signal_kills_a_stage_that_does_not_stop),
        TEST_ST(test_run_kills_a_worker_stuck_in_a_callback),
        TEST_ST(test_run_real_stages_with_mosquitto),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
