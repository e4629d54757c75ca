/* Unit tests of common/stage_main.c through the four real stage binaries: every stage maps a
 * wrong command line, a config it cannot load and a missing stats segment to the same exit
 * code (common/stage.h), which is what the supervisor's child.c acts on (2: not restarted). */
#include <setjmp.h>
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

#include "exitcode.h"
#include "../tools/testlib.h"

static char g_dir[256], g_good[300], g_bad[300], g_log[300];

static const struct {
    const char *bin;
    const char *index; /* NULL: no index argument */
} stages[] = {
    {"mqttflow-ingress", "0"},
    {"mqttflow-router", NULL},
    {"mqttflow-worker", "0"},
    {"mqttflow-relay", NULL},
};
#define N_STAGES (sizeof(stages) / sizeof(stages[0]))

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/mf-test-stage-%d", (int)getpid());
    if (mkdir(g_dir, 0700) < 0)
        return -1;
    snprintf(g_good, sizeof(g_good), "%s/good.yaml", g_dir);
    snprintf(g_bad, sizeof(g_bad), "%s/bad.yaml", g_dir);
    snprintf(g_log, sizeof(g_log), "%s/stage.log", g_dir);
    char text[2048];
    /* an instance nobody runs: no segment of it exists */
    snprintf(text, sizeof(text),
             "mqtt_clients:\n"
             "  - client_id: \"c0\"\n"
             "    broker_url: \"mqtt://127.0.0.1:1\"\n"
             "    topics:\n"
             "      - name: \"in/#\"\n"
             "callbacks:\n"
             "  cb: {module: \"%s/cb.so\", function: \"f\"}\n"
             "rules:\n"
             "  - rule: r\n"
             "    source_client_id: \"c0\"\n"
             "    topic: \"in/#\"\n"
             "    callback: cb\n"
             "runtime:\n"
             "  instance: \"stagetest%d\"\n"
             "  workers: 1\n"
             "  spool_dir: \"%s/spool\"\n"
             "  dead_letter: {dir: \"%s/dead\"}\n",
             g_dir, (int)getpid() % 100000, g_dir, g_dir);
    write_file(g_good, text);
    /* an empty file: the stages load the config without opening modules, and the worker would
     * fail on it only after the stats segment (a configuration error) */
    snprintf(text, sizeof(text), "%s/cb.so", g_dir);
    write_file(text, "");
    write_file(g_bad, "mqtt_clients: 7\nnot_a_key: 1\n");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    testlib_remove_dir(g_dir);
    return 0;
}

/* Runs build/bin/<bin> with up to two arguments; its exit code (-1: no exit). */
static int run_stage(const char *bin, const char *a1, const char *a2)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/bin/%s", testlib_build_dir(), bin);
    char *argv[] = {path, (char *)a1, (char *)a2, NULL};
    if (!a1)
        argv[1] = NULL;
    unlink(g_log);
    pid_t pid = testlib_spawn(argv, -1, g_log);
    assert_true(pid > 0);
    int st = testlib_wait_status(pid, 20000);
    if (st == -1) {
        pid_t p = pid;
        testlib_kill_wait(&p);
        return -1;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_stage_wrong_command_line_is_config(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_STAGES; i++) {
        /* one argument too few or too many */
        if (stages[i].index)
            assert_int_equal(run_stage(stages[i].bin, g_good, NULL), MF_EXIT_CONFIG);
        else
            assert_int_equal(run_stage(stages[i].bin, g_good, "1"), MF_EXIT_CONFIG);
        if (!stages[i].index)
            continue;
        /* an index that is not a number, or beyond the config */
        assert_int_equal(run_stage(stages[i].bin, g_good, "x"), MF_EXIT_CONFIG);
        assert_int_equal(run_stage(stages[i].bin, g_good, "-1"), MF_EXIT_CONFIG);
        assert_int_equal(run_stage(stages[i].bin, g_good, "1"), MF_EXIT_CONFIG);
        assert_true(testlib_file_has(g_log, "index \"1\": the config has 1 "));
    }
}

static void test_stage_config_that_does_not_load_is_config(void **state)
{
    (void)state;
    char missing[320];
    snprintf(missing, sizeof(missing), "%s/missing.yaml", g_dir);
    for (size_t i = 0; i < N_STAGES; i++) {
        assert_int_equal(run_stage(stages[i].bin, g_bad, stages[i].index), MF_EXIT_CONFIG);
        assert_true(testlib_file_has(g_log, "cannot load"));
        /* the relay used to say 1 (restart) for a file it could not read */
        assert_int_equal(run_stage(stages[i].bin, missing, stages[i].index), MF_EXIT_CONFIG);
        assert_true(testlib_file_has(g_log, "missing.yaml"));
    }
}

/* The router and the worker used to run on a private slot, the ingress and the relay to fail:
 * now all fail (exit 1, restarted), before building anything (the worker's missing callback
 * module would have been a configuration error). */
static void test_stage_missing_stats_segment_fails(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_STAGES; i++) {
        assert_int_equal(run_stage(stages[i].bin, g_good, stages[i].index), MF_EXIT_FAILED);
        assert_true(testlib_file_has(g_log, "stats_attach("));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stage_wrong_command_line_is_config),
        cmocka_unit_test(test_stage_config_that_does_not_load_is_config),
        cmocka_unit_test(test_stage_missing_stats_segment_fails),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
