/* Unit tests of supervisor/spawn.c against real child processes: the stage command line, the
 * ready pipe, what the child inherits (signal mask, dispositions, fds, process group), CPU
 * pinning and reaping through the pidfd. The "stages" are small bash scripts in a temporary
 * folder named by MQTTFLOW_STAGE_DIR. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "supervisor/spawn.h"

static char dir[64];

static void write_script(const char *name, const char *body)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/bash\n%s", body);
    fclose(f);
    chmod(path, 0755);
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/test_spawn.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    setenv("MQTTFLOW_STAGE_DIR", dir, 1);
    /* says ready, records its arguments, then becomes `sleep` (exec keeps the mask and the
     * ignored signals, so /proc shows what the stage inherited) */
    write_script("ready-stage", "echo \"$*\" > \"$(dirname \"$0\")/args.$$\"\n"
                                "echo ready >&\"$MQTTFLOW_READY_FD\"\n"
                                "eval \"exec $MQTTFLOW_READY_FD>&-\"\n"
                                "exec sleep 30\n");
    write_script("silent-stage", "exec sleep 30\n");
    write_script("exit3-stage", "exit 3\n");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int wait_readable(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms);
}

static void finish(spawn_child *c)
{
    kill(c->pid, SIGKILL);
    assert_int_equal(wait_readable(c->pidfd, 5000), 1);
    int ws;
    assert_int_equal(spawn_reap(c->pidfd, &ws), 0);
    assert_true(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);
    close(c->pidfd);
    if (c->ready_fd >= 0)
        close(c->ready_fd);
}

/* The hex mask of a "Name:\tHEX" line of /proc/PID/status. */
static unsigned long long proc_mask(pid_t pid, const char *key)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    unsigned long long v = ~0ull;
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, key, strlen(key)))
            v = strtoull(line + strlen(key) + 1, NULL, 16);
    fclose(f);
    return v;
}

static void test_spawn_ready_pipe_and_command_line(void **state)
{
    (void)state;
    spawn_req req = {.binary = "ready-stage", .args = {"/etc/cfg.yaml", "3"}, .cpu = -1};
    spawn_child c;
    assert_int_equal(spawn_stage(&req, &c), 0);
    assert_true(c.pid > 0 && c.pidfd >= 0 && c.ready_fd >= 0);
    assert_int_equal(wait_readable(c.ready_fd, 5000), 1);
    char buf[32] = "";
    assert_int_equal(read(c.ready_fd, buf, sizeof(buf) - 1), 6);
    assert_string_equal(buf, "ready\n");
    /* the child closed its end and nobody else holds one: EOF */
    assert_int_equal(wait_readable(c.ready_fd, 5000), 1);
    assert_int_equal(read(c.ready_fd, buf, sizeof(buf)), 0);
    char path[128];
    snprintf(path, sizeof(path), "%s/args.%d", dir, (int)c.pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, sizeof(buf), f));
    fclose(f);
    assert_string_equal(buf, "/etc/cfg.yaml 3\n");
    /* still running: nothing to reap yet */
    int ws;
    assert_int_equal(spawn_reap(c.pidfd, &ws), -EAGAIN);
    finish(&c);
}

static void test_spawn_child_gets_clean_signals_and_its_own_group(void **state)
{
    (void)state;
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, &old); /* as the supervisor does for its signalfd */
    void (*oldpipe)(int) = signal(SIGPIPE, SIG_IGN);

    spawn_req req = {.binary = "ready-stage", .args = {"x"}, .cpu = -1};
    spawn_child c;
    assert_int_equal(spawn_stage(&req, &c), 0);
    assert_int_equal(wait_readable(c.ready_fd, 5000), 1); /* exec'ed sleep by now */
    assert_int_equal(proc_mask(c.pid, "SigBlk:"), 0);
    unsigned long long ign = proc_mask(c.pid, "SigIgn:");
    assert_int_equal(ign & (1ull << (SIGPIPE - 1)), 0);
    assert_int_equal(ign & (1ull << (SIGTERM - 1)), 0);
    assert_int_equal(getpgid(c.pid), c.pid);
    finish(&c);

    signal(SIGPIPE, oldpipe);
    sigprocmask(SIG_SETMASK, &old, NULL);
}

/* How many fds of process pid are the pipe whose other end is fd (same inode). */
static int fds_on_pipe(pid_t pid, int fd)
{
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    char want[64], path[64];
    snprintf(want, sizeof(want), "pipe:[%llu]", (unsigned long long)st.st_ino);
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char lpath[320], target[128] = "";
        if (e->d_name[0] == '.')
            continue;
        snprintf(lpath, sizeof(lpath), "%s/%s", path, e->d_name);
        ssize_t k = readlink(lpath, target, sizeof(target) - 1);
        if (k > 0 && !strcmp(target, want))
            n++;
    }
    closedir(d);
    return n;
}

static void test_spawn_does_not_leak_fds_between_stages(void **state)
{
    (void)state;
    spawn_req a = {.binary = "silent-stage", .args = {"a"}, .cpu = -1};
    spawn_req b = {.binary = "silent-stage", .args = {"b"}, .cpu = -1};
    spawn_child ca, cb;
    assert_int_equal(spawn_stage(&a, &ca), 0);
    assert_int_equal(spawn_stage(&b, &cb), 0);
    /* each stage holds its own ready pipe's write end, once, and never the other's (the
     * supervisor's ends are close-on-exec; so is everything else it opens) */
    assert_int_equal(fds_on_pipe(ca.pid, ca.ready_fd), 1);
    assert_int_equal(fds_on_pipe(cb.pid, cb.ready_fd), 1);
    assert_int_equal(fds_on_pipe(cb.pid, ca.ready_fd), 0);
    assert_int_equal(fds_on_pipe(ca.pid, cb.ready_fd), 0);
    /* and this process holds no write end: the read end sees EOF once the child is gone */
    assert_int_equal(fds_on_pipe(getpid(), ca.ready_fd), 1); /* the read end itself */
    finish(&ca);
    char c;
    assert_int_equal(read(cb.ready_fd, &c, 1), -1); /* b alive: nothing yet, no EOF */
    assert_int_equal(errno, EAGAIN);
    finish(&cb);
}

static void test_spawn_pins_to_a_cpu(void **state)
{
    (void)state;
    cpu_set_t mine;
    assert_int_equal(sched_getaffinity(0, sizeof(mine), &mine), 0);
    int cpu = -1;
    for (int i = CPU_SETSIZE - 1; i >= 0 && cpu < 0; i--)
        if (CPU_ISSET(i, &mine))
            cpu = i;
    spawn_req req = {.binary = "silent-stage", .args = {"x"}, .cpu = cpu};
    spawn_child c;
    assert_int_equal(spawn_stage(&req, &c), 0);
    cpu_set_t got;
    assert_int_equal(sched_getaffinity(c.pid, sizeof(got), &got), 0);
    assert_int_equal(CPU_COUNT(&got), 1);
    assert_true(CPU_ISSET(cpu, &got));
    finish(&c);
}

static void test_spawn_reaps_the_exit_status(void **state)
{
    (void)state;
    spawn_req req = {.binary = "exit3-stage", .cpu = -1};
    spawn_child c;
    assert_int_equal(spawn_stage(&req, &c), 0);
    assert_int_equal(wait_readable(c.pidfd, 5000), 1);
    int ws;
    assert_int_equal(spawn_reap(c.pidfd, &ws), 0);
    assert_true(WIFEXITED(ws));
    assert_int_equal(WEXITSTATUS(ws), 3);
    /* the ready pipe just ends */
    char b;
    assert_int_equal(read(c.ready_fd, &b, 1), 0);
    close(c.pidfd);
    close(c.ready_fd);
}

static void test_spawn_missing_binary_fails_cleanly(void **state)
{
    (void)state;
    spawn_req req = {.binary = "no-such-stage", .cpu = -1};
    spawn_child c;
    int before = 0, after = 0;
    DIR *d = opendir("/proc/self/fd");
    while (readdir(d))
        before++;
    closedir(d);
    assert_int_equal(spawn_stage(&req, &c), -ENOENT);
    d = opendir("/proc/self/fd");
    while (readdir(d))
        after++;
    closedir(d);
    assert_int_equal(before, after); /* no fd left behind */
}

static void test_spawn_stage_dir_defaults_to_the_binary_folder(void **state)
{
    (void)state;
    char buf[4096], exe[4096];
    unsetenv("MQTTFLOW_STAGE_DIR");
    assert_int_equal(spawn_stage_dir(buf, sizeof(buf)), 0);
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    assert_true(n > 0);
    exe[n] = '\0';
    *strrchr(exe, '/') = '\0';
    assert_string_equal(buf, exe);
    setenv("MQTTFLOW_STAGE_DIR", dir, 1);
    assert_int_equal(spawn_stage_dir(buf, sizeof(buf)), 0);
    assert_string_equal(buf, dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spawn_ready_pipe_and_command_line),
        cmocka_unit_test(test_spawn_child_gets_clean_signals_and_its_own_group),
        cmocka_unit_test(test_spawn_does_not_leak_fds_between_stages),
        cmocka_unit_test(test_spawn_pins_to_a_cpu),
        cmocka_unit_test(test_spawn_reaps_the_exit_status),
        cmocka_unit_test(test_spawn_missing_binary_fails_cleanly),
        cmocka_unit_test(test_spawn_stage_dir_defaults_to_the_binary_folder),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
