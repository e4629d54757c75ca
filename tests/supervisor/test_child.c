/* Unit tests of the supervisor's child state machine (supervisor/child.c): the restart
 * policy with no processes and no clock, only events at chosen times. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "supervisor/child.h"

#define MS 1000000ull
#define S  1000000000ull

static int exited(int code)
{
    return (code & 0xff) << 8;
}

static int killed(int sig)
{
    return sig & 0x7f;
}

/* Brings a fresh child to RUNNING with pid at time t. */
static void run_at(child *c, pid_t pid, uint64_t t)
{
    assert_int_equal(child_event(c, CHILD_EV_START, 0, t), CHILD_ACT_SPAWN);
    child_spawned(c, pid, t);
    assert_int_equal(c->state, CHILD_STARTING);
    assert_int_equal(child_event(c, CHILD_EV_READY, 0, t), CHILD_ACT_NONE);
    assert_int_equal(c->state, CHILD_RUNNING);
}

/* From BACKOFF at its deadline: respawn and get ready again at that time, returned. */
static uint64_t respawn(child *c, pid_t pid)
{
    uint64_t t = c->deadline_ns;
    assert_int_equal(c->state, CHILD_BACKOFF);
    assert_int_equal(child_event(c, CHILD_EV_TIMER, 0, t), CHILD_ACT_SPAWN);
    child_spawned(c, pid, t);
    assert_int_equal(child_event(c, CHILD_EV_READY, 0, t), CHILD_ACT_NONE);
    return t;
}

static void test_child_backoff_doubles_to_cap(void **state)
{
    (void)state;
    child c;
    child_init(&c);
    run_at(&c, 100, 0);
    /* crashes 3 s after each respawn: never more than 4 in the 10 s window, never stable */
    const uint64_t want[] = {100 * MS,  200 * MS,  400 * MS,  800 * MS, 1600 * MS,
                             3200 * MS, 5000 * MS, 5000 * MS, 5000 * MS};
    uint64_t t = 3 * S;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_int_equal(child_event(&c, CHILD_EV_EXIT, exited(1), t), CHILD_ACT_NONE);
        assert_int_equal(c.state, CHILD_BACKOFF);
        assert_int_equal(c.pid, 0);
        assert_true(child_has_deadline(&c));
        assert_int_equal(c.deadline_ns - t, want[i]);
        assert_string_equal(c.reason, "exit 1");
        t = respawn(&c, (pid_t)(200 + i)) + 3 * S;
        assert_int_equal(c.restarts, i + 1);
    }
}

static void test_child_intensity_fails_after_five_quick_restarts(void **state)
{
    (void)state;
    child c;
    child_init(&c);
    run_at(&c, 100, 0);
    uint64_t t = 10 * MS;
    for (int i = 0; i < CHILD_MAX_RESTARTS; i++) {
        child_event(&c, CHILD_EV_EXIT, killed(SIGSEGV), t);
        assert_int_equal(c.state, CHILD_BACKOFF);
        t = respawn(&c, 101 + i) + 10 * MS;
    }
    /* the sixth death within 10 s: failed, not backing off */
    assert_true(t < CHILD_WINDOW_NS);
    assert_int_equal(child_event(&c, CHILD_EV_EXIT, killed(SIGSEGV), t), CHILD_ACT_NONE);
    assert_int_equal(c.state, CHILD_FAILED);
    assert_true(child_is_down(&c));
    assert_non_null(strstr(c.reason, "restart intensity"));
    assert_non_null(strstr(c.reason, "SIGSEGV"));
    assert_int_equal(c.restarts, CHILD_MAX_RESTARTS);
    /* it stays failed for the cool-down, then gets a fresh start */
    assert_true(child_has_deadline(&c));
    assert_int_equal(c.deadline_ns, t + CHILD_COOLDOWN_NS);
    assert_int_equal(child_event(&c, CHILD_EV_TIMER, 0, t + CHILD_COOLDOWN_NS), CHILD_ACT_SPAWN);
    assert_int_equal(c.state, CHILD_STARTING);
    assert_int_equal(c.restarts, CHILD_MAX_RESTARTS + 1);
    child_spawned(&c, 300, t + CHILD_COOLDOWN_NS);
    child_event(&c, CHILD_EV_READY, 0, t + CHILD_COOLDOWN_NS);
    /* the old crashes are forgiven: the next one backs off 100 ms again */
    uint64_t t2 = t + CHILD_COOLDOWN_NS + 10 * MS;
    child_event(&c, CHILD_EV_EXIT, exited(1), t2);
    assert_int_equal(c.state, CHILD_BACKOFF);
    assert_int_equal(c.deadline_ns - t2, CHILD_BACKOFF_MIN_NS);
}

static void test_child_deaths_in_a_record_restart_at_once_within_their_own_limit(void **state)
{
    (void)state;
    child c;
    child_init(&c);
    run_at(&c, 100, 0);
    uint64_t t = 10 * MS;
    /* a poison message every so often: each death in a record comes back after 100 ms, the
     * backoff does not grow and the ordinary limit of 5 is not what counts */
    for (int i = 0; i < CHILD_MAX_RECORD_RESTARTS; i++) {
        c.in_record = 1;
        assert_int_equal(child_event(&c, CHILD_EV_EXIT, killed(SIGSEGV), t), CHILD_ACT_NONE);
        assert_int_equal(c.state, CHILD_BACKOFF);
        assert_int_equal(c.deadline_ns - t, CHILD_BACKOFF_MIN_NS);
        assert_non_null(strstr(c.reason, "running a record"));
        t = respawn(&c, 101 + i) + 10 * MS;
    }
    assert_true(t < CHILD_WINDOW_NS);
    /* an ordinary death in between still backs off from 100 ms, its own count unchanged */
    assert_int_equal(child_event(&c, CHILD_EV_EXIT, exited(1), t), CHILD_ACT_NONE);
    assert_int_equal(c.state, CHILD_BACKOFF);
    assert_int_equal(c.deadline_ns - t, CHILD_BACKOFF_MIN_NS);
    t = respawn(&c, 200) + 10 * MS;
    /* a callback that crashes on every message: past its limit within the window, failed */
    c.in_record = 1;
    assert_int_equal(child_event(&c, CHILD_EV_EXIT, killed(SIGSEGV), t), CHILD_ACT_NONE);
    assert_int_equal(c.state, CHILD_FAILED);
    assert_non_null(strstr(c.reason, "restart intensity: more than 30 deaths running records"));
    assert_true(child_has_deadline(&c));
    assert_int_equal(c.in_record, 0);
}

static void test_child_stop_cancels_the_cooldown(void **state)
{
    (void)state;
    child c;
    child_init(&c);
    run_at(&c, 100, 0);
    uint64_t t = 10 * MS;
    for (int i = 0; i <= CHILD_MAX_RESTARTS; i++) {
        child_event(&c, CHILD_EV_EXIT, exited(1), t);
        if (c.state != CHILD_BACKOFF)
            break;
        t = respawn(&c, 101 + i) + 10 * MS;
    }
    assert_int_equal(c.state, CHILD_FAILED);
    assert_int_equal(child_event(&c, CHILD_EV_STOP, 0, t + S), CHILD_ACT_NONE);
    assert_false(child_has_deadline(&c));
    assert_int_equal(child_event(&c, CHILD_EV_TIMER, 0, t + CHILD_COOLDOWN_NS), CHILD_ACT_NONE);
    assert_int_equal(c.state, CHILD_FAILED);
}

static void test_child_restarts_spread_over_time_never_fail(void **state)
{
    (void)state;
    child c;
    child_init(&c);
    run_at(&c, 100, 0);
    uint64_t t = 2500 * MS; /* one death 2.5 s after each respawn: at most 4 per 10 s */
    for (int i = 0; i < 20; i++) {
        child_event(&c, CHILD_EV_EXIT, exited(1), t);
        assert_int_equal(c.state, CHILD_BACKOFF);
        t = respawn(&c, 101 + i) + 2500 * MS;
    }
    assert_int_equal(c.restarts, 20);
}

static void test_child_exit_config_is_not_respawned(void **state)
{
    (void)state;
    child c;
    child_init(&c);
    run_at(&c, 100, 0);
    assert_int_equal(child_event(&c, CHILD_EV_EXIT, exited(2), 5 * S), CHILD_ACT_NONE);
    assert_int_equal(c.state, CHILD_FAILED);
    assert_false(child_has_deadline(&c));
    assert_non_null(strstr(c.reason, "exit 2"));
    assert_non_null(strstr(c.reason, "configuration"));
    assert_int_equal(c.restarts, 0);
    /* never on its own, however long we wait */
    assert_int_equal(child_event(&c, CHILD_EV_TIMER, 0, 3600 * S), CHILD_ACT_NONE);
    assert_int_equal(c.state, CHILD_FAILED);
    /* also when it happens during start-up */
    child_init(&c);
    child_event(&c, CHILD_EV_START, 0, 0);
    child_spawned(&c, 7, 0);
    assert_int_equal(child_event(&c, CHILD_EV_EXIT, exited(2), 1 * MS), CHILD_ACT_NONE);
    assert_int_equal(c.state, CHILD_FAILED);
}

static void test_child_exec_failure_is_not_respawned(void **state)
{
    (void)state;
    child c;
    child_init(&c);
    child_event(&c, CHILD_EV_START, 0, 0);
    child_spawned(&c, 7, 0);
    child_event(&c, CHILD_EV_EXIT, exited(127), 1 * MS);
    assert_int_equal(c.state, CHILD_FAILED);
    assert_non_null(strstr(c.reason, "127"));
}

static void test_child_spawn_failure_backs_off(void **state)
{
    (void)state;
    child c;
    child_init(&c);
    assert_int_equal(child_event(&c, CHILD_EV_START, 0, 0), CHILD_ACT_SPAWN);
    /* posix_spawn failed: the loop reports an EXIT with status -1 */
    assert_int_equal(child_event(&c, CHILD_EV_EXIT, -1, 0), CHILD_ACT_NONE);
    assert_int_equal(c.state, CHILD_BACKOFF);
    assert_string_equal(c.reason, "spawn failed");
    assert_int_equal(c.deadline_ns, CHILD_BACKOFF_MIN_NS);
}

static void test_child_requested_restart_respawns_at_once(void **state)
{
    (void)state;
    child c;
    child_init(&c);
    run_at(&c, 100, 0);
    assert_int_equal(child_event(&c, CHILD_EV_RESTART, 0, 1 * S), CHILD_ACT_TERM);
    assert_int_equal(c.state, CHILD_STOPPING);
    assert_int_equal(c.deadline_ns, 1 * S + CHILD_STOP_TIMEOUT_NS);
    /* it drains and exits 0: spawned again immediately, no backoff */
    assert_int_equal(child_event(&c, CHILD_EV_EXIT, exited(0), 1 * S + 5 * MS), CHILD_ACT_SPAWN);
    assert_int_equal(c.restarts, 1);
    child_spawned(&c, 101, 1 * S + 5 * MS);
    assert_int_equal(child_event(&c, CHILD_EV_READY, 0, 1 * S + 9 * MS), CHILD_ACT_NONE);
    assert_int_equal(c.state, CHILD_RUNNING);
    assert_int_equal(c.pid, 101);
    /* requested restarts do not count against the intensity limit */
    for (int i = 0; i < 10; i++) {
        uint64_t t = 2 * S + (uint64_t)i * 10 * MS;
        assert_int_equal(child_event(&c, CHILD_EV_RESTART, 0, t), CHILD_ACT_TERM);
        assert_int_equal(child_event(&c, CHILD_EV_EXIT, exited(0), t + MS), CHILD_ACT_SPAWN);
        child_spawned(&c, 200 + i, t + MS);
        child_event(&c, CHILD_EV_READY, 0, t + 2 * MS);
        assert_int_equal(c.state, CHILD_RUNNING);
    }
    assert_int_equal(c.restarts, 11);
}

static void test_child_stop_ends_stopped_and_kills_after_deadline(void **state)
{
    (void)state;
    child c;
    child_init(&c);
    run_at(&c, 100, 0);
    assert_int_equal(child_event(&c, CHILD_EV_STOP, 0, 1 * S), CHILD_ACT_TERM);
    assert_int_equal(c.state, CHILD_STOPPING);
    /* it does not exit in time */
    assert_int_equal(child_event(&c, CHILD_EV_TIMER, 0, 1 * S + CHILD_STOP_TIMEOUT_NS),
                     CHILD_ACT_KILL);
    assert_int_equal(child_event(&c, CHILD_EV_EXIT, killed(SIGKILL), 12 * S), CHILD_ACT_NONE);
    assert_int_equal(c.state, CHILD_STOPPED);
    assert_true(child_is_down(&c));
    assert_int_equal(c.restarts, 0);
}

static void test_child_stop_during_backoff_cancels_respawn(void **state)
{
    (void)state;
    child c;
    child_init(&c);
    run_at(&c, 100, 0);
    child_event(&c, CHILD_EV_EXIT, exited(1), 1 * S);
    assert_int_equal(c.state, CHILD_BACKOFF);
    assert_int_equal(child_event(&c, CHILD_EV_STOP, 0, 1 * S + MS), CHILD_ACT_NONE);
    assert_int_equal(c.state, CHILD_STOPPED);
    assert_int_equal(child_event(&c, CHILD_EV_TIMER, 0, 2 * S), CHILD_ACT_NONE);
    assert_int_equal(c.state, CHILD_STOPPED);
}

static void test_child_stop_during_requested_restart_wins(void **state)
{
    (void)state;
    child c;
    child_init(&c);
    run_at(&c, 100, 0);
    child_event(&c, CHILD_EV_RESTART, 0, 1 * S);
    assert_int_equal(child_event(&c, CHILD_EV_STOP, 0, 1 * S + MS), CHILD_ACT_NONE);
    assert_int_equal(child_event(&c, CHILD_EV_EXIT, exited(0), 1 * S + 2 * MS), CHILD_ACT_NONE);
    assert_int_equal(c.state, CHILD_STOPPED);
}

static void test_child_ready_timeout_kills_then_backs_off(void **state)
{
    (void)state;
    child c;
    child_init(&c);
    child_event(&c, CHILD_EV_START, 0, 0);
    child_spawned(&c, 100, 0);
    assert_int_equal(c.deadline_ns, CHILD_READY_TIMEOUT_NS);
    assert_int_equal(child_event(&c, CHILD_EV_TIMER, 0, CHILD_READY_TIMEOUT_NS), CHILD_ACT_KILL);
    assert_non_null(strstr(c.reason, "ready"));
    child_event(&c, CHILD_EV_EXIT, killed(SIGKILL), CHILD_READY_TIMEOUT_NS + MS);
    assert_int_equal(c.state, CHILD_BACKOFF);
}

static void test_child_backoff_resets_after_stable_run(void **state)
{
    (void)state;
    child c;
    child_init(&c);
    run_at(&c, 100, 0);
    uint64_t t = 1 * S;
    for (int i = 0; i < 4; i++) { /* backoff grows to 1.6 s */
        child_event(&c, CHILD_EV_EXIT, exited(1), t);
        t = respawn(&c, 101 + i) + 1 * S;
    }
    assert_int_equal(c.backoff_ns, 1600 * MS);
    /* up for longer than CHILD_STABLE_NS: the next death waits 100 ms again */
    t = c.started_ns + CHILD_STABLE_NS + 1 * S;
    child_event(&c, CHILD_EV_EXIT, exited(1), t);
    assert_int_equal(c.state, CHILD_BACKOFF);
    assert_int_equal(c.deadline_ns - t, CHILD_BACKOFF_MIN_NS);
}

static void test_child_failed_restarts_on_request(void **state)
{
    (void)state;
    child c;
    child_init(&c);
    run_at(&c, 100, 0);
    child_event(&c, CHILD_EV_EXIT, exited(2), 1 * S);
    assert_int_equal(c.state, CHILD_FAILED);
    assert_int_equal(child_event(&c, CHILD_EV_RESTART, 0, 2 * S), CHILD_ACT_SPAWN);
    assert_int_equal(c.state, CHILD_STARTING);
    assert_string_equal(c.reason, "");
    child_spawned(&c, 101, 2 * S);
    child_event(&c, CHILD_EV_READY, 0, 2 * S);
    assert_int_equal(c.state, CHILD_RUNNING);
}

static void test_child_late_events_are_ignored(void **state)
{
    (void)state;
    child c;
    child_init(&c);
    assert_int_equal(child_event(&c, CHILD_EV_READY, 0, 0), CHILD_ACT_NONE);
    assert_int_equal(child_event(&c, CHILD_EV_EXIT, exited(1), 0), CHILD_ACT_NONE);
    assert_int_equal(c.state, CHILD_IDLE);
    run_at(&c, 100, 0);
    child_event(&c, CHILD_EV_EXIT, exited(1), 1 * S);
    assert_int_equal(child_event(&c, CHILD_EV_READY, 0, 1 * S), CHILD_ACT_NONE);
    assert_int_equal(c.state, CHILD_BACKOFF);
    assert_string_equal(child_state_name(CHILD_BACKOFF), "backoff");
}

static void test_child_describe_status(void **state)
{
    (void)state;
    char buf[48];
    child_describe_status(exited(3), buf, sizeof(buf));
    assert_string_equal(buf, "exit 3");
    child_describe_status(killed(SIGKILL), buf, sizeof(buf));
    assert_string_equal(buf, "killed by SIGKILL");
    child_describe_status(-1, buf, sizeof(buf));
    assert_string_equal(buf, "spawn failed");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_child_backoff_doubles_to_cap),
        cmocka_unit_test(test_child_intensity_fails_after_five_quick_restarts),
        cmocka_unit_test(test_child_deaths_in_a_record_restart_at_once_within_their_own_limit),
        cmocka_unit_test(test_child_stop_cancels_the_cooldown),
        cmocka_unit_test(test_child_restarts_spread_over_time_never_fail),
        cmocka_unit_test(test_child_exit_config_is_not_respawned),
        cmocka_unit_test(test_child_exec_failure_is_not_respawned),
        cmocka_unit_test(test_child_spawn_failure_backs_off),
        cmocka_unit_test(test_child_requested_restart_respawns_at_once),
        cmocka_unit_test(test_child_stop_ends_stopped_and_kills_after_deadline),
        cmocka_unit_test(test_child_stop_during_backoff_cancels_respawn),
        cmocka_unit_test(test_child_stop_during_requested_restart_wins),
        cmocka_unit_test(test_child_ready_timeout_kills_then_backs_off),
        cmocka_unit_test(test_child_backoff_resets_after_stable_run),
        cmocka_unit_test(test_child_failed_restarts_on_request),
        cmocka_unit_test(test_child_late_events_are_ignored),
        cmocka_unit_test(test_child_describe_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
