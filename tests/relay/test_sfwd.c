/* sfwd: one spool folder per target client, and only one (issue 8, item 10). The folder name
 * is a one-to-one encoding of the client id: "a/b" and "a_b" shared one folder, the second
 * spool could not take its lock and its records waited in the ring until stop. Real spools in
 * a temporary folder. */
#include <errno.h>
#include <limits.h>
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

#include "cfg.h"
#include "names.h"
#include "relay/sfwd.h"
#include "tests/tools/testlib.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/test_sfwd.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void count_stored(void *arg, uint16_t ring, uint64_t seq)
{
    (void)ring;
    (void)seq;
    (*(int *)arg)++;
}

/* The config of yaml (as t.yaml in dir); it must load. */
static cfg *load(const char *yaml)
{
    cfg *c = NULL;
    cfg_diag d = {0};
    assert_int_equal(cfg_load_buffer("t.yaml", dir, yaml, strlen(yaml), 0, &c, &d), 0);
    cfg_diag_fini(&d);
    return c;
}

static void test_sfwd_clients_a_slash_b_and_a_underscore_b_spool_apart(void **state)
{
    (void)state;
    char yaml[512];
    snprintf(yaml, sizeof(yaml),
             "mqtt_clients:\n"
             "  - {client_id: a/b, broker_url: mqtt://h}\n"
             "  - {client_id: a_b, broker_url: mqtt://h}\n"
             "runtime: {spool_dir: %s/spool, dead_letter: {dir: %s/dead}}\n",
             dir, dir);
    cfg *c = load(yaml);
    sfwd *s = NULL;
    assert_int_equal(sfwd_create(c, 16, &s), 0);
    static const char rec[] = "record";
    assert_int_equal(sfwd_queue(s, 0, 0, 1, rec, sizeof(rec)), 0);
    assert_int_equal(sfwd_queue(s, 1, 0, 2, rec, sizeof(rec)), 0);
    int stored = 0;
    sfwd_flush(s, 0, count_stored, &stored);
    assert_int_equal(stored, 2);
    assert_int_equal(sfwd_spooled(s), 2);
    sfwd_destroy(s);
    cfg_destroy(c);
}

/* a spool under the name an earlier version gave it ("a x" -> "a_x") moves to the new name */
static void test_sfwd_moves_a_spool_of_the_old_name(void **state)
{
    (void)state;
    char yaml[512], p[200];
    snprintf(yaml, sizeof(yaml),
             "mqtt_clients:\n  - {client_id: \"a x\", broker_url: mqtt://h}\n"
             "runtime: {spool_dir: %s/spool}\n",
             dir);
    snprintf(p, sizeof(p), "%s/spool", dir);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof(p), "%s/spool/a_x", dir);
    assert_int_equal(mkdir(p, 0700), 0);
    cfg *c = load(yaml);
    sfwd *s = NULL;
    assert_int_equal(sfwd_create(c, 16, &s), 0);
    assert_int_equal(access(p, F_OK), -1);
    snprintf(p, sizeof(p), "%s/spool/a%%20x", dir);
    assert_int_equal(access(p, F_OK), 0);
    sfwd_destroy(s);
    cfg_destroy(c);
}

static void test_names_client_dir_is_one_to_one(void **state)
{
    (void)state;
    static const char *const ids[] = {"a/b", "a_b", "a%2Fb",       ".",
                                      "..",  "x y", "caf\xc3\xa9", "sensor-1.local"};
    char names[8][NAME_MAX + 1];
    for (size_t i = 0; i < 8; i++) {
        assert_int_equal(names_client_dir(names[i], sizeof(names[i]), ids[i]), 0);
        assert_null(strchr(names[i], '/'));
        assert_true(names[i][0] != '.');
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(names[i], names[j]);
    }
    /* ids of safe bytes keep the name earlier versions gave them (their spools stay found) */
    assert_string_equal(names[1], "a_b");
    assert_string_equal(names[7], "sensor-1.local");
    char small[8];
    assert_int_equal(names_client_dir(small, sizeof(small), "a/b/c/d"), -ENAMETOOLONG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST_ST(test_sfwd_clients_a_slash_b_and_a_underscore_b_spool_apart),
        TEST_ST(test_sfwd_moves_a_spool_of_the_old_name),
        cmocka_unit_test(test_names_client_dir_is_one_to_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
