/* Unit tests of supervisor/ctl.c: the control socket's server and client ends over a real
 * AF_UNIX socket in a temporary folder (the server side runs in a thread). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "supervisor/ctl.h"

typedef struct fixture {
    char dir[64];
    char path[128];
    int lfd;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_ctl.XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/ctl.sock", f->dir);
    f->lfd = -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->lfd >= 0)
        close(f->lfd);
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Server thread: answers one request with "echo: LINE\n", or (silent) never answers. */
typedef struct server {
    int lfd;
    int silent;
    int rc; /* ctl_read's final result */
    char line[CTL_LINE_MAX];
    int hold_fd; /* silent mode: the connection kept open */
} server;

static void *serve_one(void *arg)
{
    server *s = arg;
    ctl_conn c;
    struct pollfd p = {.fd = s->lfd, .events = POLLIN};
    if (poll(&p, 1, 5000) != 1 || ctl_accept(s->lfd, &c) < 0) {
        s->rc = -99;
        return NULL;
    }
    int rc;
    do {
        struct pollfd q = {.fd = c.fd, .events = POLLIN};
        if (poll(&q, 1, 5000) != 1) {
            rc = -ETIMEDOUT;
            break;
        }
        rc = ctl_read(&c);
    } while (rc == 0);
    s->rc = rc;
    if (rc == 1)
        snprintf(s->line, sizeof(s->line), "%s", c.line);
    if (s->silent) {
        s->hold_fd = c.fd;
        return NULL;
    }
    if (rc == 1) {
        char reply[CTL_LINE_MAX + 16];
        snprintf(reply, sizeof(reply), "echo: %s\n", c.line);
        ctl_write_all(c.fd, reply, strlen(reply), 1000);
    }
    close(c.fd);
    return NULL;
}

static void test_ctl_round_trip_and_mode_0600(void **state)
{
    fixture *f = *state;
    assert_int_equal(ctl_listen(f->path, &f->lfd), 0);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);

    server s = {.lfd = f->lfd};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, serve_one, &s), 0);
    char *reply = NULL;
    assert_int_equal(ctl_request(f->path, "restart worker 2", 5000, &reply, NULL), 0);
    pthread_join(th, NULL);
    assert_int_equal(s.rc, 1);
    assert_string_equal(s.line, "restart worker 2");
    assert_string_equal(reply, "echo: restart worker 2\n");
    free(reply);
}

static void test_ctl_listen_refuses_a_live_socket_and_replaces_a_stale_one(void **state)
{
    fixture *f = *state;
    int other = -1;
    assert_int_equal(ctl_listen(f->path, &f->lfd), 0);
    assert_int_equal(ctl_listen(f->path, &other), -EADDRINUSE);
    assert_int_equal(other, -1);
    assert_int_equal(access(f->path, F_OK), 0); /* the live one's file is left alone */
    /* the server dies without unlinking: its file is stale now */
    close(f->lfd);
    f->lfd = -1;
    char *reply = NULL;
    assert_int_equal(ctl_request(f->path, "status", 1000, &reply, NULL), -ECONNREFUSED);
    assert_int_equal(ctl_listen(f->path, &f->lfd), 0);
    ctl_unlink(f->path);
    assert_int_equal(access(f->path, F_OK), -1);
}

static void test_ctl_request_without_server_is_enoent(void **state)
{
    fixture *f = *state;
    char *reply = NULL;
    assert_int_equal(ctl_request(f->path, "status", 1000, &reply, NULL), -ENOENT);
    assert_null(reply);
}

static void test_ctl_request_times_out(void **state)
{
    fixture *f = *state;
    assert_int_equal(ctl_listen(f->path, &f->lfd), 0);
    server s = {.lfd = f->lfd, .silent = 1, .hold_fd = -1};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, serve_one, &s), 0);
    char *reply = NULL;
    assert_int_equal(ctl_request(f->path, "stop", 300, &reply, NULL), -ETIMEDOUT);
    pthread_join(th, NULL);
    assert_string_equal(s.line, "stop");
    if (s.hold_fd >= 0)
        close(s.hold_fd);
}

static void test_ctl_read_rejects_an_overlong_line(void **state)
{
    fixture *f = *state;
    assert_int_equal(ctl_listen(f->path, &f->lfd), 0);
    server s = {.lfd = f->lfd};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, serve_one, &s), 0);
    char line[CTL_LINE_MAX * 2];
    memset(line, 'x', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\0';
    char *reply = NULL;
    int rc = ctl_request(f->path, line, 5000, &reply, NULL);
    pthread_join(th, NULL);
    assert_int_equal(s.rc, -EPROTO);
    /* the server closed without a reply: an empty answer or a reset, never an echo */
    if (rc == 0) {
        assert_string_equal(reply, "");
        free(reply);
    }
}

static void test_ctl_default_path_follows_xdg_runtime_dir(void **state)
{
    (void)state;
    char buf[256];
    setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
    assert_int_equal(ctl_default_path("demo", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "/run/user/1000/mqttflow-demo.sock");
    unsetenv("XDG_RUNTIME_DIR");
    assert_int_equal(ctl_default_path("demo", buf, sizeof(buf)), 0);
    /* issue 8 item 9: never /tmp, where another user's socket of that name blocks `run` */
    assert_null(strstr(buf, "/tmp/"));
    if (geteuid() == 0)
        assert_string_equal(buf, "/run/mqttflow/mqttflow-demo.sock");
    assert_int_equal(ctl_default_path("demo", buf, 10), -ENAMETOOLONG);
}

static void test_ctl_listen_rejects_a_too_long_path(void **state)
{
    (void)state;
    char path[200];
    memset(path, 'a', sizeof(path) - 1);
    path[0] = '/';
    path[sizeof(path) - 1] = '\0';
    int fd = -1;
    assert_int_equal(ctl_listen(path, &fd), -ENAMETOOLONG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ctl_round_trip_and_mode_0600, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_ctl_listen_refuses_a_live_socket_and_replaces_a_stale_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ctl_request_without_server_is_enoent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ctl_request_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ctl_read_rejects_an_overlong_line, setup, teardown),
        cmocka_unit_test(test_ctl_default_path_follows_xdg_runtime_dir),
        cmocka_unit_test(test_ctl_listen_rejects_a_too_long_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
