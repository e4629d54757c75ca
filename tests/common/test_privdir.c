/* privdir, the dead-letter store and the spool against a hostile neighbour (issue 8, item 8):
 * symbolic links planted in advance, directories of another owner or writable by others.
 * Real files; "another user" is nobody (the tests run as root; skipped otherwise). */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "deadletter.h"
#include "privdir.h"
#include "spool.h"
#include "tests/tools/testlib.h"

static char base[64];
static uid_t nobody = 65534;

static int setup(void **state)
{
    (void)state;
    snprintf(base, sizeof(base), "/tmp/test_privdir.XXXXXX");
    if (!mkdtemp(base))
        return -1;
    struct passwd *pw = getpwnam("nobody");
    if (pw)
        nobody = pw->pw_uid;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
    return system(cmd) == 0 ? 0 : -1;
}

static void path(char *out, const char *leaf)
{
    snprintf(out, 256, "%s/%s", base, leaf);
}

static void test_privdir_creates_missing_levels_0700(void **state)
{
    (void)state;
    char p[256], err[512];
    path(p, "a/b/c");
    int fd = -1;
    assert_int_equal(privdir_open(p, &fd, err, sizeof(err)), 0);
    assert_true(fd >= 0);
    close(fd);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
}

static void test_privdir_resolves_dot_dot_in_the_text(void **state)
{
    (void)state;
    char p[256], err[512];
    snprintf(p, sizeof(p), "%s/cfg/../x/./y/", base);
    int fd = -1;
    assert_int_equal(privdir_open(p, &fd, err, sizeof(err)), 0);
    close(fd);
    snprintf(p, sizeof(p), "%s/x/y", base);
    assert_int_equal(access(p, F_OK), 0);
}

static void test_privdir_refuses_leaf_writable_by_others(void **state)
{
    (void)state;
    char p[256], err[512], want[1024];
    path(p, "open");
    assert_int_equal(mkdir(p, 0700), 0);
    assert_int_equal(chmod(p, 0777), 0);
    assert_int_equal(privdir_check(p, err, sizeof(err)), -EPERM);
    snprintf(want, sizeof(want),
             "%s is writable by others (mode 0777): chmod 700 %s, or choose another directory", p,
             p);
    assert_string_equal(err, want);
    int fd;
    assert_int_equal(privdir_open(p, &fd, err, sizeof(err)), -EPERM);
    assert_int_equal(fd, -1);
}

static void test_privdir_refuses_other_owner_and_open_parent(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    char p[256], q[256], err[512];
    path(p, "theirs");
    assert_int_equal(mkdir(p, 0700), 0);
    assert_int_equal(chown(p, nobody, nobody), 0);
    assert_int_equal(privdir_check(p, err, sizeof(err)), -EPERM);
    assert_non_null(strstr(err, "is owned by uid"));
    /* a parent others can write (not sticky): they could rename our directory away */
    path(p, "wide");
    assert_int_equal(mkdir(p, 0777), 0);
    assert_int_equal(chmod(p, 0777), 0);
    path(q, "wide/mine");
    int fd;
    assert_int_equal(privdir_open(q, &fd, err, sizeof(err)), -EPERM);
    assert_non_null(strstr(err, "chmod go-w"));
    /* sticky (like /tmp): fine */
    assert_int_equal(chmod(p, 01777), 0);
    assert_int_equal(privdir_open(q, &fd, err, sizeof(err)), 0);
    close(fd);
}

/* A link planted by another user in a sticky, world-writable folder (/var/tmp's case). */
static void plant_link(const char *target, const char *link)
{
    assert_int_equal(symlink(target, link), 0);
    assert_int_equal(lchown(link, nobody, nobody), 0);
}

static void test_privdir_refuses_planted_symlink_dir(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    char sticky[256], victim[256], link[256], err[512];
    path(sticky, "tmp");
    assert_int_equal(mkdir(sticky, 01777), 0);
    assert_int_equal(chmod(sticky, 01777), 0);
    path(victim, "victim");
    assert_int_equal(mkdir(victim, 0700), 0);
    path(link, "tmp/mqttflow");
    plant_link(victim, link);
    char spooldir[300];
    snprintf(spooldir, sizeof(spooldir), "%s/spool", link);
    int fd;
    assert_int_equal(privdir_open(spooldir, &fd, err, sizeof(err)), -EPERM);
    assert_non_null(strstr(err, "is a symbolic link owned by uid"));
    /* the spool refuses it too, and nothing lands in the victim's folder */
    spool *s = NULL;
    assert_true(spool_open(spooldir, NULL, &s) < 0);
    assert_null(s);
    char probe[300];
    snprintf(probe, sizeof(probe), "%s/spool", victim);
    assert_int_equal(access(probe, F_OK), -1);
}

static void test_deadletter_refuses_planted_file_link(void **state)
{
    (void)state;
    char dir[256], victim[256], link[300];
    path(dir, "dead");
    assert_int_equal(mkdir(dir, 0700), 0);
    path(victim, "victim.txt");
    FILE *f = fopen(victim, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(link, sizeof(link), "%s/%s", dir, DEADLETTER_FILE);
    assert_int_equal(symlink(victim, link), 0);
    deadletter *d = NULL;
    assert_int_equal(deadletter_open(dir, &d), -ELOOP);
    assert_null(d);
    struct stat st;
    assert_int_equal(stat(victim, &st), 0);
    assert_int_equal(st.st_size, 0);
}

static void test_deadletter_refuses_dir_of_others(void **state)
{
    (void)state;
    char dir[256];
    path(dir, "dead777");
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(chmod(dir, 0777), 0);
    deadletter *d = NULL;
    assert_int_equal(deadletter_open(dir, &d), -EPERM);
    assert_null(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST_ST(test_privdir_creates_missing_levels_0700),
        TEST_ST(test_privdir_resolves_dot_dot_in_the_text),
        TEST_ST(test_privdir_refuses_leaf_writable_by_others),
        TEST_ST(test_privdir_refuses_other_owner_and_open_parent),
        TEST_ST(test_privdir_refuses_planted_symlink_dir),
        TEST_ST(test_deadletter_refuses_planted_file_link),
        TEST_ST(test_deadletter_refuses_dir_of_others),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
