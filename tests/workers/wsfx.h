/* wsfx: a worker's chain set over a real state segment, for the tests of stateful steps
 * (test_state_steps, test_step_dedup): an instance of its own, the segment opened the way a
 * worker opens it, messages fed with input positions, and a "previous worker" run in a child
 * that dies of SIGKILL holding the segment. Header-only, like wtest.h; include cmocka.h first. */
#ifndef MF_TESTS_WSFX_H
#define MF_TESTS_WSFX_H

#include <signal.h>
#include <sys/wait.h>

#include "names.h"
#include "shm.h"
#include "workers/chain.h"
#include "workers/loader.h"
#include "workers/wstate.h"
#include "wtest.h"

typedef struct wsfx {
    char instance[32];
    char name[SHM_NAME_MAX]; /* the state segment of worker 0 */
    cfg *c;                  /* the test loads it (its YAML names instance) */
    ctx_env env;
    wt_sink sink;
    stats_slot slot;
    loader *ld;
    wstate *ws;
    chain_set *cs;
} wsfx;

/* A fixture for instance "<prefix><pid>-<n>", nothing built; NULL on ENOMEM. */
static inline wsfx *wsfx_new(const char *prefix)
{
    static int counter;
    wsfx *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    snprintf(f->instance, sizeof(f->instance), "%s%d-%d", prefix, (int)getpid(), counter++);
    names_worker_state(f->name, sizeof(f->name), f->instance, 0);
    return f;
}

/* The end of a "previous worker" child: the parent waits for pid and asserts that SIGKILL
 * ended it. */
static inline void wsfx_wait_killed(pid_t pid)
{
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGKILL);
}

/* Opens the state segment and builds the chains over it (a worker's run_attach). */
static inline void wsfx_build(wsfx *f)
{
    memset(&f->sink, 0, sizeof(f->sink));
    wt_env(&f->env, f->c, &f->sink, &f->slot);
    wstate_input in = {.pid = 1, .start = 2};
    assert_int_equal(wstate_open(f->c, 0, &in, &f->ws), 0);
    f->env.state = f->ws;
    assert_int_equal(loader_create(&f->env, &f->ld), 0);
    assert_int_equal(chain_set_create(&f->env, f->ld, &f->cs), 0);
}

/* Tears down what wsfx_build made, the segment's contents kept. */
static inline void wsfx_unbuild(wsfx *f)
{
    chain_set_destroy(f->cs);
    wstate_close(f->ws);
    loader_destroy(f->ld);
    f->cs = NULL;
    f->ws = NULL;
    f->ld = NULL;
}

/* Everything, the segment included; accepts NULL. 0 (a cmocka teardown's result). */
static inline int wsfx_free(wsfx *f)
{
    if (!f)
        return 0;
    wsfx_unbuild(f);
    cfg_destroy(f->c);
    shm_unlink_name(f->name);
    free(f);
    return 0;
}

/* A cmocka setup's end: *state = f with config c (wt_cfg of YAML naming f->instance), 0; or -1
 * with both freed when either is NULL. */
static inline int wsfx_setup(void **state, wsfx *f, cfg *c)
{
    if (!f || !c) {
        cfg_destroy(c);
        wsfx_free(f);
        return -1;
    }
    f->c = c;
    *state = f;
    return 0;
}

/* Runs rule on one message from input position pos (0: not from the ring); the number of
 * records it wrote. */
static inline size_t wsfx_feed(wsfx *f, int rule, const char *topic, const char *payload,
                               uint64_t pos)
{
    size_t before = f->sink.total;
    ctx_origin o = {.client = 0, .qos = 1, .seq = pos, .received_ns = 9, .pos = pos};
    mf_msg m = {.topic = topic,
                .payload = payload,
                .payload_len = strlen(payload),
                .qos = 1,
                .client_id = "c1",
                .received_ns = 9};
    assert_int_equal(chain_run(f->cs, rule, &o, &m), 0);
    return f->sink.total - before;
}

/* A previous worker: a child builds the chains, runs fn, and dies of SIGKILL. */
static inline void wsfx_crash_after(wsfx *f, void (*fn)(wsfx *f))
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        wsfx_build(f);
        fn(f);
        raise(SIGKILL);
        _exit(1);
    }
    wsfx_wait_killed(pid);
}

#endif
