/* `mqttflow run` against a hostile neighbour and an unlucky operator (issue 8): real supervisor,
 * fake stages (run_fixture.h), a real control socket and real segments.
 *   - idle connections on the control socket do not lock `status` out (item 14);
 *   - `status CONFIG` works without the service's secret in the environment (item 15);
 *   - a control_socket path over 107 bytes: exit 2 before anything is created;
 *   - a segment planted with a header naming a live process that is not ours does not make
 *     the instance "already running" (item 9).
 */
#include <sys/un.h>

#include "run_fixture.h"
#include "shm.h"

static int connect_idle(const char *path)
{
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    assert_true(strlen(path) < sizeof(sa.sun_path));
    memcpy(sa.sun_path, path, strlen(path) + 1);
    assert_int_equal(connect(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return s;
}

static void test_run_idle_control_connections_do_not_block_status(void **state)
{
    fx *f = *state;
    start_supervisor(f, 0);
    assert_int_equal(wait_text(f->err, "running:", 15000), 0);
    int idle[40];
    for (int i = 0; i < 40; i++)
        idle[i] = connect_idle(f->sock);
    /* status still answers, at once, with 40 idle connections open */
    char *out = NULL;
    uint64_t t0 = now_ms();
    assert_int_equal(cli(f, &out, "status", NULL, NULL), 0);
    assert_non_null(strstr(out, "running"));
    free(out);
    fprintf(stderr, "status with 40 idle connections: %llu ms\n",
            (unsigned long long)(now_ms() - t0));
    /* and the idle ones are closed by the server after the read timeout */
    struct pollfd pf = {.fd = idle[39], .events = POLLIN};
    assert_int_equal(poll(&pf, 1, 15000), 1);
    char c;
    assert_int_equal(read(idle[39], &c, 1) <= 0 || c == 'E', 1);
    for (int i = 0; i < 40; i++)
        close(idle[i]);
    stop_by_cli(f, 10000);
}

static void test_run_status_config_without_the_secret(void **state)
{
    fx *f = *state;
    char text[2048];
    snprintf(text, sizeof(text),
             "mqtt_clients:\n"
             "  - {client_id: client1, broker_url: \"mqtt://127.0.0.1\", port: 1883,\n"
             "     username: u, password_env: H8_TEST_SECRET, topics: [{name: \"s/#\"}]}\n"
             "rules:\n"
             "  - {rule: fwd, topic: \"s/#\", action: ch}\n"
             "processing_chains:\n"
             "  ch:\n"
             "    - {step: relay, config: {target_client_id: client1, target_topic: x}}\n"
             "runtime:\n"
             "  instance: \"%s\"\n"
             "  control_socket: \"%s\"\n"
             "  spool_dir: \"%s/spool\"\n"
             "  dead_letter: {dir: \"%s/dead\"}\n",
             f->instance, f->sock, f->dir, f->dir);
    write_file(f->cfg, text, 0644);
    setenv("H8_TEST_SECRET", "s3cret", 1);
    start_supervisor(f, 0);
    assert_int_equal(wait_text(f->err, "running:", 15000), 0);
    unsetenv("H8_TEST_SECRET");
    char *argv[] = {mqttflow, "status", f->cfg, NULL};
    char *out = NULL;
    assert_int_equal(run_cmd(argv, &out, 10000), 0);
    assert_non_null(strstr(out, "running"));
    free(out);
    char *stop[] = {mqttflow, "stop", f->cfg, NULL};
    assert_int_equal(run_cmd(stop, &out, 20000), 0);
    free(out);
    assert_int_equal(wait_exit(f->sup, 10000), 0);
    f->sup = 0;
}

static void test_run_long_control_socket_exits_2(void **state)
{
    fx *f = *state;
    char longsock[200];
    snprintf(longsock, sizeof(longsock), "%s/%0120d.sock", f->dir, 0);
    snprintf(f->sock, sizeof(f->sock), "%.127s", longsock);
    write_config(f, 1883, 1);
    start_supervisor(f, 0);
    assert_int_equal(wait_exit(f->sup, 10000), 2);
    f->sup = 0;
    assert_int_equal(shm_left(f->instance), 0);
    char *err = slurp(f->err);
    assert_non_null(strstr(err, "runtime.control_socket: the path is"));
    free(err);
}

/* A stats segment planted in advance (by another user when we are root) whose header names a
 * live process that is not an mqttflow supervisor (pid 1). */
static void test_run_planted_segment_does_not_block(void **state)
{
    fx *f = *state;
    char name[128], path[160];
    snprintf(name, sizeof(name), "mqttflow.%s.stats", f->instance);
    shm *s = NULL;
    assert_int_equal(shm_create(name, SHM_KIND_STATS, 1, 4096, &s), 0);
    shm_hdr *h = shm_base(s);
    h->owner_pid = 1;
    assert_int_equal(testlib_proc_start_time(1, &h->owner_start), 0);
    shm_detach(s);
    snprintf(path, sizeof(path), "/dev/shm/%s", name);
    if (geteuid() == 0)
        assert_int_equal(chown(path, 65534, 65534), 0);
    start_supervisor(f, 0);
    assert_int_equal(wait_text(f->err, "running:", 15000), 0);
    char *out = NULL;
    assert_int_equal(cli(f, &out, "stop", NULL, NULL), 0);
    free(out);
    assert_int_equal(wait_exit(f->sup, 10000), 0);
    f->sup = 0;
}

int main(void)
{
    int rc = fixture_init();
    if (rc)
        return rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_run_idle_control_connections_do_not_block_status,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_status_config_without_the_secret, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_long_control_socket_exits_2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_planted_segment_does_not_block, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
