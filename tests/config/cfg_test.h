/* cfg_test.h: what the config loader's test files share: a fresh temporary folder as the cwd
 * of each test (so messages name "config.yaml" as a user sees them), writing files, loading,
 * and asserting one exact error line. Included by one .c per test binary. */
#ifndef CFG_TEST_H
#define CFG_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <time.h>

#include "cfg.h"
#include "cfg_int.h" /* cfg_topic_filters_overlap */
#include "mqttflow.h"

static char tmpdir[PATH_MAX];
static __attribute__((unused)) char srcdir[PATH_MAX]; /* the repository root (test_cfg.c) */

static __attribute__((unused)) void write_file(const char *name, const char *text, mode_t mode)
{
    char *slash = strrchr(name, '/');
    if (slash) {
        char d[PATH_MAX];
        snprintf(d, sizeof(d), "%.*s", (int)(slash - name), name);
        mkdir(d, 0700);
    }
    FILE *f = fopen(name, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(name, mode), 0);
}

static __attribute__((unused)) int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_cfg.XXXXXX");
    if (!mkdtemp(tmpdir) || chdir(tmpdir) < 0)
        return -1;
    /* without CFG_LOAD_CHECK_MODULES only the modules' existence is checked */
    write_file("cb/a.so", "", 0644);
    write_file("cb/b.so", "", 0644);
    return 0;
}

static __attribute__((unused)) int teardown(void **state)
{
    (void)state;
    char cmd[PATH_MAX + 16];
    if (chdir("/") < 0)
        return -1;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static __attribute__((unused)) void dump(const cfg_diag *d)
{
    for (size_t i = 0; i < d->n_errors; i++)
        fprintf(stderr, "  error: %s\n", d->errors[i]);
    for (size_t i = 0; i < d->n_warnings; i++)
        fprintf(stderr, "  warning: %s\n", d->warnings[i]);
}

static __attribute__((unused)) cfg *load_ok(const char *yaml, cfg_diag *d)
{
    write_file("config.yaml", yaml, 0644);
    cfg *c = NULL;
    int r = cfg_load("config.yaml", 0, &c, d);
    if (r != 0)
        dump(d);
    assert_int_equal(r, 0);
    assert_non_null(c);
    return c;
}

static __attribute__((unused)) bool has_line(char **v, size_t n, const char *want)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i], want))
            return true;
    return false;
}

/* Loads yaml (as config.yaml) and asserts that it fails (-EINVAL, no config); its diagnostics
 * are in *d for the caller to check and finish. */
static __attribute__((unused)) void load_fails(const char *yaml, cfg_diag *d)
{
    write_file("config.yaml", yaml, 0644);
    cfg *c = (cfg *)1;
    assert_int_equal(cfg_load("config.yaml", 0, &c, d), -EINVAL);
    assert_null(c);
}

/* Loads yaml and asserts that it fails with exactly the given error among its errors. */
static __attribute__((unused)) void expect_error(const char *yaml, const char *want)
{
    write_file("config.yaml", yaml, 0644);
    cfg *c = (cfg *)1;
    cfg_diag d = {0};
    int r = cfg_load("config.yaml", 0, &c, &d);
    if (r != -EINVAL || !has_line(d.errors, d.n_errors, want)) {
        fprintf(stderr, "want: %s\n", want);
        dump(&d);
    }
    assert_int_equal(r, -EINVAL);
    assert_null(c);
    assert_true(has_line(d.errors, d.n_errors, want));
    cfg_diag_fini(&d);
}

#define CLIENTS                                                                                    \
    "mqtt_clients:\n"                                                                              \
    "  - client_id: c1\n"                                                                          \
    "    broker_url: mqtt://localhost\n"                                                           \
    "    topics:\n"                                                                                \
    "      - name: a/b\n"
#define CALLBACKS                                                                                  \
    "callbacks:\n"                                                                                 \
    "  cb_a: {module: cb/a.so, function: fa}\n"                                                    \
    "  cb_b: {module: cb/b.so, function: fb}\n"
/* CLIENTS + CALLBACKS are lines 1..8; what a test appends starts on line 9 */

#endif
