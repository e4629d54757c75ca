/* workers/loader: version check, every missing function named, mf_init once per module,
 * mf_init failure refuses the start, mf_fini at unload. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "wtest.h"
#include "workers/loader.h"

#define CLIENTS                                                                                    \
    "mqtt_clients:\n"                                                                              \
    "  - client_id: c1\n"                                                                          \
    "    broker_url: mqtt://127.0.0.1\n"                                                           \
    "    topics: [{name: \"in/#\"}]\n"

static void test_loader_inits_each_module_once_and_finis_at_unload(void **state)
{
    (void)state;
    char fini_path[] = "/tmp/mf-test-fini-XXXXXX";
    int fd = mkstemp(fini_path);
    assert_true(fd >= 0);
    close(fd);
    setenv("MF_TEST_FINI_FILE", fini_path, 1);

    cfg *c = wt_cfg(CLIENTS "callbacks:\n"
                            "  a: {module: \"%s\", function: inits}\n"
                            "  b: {module: \"%s\", function: calls}\n"
                            "rules:\n"
                            "  - {rule: r, topic: \"in/#\", callback: a}\n",
                    wt_cb("lifecycle"), wt_cb("lifecycle"));
    assert_non_null(c);
    ctx_env env;
    wt_sink sink;
    stats_slot slot;
    wt_env(&env, c, &sink, &slot);
    loader *l = NULL;
    assert_int_equal(loader_create(&env, &l), 0);
    mf_callback inits = loader_fn(l, 0), calls = loader_fn(l, 1);
    assert_non_null(inits);
    assert_non_null(calls);
    assert_null(loader_fn(l, 2));
    assert_null(loader_fn(l, -1));

    mf_ctx x;
    ctx_origin o = {.client = 0};
    mf_msg m = {.topic = "in/x", .payload = "", .client_id = "c1"};
    ctx_init_call(&x, &env, 0, -1, "a", NULL, 0, ctx_next_publish_source, NULL, &o);
    assert_int_equal(ctx_call(&x, inits, &m, 1), 0);
    assert_int_equal(sink.n, 1);
    assert_string_equal(sink.recs[0].payload, "inits=1"); /* one module, one mf_init */
    loader_destroy(l);

    FILE *f = fopen(fini_path, "r");
    assert_non_null(f);
    char buf[256] = {0};
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    assert_string_equal(buf, "fini 1\n");
    unlink(fini_path);
    unsetenv("MF_TEST_FINI_FILE");
    cfg_destroy(c);
}

static void expect_refusal(cfg *c, int want, const char *const *needles)
{
    ctx_env env;
    wt_sink sink;
    stats_slot slot;
    wt_env(&env, c, &sink, &slot);
    loader *l = (loader *)0x1;
    wt_capture cap;
    char log[16384];
    wt_capture_start(&cap);
    int rc = loader_create(&env, &l);
    wt_capture_end(&cap, log, sizeof(log));
    assert_int_equal(rc, want);
    assert_null(l);
    for (; *needles; needles++) {
        if (!strstr(log, *needles))
            fail_msg("log lacks \"%s\":\n%s", *needles, log);
    }
}

/* expect_refusal for a config whose one callback a is function fn of the module at path. */
static void expect_module_refused(const char *path, const char *fn, int want,
                                  const char *const *needles)
{
    cfg *c = wt_cfg(CLIENTS "callbacks:\n"
                            "  a: {module: \"%s\", function: %s}\n"
                            "rules:\n"
                            "  - {rule: r, topic: \"in/#\", callback: a}\n",
                    path, fn);
    assert_non_null(c);
    expect_refusal(c, want, needles);
    cfg_destroy(c);
}

static void test_loader_refuses_other_api_version(void **state)
{
    (void)state;
    /* the words of `mqttflow check` (common/cbmodule.c serves both) */
    const char *needles[] = {"callback module refused: ",
                             "wrong_version.so was built for callback "
                             "API version 999, this mqttflow implements version 1 (rebuild it "
                             "against this mqttflow.h)",
                             NULL};
    expect_module_refused(wt_cb("wrong_version"), "cb", -EPROTO, needles);
}

static void test_loader_refuses_module_without_version(void **state)
{
    (void)state;
    const char *needles[] = {"no_version.so does not export mf_api_version (build it with "
                             "#include \"mqttflow.h\")",
                             NULL};
    expect_module_refused(wt_cb("no_version"), "cb", -EPROTO, needles);
}

static void test_loader_names_every_missing_function(void **state)
{
    (void)state;
    cfg *c = wt_cfg(CLIENTS "callbacks:\n"
                            "  first: {module: \"%s\", function: no_such_fn_one}\n"
                            "  ok: {module: \"%s\", function: echo}\n"
                            "  second: {module: \"%s\", function: no_such_fn_two}\n"
                            "rules:\n"
                            "  - {rule: r, topic: \"in/#\", callback: ok}\n",
                    wt_cb("echo"), wt_cb("echo"), wt_cb("echo"));
    assert_non_null(c);
    const char *needles[] = {"callback first: function \"no_such_fn_one\" not found in /",
                             "callback second: function \"no_such_fn_two\" not found in /",
                             "echo.so", NULL};
    expect_refusal(c, -ENOENT, needles);
    cfg_destroy(c);
}

static void test_loader_refuses_module_that_cannot_load(void **state)
{
    (void)state;
    char path[] = "/tmp/mf-test-notelf.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "not an ELF file\n", 16), 16);
    close(fd);
    char want[128];
    snprintf(want, sizeof(want), "cannot load callback module %s: ", path);
    const char *needles[] = {want, NULL};
    expect_module_refused(path, "cb", -ENOENT, needles);
    unlink(path);
}

static void test_loader_refuses_when_mf_init_fails(void **state)
{
    (void)state;
    const char *needles[] = {"fail_init.so: mf_init returned -1", NULL};
    expect_module_refused(wt_cb("fail_init"), "never_called", -ECANCELED, needles);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loader_inits_each_module_once_and_finis_at_unload),
        cmocka_unit_test(test_loader_refuses_other_api_version),
        cmocka_unit_test(test_loader_refuses_module_without_version),
        cmocka_unit_test(test_loader_names_every_missing_function),
        cmocka_unit_test(test_loader_refuses_module_that_cannot_load),
        cmocka_unit_test(test_loader_refuses_when_mf_init_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
