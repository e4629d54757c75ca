/* Tests of common/shm: creation mode and exclusivity, stale-segment reclaim (dead owner, pid
 * reused with another start time), attach checks. Real segments under /dev/shm, named after
 * the test process's pid; each test unlinks its own in teardown. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "shm.h"
#include "tests/tools/testlib.h"

static char g_name[128];

static int setup(void **state)
{
    static int n;
    (void)state;
    snprintf(g_name, sizeof(g_name), "mqttflow.test%d.shm%d", (int)getpid(), n++);
    shm_unlink_name(g_name);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    shm_unlink_name(g_name);
    return 0;
}

/* Waits for child pid, which must exit with status 0. */
static void expect_exit_0(pid_t pid)
{
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* A child creates segment g_name (kind, version 1, size), writes 0xcd over bytes 64..127 and
 * exits without unlinking it. */
static void create_and_die(uint32_t kind, size_t size)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        shm *c;
        if (shm_create(g_name, kind, 1, size, &c) != 0)
            _exit(1);
        memset((char *)shm_base(c) + 64, 0xcd, 64);
        _exit(0);
    }
    expect_exit_0(pid);
}

static void test_shm_create_mode_0600_despite_umask(void **state)
{
    (void)state;
    shm *s;
    mode_t old = umask(0277); /* would turn 0600 into 0400 */
    int rc = shm_create(g_name, SHM_KIND_STATS, 7, 5000, &s);
    umask(old);
    assert_int_equal(rc, 0);

    char path[256];
    struct stat st;
    snprintf(path, sizeof(path), "/dev/shm/%s", g_name);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_size, 8192); /* rounded up to pages */

    const shm_hdr *h = shm_base(s);
    assert_true(h->magic == SHM_MAGIC);
    assert_int_equal(h->kind, SHM_KIND_STATS);
    assert_int_equal(h->version, 7);
    assert_int_equal(h->size, 8192);
    assert_int_equal(h->owner_pid, (uint64_t)getpid());
    assert_true(shm_owner_is_alive(h));
    assert_int_equal(shm_size(s), 8192);
    assert_string_equal(shm_name(s), g_name);
    shm_detach(s);
}

static void test_shm_create_live_owner_gives_eexist(void **state)
{
    (void)state;
    shm *s, *s2 = NULL;
    assert_int_equal(shm_create(g_name, SHM_KIND_RING, 1, 4096, &s), 0);
    memset((char *)shm_base(s) + 64, 0xab, 64);
    assert_int_equal(shm_create(g_name, SHM_KIND_RING, 1, 4096, &s2), -EEXIST);
    assert_null(s2);

    /* another process (the owner, us, still lives) is refused too */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        shm *c;
        _exit(shm_create(g_name, SHM_KIND_RING, 1, 4096, &c) == -EEXIST ? 0 : 1);
    }
    expect_exit_0(pid);

    /* and the live segment was not touched */
    assert_int_equal(((unsigned char *)shm_base(s))[100], 0xab);
    shm_detach(s);
}

static void test_shm_reclaims_segment_of_dead_owner(void **state)
{
    (void)state;
    /* a child creates the segment and dies without unlinking it */
    create_and_die(SHM_KIND_RING, 4096);

    shm *s;
    assert_int_equal(shm_create(g_name, SHM_KIND_RING, 1, 4096, &s), 0);
    const shm_hdr *h = shm_base(s);
    assert_int_equal(h->owner_pid, (uint64_t)getpid());
    /* created anew: zeroed, not the dead instance's bytes */
    assert_int_equal(((unsigned char *)shm_base(s))[100], 0);
    shm_detach(s);
}

static void test_shm_reclaims_forged_dead_pid_and_reused_pid(void **state)
{
    (void)state;
    shm *s;
    assert_int_equal(shm_create(g_name, SHM_KIND_RING, 1, 4096, &s), 0);
    shm_hdr *h = shm_base(s);

    /* forge a pid that is certainly dead: a reaped child's */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(0);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    h->owner_pid = (uint64_t)pid;
    assert_false(shm_owner_is_alive(h));
    shm *s2;
    assert_int_equal(shm_create(g_name, SHM_KIND_RING, 1, 4096, &s2), 0);
    shm_detach(s);

    /* a live pid (ours) but another start time: the pid was reused, the owner is dead */
    h = shm_base(s2);
    h->owner_start += 1;
    assert_false(shm_owner_is_alive(h));
    shm *s3;
    assert_int_equal(shm_create(g_name, SHM_KIND_RING, 1, 4096, &s3), 0);
    assert_true(shm_owner_is_alive(shm_base(s3)));
    shm_detach(s2);
    shm_detach(s3);
}

static void test_shm_attach_checks_kind_version_size(void **state)
{
    (void)state;
    shm *s, *a = NULL;
    assert_int_equal(shm_attach(g_name, SHM_KIND_RING, 1, &a), -ENOENT);
    assert_int_equal(shm_create(g_name, SHM_KIND_RING, 3, 4096, &s), 0);
    assert_int_equal(shm_attach(g_name, SHM_KIND_STATS, 3, &a), -EPROTO);
    assert_null(a);
    assert_int_equal(shm_attach(g_name, SHM_KIND_RING, 4, &a), -EPROTO);
    assert_int_equal(shm_attach(g_name, SHM_KIND_RING, 3, &a), 0);

    /* the same memory through both mappings */
    ((volatile char *)shm_base(s))[200] = 42;
    assert_int_equal(((volatile char *)shm_base(a))[200], 42);
    shm_detach(a);

    /* file size disagreeing with the header's size */
    char path[256];
    snprintf(path, sizeof(path), "/%s", g_name);
    int fd = shm_open(path, O_RDWR, 0);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 8192), 0);
    close(fd);
    assert_int_equal(shm_attach(g_name, SHM_KIND_RING, 3, &a), -EPROTO);

    /* a bad magic */
    ((shm_hdr *)shm_base(s))->magic = 0;
    assert_int_equal(shm_attach(g_name, SHM_KIND_RING, 3, &a), -EPROTO);
    shm_detach(s);
}

static void test_shm_rejects_bad_names(void **state)
{
    (void)state;
    shm *s;
    char longname[SHM_NAME_MAX + 10];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(shm_create("", SHM_KIND_RING, 1, 4096, &s), -EINVAL);
    assert_int_equal(shm_create("a/b", SHM_KIND_RING, 1, 4096, &s), -EINVAL);
    assert_int_equal(shm_create(longname, SHM_KIND_RING, 1, 4096, &s), -EINVAL);
    assert_int_equal(shm_unlink_name(g_name), -ENOENT);
}

/* Several processes find the same stale segment at once: exactly one re-creates it, the
 * others then see a live owner; nobody unlinks the winner's fresh segment. */
static void test_shm_concurrent_reclaim_has_one_winner(void **state)
{
    (void)state;
    enum { N = 6 };
    int go[2], res[2], done[2];
    pid_t kids[N];
    shm *s;

    assert_int_equal(shm_create(g_name, SHM_KIND_RING, 1, 4096, &s), 0);
    ((shm_hdr *)shm_base(s))->owner_start += 1; /* its owner is now "dead" */
    shm_detach(s);
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(res), 0);
    assert_int_equal(pipe(done), 0);
    for (int i = 0; i < N; i++) {
        kids[i] = fork();
        assert_true(kids[i] >= 0);
        if (kids[i] == 0) {
            char b;
            close(go[1]);
            close(done[1]);
            if (read(go[0], &b, 1) != 0) /* EOF: everybody starts at once */
                _exit(1);
            shm *c = NULL;
            int rc = shm_create(g_name, SHM_KIND_RING, 1, 4096, &c);
            b = rc == 0 ? 'W' : rc == -EEXIST ? 'E' : 'X';
            if (write(res[1], &b, 1) != 1)
                _exit(1);
            if (read(done[0], &b, 1) != 0) /* stay alive (a live owner) until told */
                _exit(1);
            _exit(0);
        }
    }
    close(go[0]);
    close(go[1]);
    close(res[1]);
    close(done[0]);
    int winners = 0, exists = 0;
    for (int i = 0; i < N; i++) {
        char b;
        assert_int_equal(read(res[0], &b, 1), 1);
        winners += b == 'W';
        exists += b == 'E';
    }
    assert_int_equal(winners, 1);
    assert_int_equal(exists, N - 1);
    /* the winner's segment is the one under the name, intact */
    shm *a;
    assert_int_equal(shm_attach(g_name, SHM_KIND_RING, 1, &a), 0);
    assert_true(shm_owner_is_alive(shm_base(a)));
    shm_detach(a);
    close(done[1]);
    for (int i = 0; i < N; i++) {
        expect_exit_0(kids[i]);
    }
    close(res[0]);
}

/* a dead owner's segment child: creates it, marks its contents, dies without unlinking */
static void test_shm_adopt_keeps_contents_of_dead_owner(void **state)
{
    (void)state;
    create_and_die(SHM_KIND_STATE, 4096);
    shm *s, *t;
    assert_int_equal(shm_adopt(g_name, SHM_KIND_STATE, 1, 4096, &s), 1);
    assert_int_equal(((unsigned char *)shm_base(s))[100], 0xcd);
    assert_int_equal(((const shm_hdr *)shm_base(s))->owner_pid, (uint64_t)getpid());
    /* now owned by a live process (us): nobody else may adopt or create it */
    assert_int_equal(shm_adopt(g_name, SHM_KIND_STATE, 1, 4096, &t), -EEXIST);
    shm_detach(s);
}

static void test_shm_adopt_other_geometry_starts_anew(void **state)
{
    (void)state;
    create_and_die(SHM_KIND_STATE, 4096);
    shm *s;
    assert_int_equal(shm_adopt(g_name, SHM_KIND_STATE, 1, 8192, &s), 0);
    assert_int_equal(shm_size(s), 8192);
    assert_int_equal(((unsigned char *)shm_base(s))[100], 0);
    shm_detach(s);
    shm_unlink_name(g_name);
    create_and_die(SHM_KIND_STATE, 4096);
    assert_int_equal(shm_adopt(g_name, SHM_KIND_STATE, 2, 4096, &s), 0); /* other version */
    assert_int_equal(((unsigned char *)shm_base(s))[100], 0);
    shm_detach(s);
}

static void test_shm_adopt_creates_when_absent(void **state)
{
    (void)state;
    shm *s;
    assert_int_equal(shm_adopt(g_name, SHM_KIND_STATE, 1, 4096, &s), 0);
    assert_int_equal(((const shm_hdr *)shm_base(s))->owner_pid, (uint64_t)getpid());
    shm_detach(s);
}

/* issue 8 item 9: what is adopted is fstat'ed. A dead instance's segment chown'ed to another
 * user and made 0666 is never adopted with its contents: another user's is reclaimed (root can
 * unlink it), ours with a loose mode is refused (its records were readable by others). */
static void test_shm_adopt_refuses_foreign_owner_and_loose_mode(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    char path[200];
    snprintf(path, sizeof(path), "/dev/shm/%s", g_name);
    create_and_die(SHM_KIND_STATE, 4096);
    assert_int_equal(chown(path, 65534, 65534), 0);
    assert_int_equal(chmod(path, 0666), 0);
    shm *s = NULL;
    assert_int_equal(shm_adopt(g_name, SHM_KIND_STATE, 1, 4096, &s), 0); /* created anew */
    assert_int_equal(((unsigned char *)shm_base(s))[100], 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_uid, 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    shm_detach(s);
    shm_unlink_name(g_name);

    create_and_die(SHM_KIND_STATE, 4096);
    assert_int_equal(chmod(path, 0666), 0);
    s = NULL;
    assert_int_equal(shm_adopt(g_name, SHM_KIND_STATE, 1, 4096, &s), -EPERM);
    assert_null(s);
}

/* Start time (/proc/<pid>/stat field 22) of a live process. */
static uint64_t start_time_of(pid_t pid)
{
    uint64_t t = 0;
    assert_int_equal(testlib_proc_start_time(pid, &t), 0);
    return t;
}

/* A header naming a live process that is not an mqttflow process (here: sleep) does not
 * make the segment "owned by a running instance"; nor does one planted by another user. */
static void test_shm_planted_live_pid_does_not_block(void **state)
{
    (void)state;
    pid_t sl = fork();
    assert_true(sl >= 0);
    if (sl == 0) {
        execlp("sleep", "sleep", "30", (char *)NULL);
        _exit(127);
    }
    /* wait until the child is sleep, not our fork */
    char exe[64], target[256];
    snprintf(exe, sizeof(exe), "/proc/%d/exe", (int)sl);
    for (int i = 0; i < 2000; i++) {
        ssize_t n = readlink(exe, target, sizeof(target) - 1);
        if (n > 0 && (target[n] = 0, strstr(target, "sleep")))
            break;
        usleep(1000);
    }
    create_and_die(SHM_KIND_STATE, 4096);
    shm *s = NULL;
    int fd = shm_open(g_name, O_RDWR, 0);
    assert_true(fd >= 0);
    shm_hdr *h = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    assert_true(h != MAP_FAILED);
    h->owner_pid = (uint64_t)sl;
    h->owner_start = start_time_of(sl);
    assert_false(shm_owner_is_alive(h));
    munmap(h, 4096);
    assert_int_equal(shm_create(g_name, SHM_KIND_STATE, 1, 4096, &s), 0);
    shm_detach(s);
    kill(sl, SIGKILL);
    waitpid(sl, NULL, 0);
    if (geteuid() != 0)
        return;
    /* planted by nobody, naming our own (live, mqttflow-like) pid: reclaimed, not EEXIST */
    shm_unlink_name(g_name);
    assert_int_equal(shm_create(g_name, SHM_KIND_STATE, 1, 4096, &s), 0);
    char path[200];
    snprintf(path, sizeof(path), "/dev/shm/%s", g_name);
    assert_int_equal(chown(path, 65534, 65534), 0);
    shm *s2 = NULL;
    assert_int_equal(shm_create(g_name, SHM_KIND_STATE, 1, 4096, &s2), 0);
    shm_detach(s2);
    shm_detach(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST_ST(test_shm_create_mode_0600_despite_umask),
        TEST_ST(test_shm_create_live_owner_gives_eexist),
        TEST_ST(test_shm_reclaims_segment_of_dead_owner),
        TEST_ST(test_shm_reclaims_forged_dead_pid_and_reused_pid),
        TEST_ST(test_shm_attach_checks_kind_version_size),
        TEST_ST(test_shm_rejects_bad_names),
        TEST_ST(test_shm_adopt_keeps_contents_of_dead_owner),
        TEST_ST(test_shm_adopt_other_geometry_starts_anew),
        TEST_ST(test_shm_adopt_creates_when_absent),
        TEST_ST(test_shm_adopt_refuses_foreign_owner_and_loose_mode),
        TEST_ST(test_shm_planted_live_pid_does_not_block),
        TEST_ST(test_shm_concurrent_reclaim_has_one_winner),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
