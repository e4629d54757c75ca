/* workers/ctx: mf_param, mf_emit (origin inheritance, topic/size checks, per-invocation
 * limit), mf_publish (client lookup), contexts of mf_init, error counting in ctx_call. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "wtest.h"
#include "tests/tools/testlib.h"

#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static cfg *two_clients(void)
{
    cfg *c = wt_cfg(WT_TWO_CLIENTS "callbacks:\n"
                                   "  a: {module: \"%s\", function: echo}\n"
                                   "rules:\n"
                                   "  - {rule: r0, topic: \"in/#\", callback: a}\n"
                                   "  - {rule: r1, topic: \"in/#\", callback: a}\n"
                                   "runtime: {max_payload: 1000}\n",
                    wt_cb("echo"));
    assert_non_null(c);
    return c;
}

typedef struct fx {
    cfg *c;
    ctx_env env;
    wt_sink sink;
    stats_slot slot;
    ctx_origin o;
    mf_ctx x;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    f->c = two_clients();
    wt_env(&f->env, f->c, &f->sink, &f->slot);
    f->o = (ctx_origin){.client = 0, .qos = 1, .retain = 1, .seq = 77, .received_ns = 123};
    ctx_init_call(&f->x, &f->env, 1, -1, "a", NULL, 0, ctx_next_publish_source, NULL, &f->o);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    cfg_destroy(f->c);
    free(f);
    return 0;
}

static void test_ctx_param_returns_step_values(void **state)
{
    fx *f = *state;
    cfg_param params[] = {{"threshold", "42"}, {"name", "kitchen"}};
    mf_ctx x;
    ctx_init_call(&x, &f->env, 0, 2, "a", params, 2, ctx_next_publish_source, NULL, &f->o);
    assert_string_equal(mf_param(&x, "threshold"), "42");
    assert_string_equal(mf_param(&x, "name"), "kitchen");
    assert_null(mf_param(&x, "missing"));
    assert_null(mf_param(&x, NULL));
    assert_null(mf_param(&f->x, "threshold")); /* a simple rule has no step config */
    mf_ctx init;
    ctx_init_module(&init, &f->env, "/x.so");
    assert_null(mf_param(&init, "threshold"));
}

static void test_ctx_emit_publishes_on_source_with_origin_flags(void **state)
{
    fx *f = *state;
    assert_int_equal(mf_emit(&f->x, "out/a", "hello", 5), 0);
    assert_int_equal(f->sink.n, 1);
    const wt_rec *r = &f->sink.recs[0];
    assert_int_equal(r->h.kind, REC_PUBLISH);
    assert_int_equal(r->h.client, 0);
    assert_int_equal(r->h.src_client, 0);
    assert_int_equal(r->h.rule, 1);
    assert_int_equal(r->h.step, REC_NONE);
    assert_int_equal(r->h.qos, 1);
    assert_int_equal(r->h.retain, 1);
    assert_int_equal(r->h.seq, 77);
    assert_int_equal(r->h.received_ns, 123);
    assert_string_equal(r->topic, "out/a");
    assert_string_equal(r->payload, "hello");
    assert_int_equal(f->slot.out, 1);
    /* an empty payload may be NULL */
    assert_int_equal(mf_emit(&f->x, "out/b", NULL, 0), 0);
    assert_int_equal(f->sink.recs[1].len, 0);
}

static void test_ctx_emit_rejects_bad_topics_and_sizes(void **state)
{
    fx *f = *state;
    static char big[1001];
    assert_int_equal(mf_emit(&f->x, "a/+/b", "x", 1), -EINVAL);
    assert_int_equal(mf_emit(&f->x, "a/#", "x", 1), -EINVAL);
    assert_int_equal(mf_emit(&f->x, "", "x", 1), -EINVAL);
    assert_int_equal(mf_emit(&f->x, NULL, "x", 1), -EINVAL);
    assert_int_equal(mf_emit(&f->x, "ok", NULL, 3), -EINVAL);
    assert_int_equal(mf_emit(&f->x, "ok", big, sizeof(big)), -EINVAL); /* > max_payload */
    assert_int_equal(mf_emit(&f->x, "ok", big, 1000), 0);              /* == max_payload */
    assert_int_equal(f->sink.total, 1);
}

/* issue 8 items 2 and 4: control characters and bad UTF-8 are refused like wildcards; a
 * forked child of the worker may not write into the worker's output ring (it would be a
 * second producer of an SPSC ring) */
static void test_ctx_emit_rejects_control_chars_and_forked_children(void **state)
{
    fx *f = *state;
    assert_int_equal(mf_emit(&f->x, "a\nb", "x", 1), -EINVAL);
    assert_int_equal(mf_emit(&f->x, "a\x7f", "x", 1), -EINVAL);
    assert_int_equal(mf_emit(&f->x, "a\xc2\x85", "x", 1), -EINVAL); /* U+0085 */
    assert_int_equal(mf_emit(&f->x, "a\xff", "x", 1), -EINVAL);     /* not UTF-8 */
    assert_int_equal(mf_emit(&f->x, "caf\xc3\xa9", "x", 1), 0);     /* é is fine */
    assert_int_equal(mf_publish(&f->x, "c2", "a\tb", "x", 1, 0, 0), -EINVAL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int a = mf_emit(&f->x, "t", "x", 1);
        int b = mf_publish(&f->x, "c2", "t", "x", 1, 0, 0);
        _exit(a == -EPERM && b == -EPERM ? 0 : 1);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_int_equal(f->sink.total, 1);
}

/* The fork check costs no system call per output (ctx.c): a child made by a raw clone system
 * call, which runs no pthread_atfork handler and leaves glibc's state alone, is refused too,
 * and a new invocation set up in the child does not make it the owner. */
static void test_ctx_emit_refused_in_raw_clone_child(void **state)
{
    fx *f = *state;
    assert_int_equal(mf_emit(&f->x, "t", "x", 1), 0);
    long pid = syscall(SYS_clone, (long)SIGCHLD, 0L, 0L, 0L, 0L);
    assert_true(pid >= 0);
    if (pid == 0) {
        int a = mf_emit(&f->x, "t", "x", 1);
        mf_ctx y;
        ctx_init_call(&y, &f->env, 1, -1, "a", NULL, 0, ctx_next_publish_source, NULL, &f->o);
        int b = mf_publish(&y, "c2", "t", "x", 1, 0, 0);
        syscall(SYS_exit_group, a == -EPERM && b == -EPERM ? 0 : 1);
    }
    int st = 0;
    assert_int_equal(waitpid((pid_t)pid, &st, 0), (pid_t)pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_int_equal(mf_emit(&f->x, "t", "x", 1), 0); /* the worker itself still may */
    assert_int_equal(f->sink.total, 2);
}

/* A next step that rewrites the buffer of the topic it was emitted (a callback further down a
 * chain writing into one of the callback above) and publishes it, then restores it and hands
 * it on. */
static int rewrite_then_publish(mf_ctx *x, const char *topic, const void *payload, size_t len)
{
    char *t = (char *)(uintptr_t)topic;
    t[1] = '\n';
    int a = mf_publish(x, "c2", topic, payload, len, 0, 0);
    t[1] = '/';
    int b = ctx_next_publish_source(x, topic, payload, len);
    return a == -EINVAL && b == 0 ? 0 : -EIO;
}

/* ctx_write at a chain's end trusts the topic an mf_emit under way checked (same pointer), so
 * the check is made once per output; mf_publish checks whatever it is given, even that
 * pointer; once the emit returned, the same pointer is checked again. */
static void test_ctx_emit_checks_once_publish_always(void **state)
{
    fx *f = *state;
    char topic[] = "a/b";
    ctx_init_call(&f->x, &f->env, 1, -1, "a", NULL, 0, rewrite_then_publish, NULL, &f->o);
    assert_int_equal(mf_emit(&f->x, topic, "x", 1), 0);
    assert_int_equal(f->sink.total, 1); /* the hand-on; the publish was refused */
    topic[1] = '\n';
    assert_int_equal(ctx_write(&f->env, 1, -1, &f->o, 0, topic, "x", 1, 0, 0), -EINVAL);
    assert_int_equal(f->sink.total, 1);
}

static void test_ctx_emit_limit_per_invocation(void **state)
{
    fx *f = *state;
    for (unsigned i = 0; i < CTX_MAX_EMITS; i++)
        assert_int_equal(mf_emit(&f->x, "t", "x", 1), 0);
    assert_int_equal(mf_emit(&f->x, "t", "x", 1), -ENOSPC);
    assert_int_equal(mf_publish(&f->x, "c2", "t", "x", 1, 0, 0), -ENOSPC);
    assert_int_equal(f->sink.total, CTX_MAX_EMITS);
    /* the next invocation starts afresh */
    ctx_init_call(&f->x, &f->env, 1, -1, "a", NULL, 0, ctx_next_publish_source, NULL, &f->o);
    assert_int_equal(mf_emit(&f->x, "t", "x", 1), 0);
}

static void test_ctx_publish_by_client_id(void **state)
{
    fx *f = *state;
    assert_int_equal(mf_publish(&f->x, "nobody", "t", "x", 1, 0, 0), -EINVAL);
    assert_int_equal(mf_publish(&f->x, NULL, "t", "x", 1, 0, 0), -EINVAL);
    assert_int_equal(mf_publish(&f->x, "c2", "t", "x", 1, 2, 0), -EINVAL); /* qos 0 or 1 */
    assert_int_equal(mf_publish(&f->x, "c2", "t", "x", 1, 0, 5), -EINVAL);
    assert_int_equal(mf_publish(&f->x, "c2", "t/+", "x", 1, 0, 0), -EINVAL);
    assert_int_equal(f->sink.total, 0);
    assert_int_equal(mf_publish(&f->x, "c2", "t/x", "pay", 3, 0, 1), 0);
    assert_int_equal(f->sink.n, 1);
    const wt_rec *r = &f->sink.recs[0];
    assert_int_equal(r->h.client, 1);
    assert_int_equal(r->h.src_client, 0);
    assert_int_equal(r->h.qos, 0);
    assert_int_equal(r->h.retain, 1);
    assert_string_equal(r->topic, "t/x");
    assert_string_equal(r->payload, "pay");
}

static void test_ctx_module_context_refuses_outputs(void **state)
{
    fx *f = *state;
    mf_ctx x;
    ctx_init_module(&x, &f->env, "/some/module.so");
    assert_int_equal(mf_emit(&x, "t", "x", 1), -EINVAL);
    assert_int_equal(mf_publish(&x, "c1", "t", "x", 1, 0, 0), -EINVAL);
    mf_log(&x, MF_LOG_INFO, "logging from mf_init works: %d", 1);
    assert_int_equal(f->sink.total, 0);
}

static int returns_seven(mf_ctx *x, const mf_msg *m, size_t n)
{
    (void)m;
    (void)n;
    mf_log(x, MF_LOG_INFO, "about to fail");
    return 7;
}

static int checks_busy(mf_ctx *x, const mf_msg *m, size_t n)
{
    (void)m;
    (void)n;
    return stats_get(&x->env->slot->busy_since_ns) != 0 ? 0 : 1;
}

static void test_ctx_call_logs_and_counts_errors(void **state)
{
    fx *f = *state;
    mf_msg m = {.topic = "in/x", .payload = "", .client_id = "c1"};
    wt_capture cap;
    char log[4096];
    wt_capture_start(&cap);
    int rc = ctx_call(&f->x, returns_seven, &m, 1);
    wt_capture_end(&cap, log, sizeof(log));
    assert_int_equal(rc, 7);
    assert_int_equal(f->slot.errors, 1);
    assert_non_null(strstr(log, "rule r1: callback a returned 7"));
    assert_non_null(strstr(log, "rule r1, callback a: about to fail"));
    assert_int_equal(ctx_call(&f->x, checks_busy, &m, 1), 0);
    assert_int_equal(f->slot.busy_since_ns, 0);
    assert_int_equal(f->slot.errors, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST_ST(test_ctx_param_returns_step_values),
        TEST_ST(test_ctx_emit_rejects_control_chars_and_forked_children),
        TEST_ST(test_ctx_emit_refused_in_raw_clone_child),
        TEST_ST(test_ctx_emit_checks_once_publish_always),
        TEST_ST(test_ctx_emit_publishes_on_source_with_origin_flags),
        TEST_ST(test_ctx_emit_rejects_bad_topics_and_sizes),
        TEST_ST(test_ctx_emit_limit_per_invocation),
        TEST_ST(test_ctx_publish_by_client_id),
        TEST_ST(test_ctx_module_context_refuses_outputs),
        TEST_ST(test_ctx_call_logs_and_counts_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
