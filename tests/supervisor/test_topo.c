/* Unit tests of supervisor/topo.c: the segments of an instance, created and removed from a
 * config, live-instance refusal, stale reclaim and ring fill levels. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cfg.h"
#include "names.h"
#include "rec.h"
#include "ring.h"
#include "shm.h"
#include "supervisor/salvage.h"
#include "supervisor/topo.h"
#include "tests/tools/testlib.h"

typedef struct fx {
    cfg *c;
    char instance[40];
    char dir[64]; /* the instance's spool and dead letters: the test's own folder */
} fx;

/* Waits for child pid, which must exit with status 0. */
static void expect_exit_0(pid_t pid)
{
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static int seg_exists(const char *name)
{
    char path[SHM_NAME_MAX + 16];
    snprintf(path, sizeof(path), "/dev/shm/%s", name);
    return access(path, F_OK) == 0;
}

/* Lines of the instance's dead-letter store holding needle (all lines when NULL). */
static int dead_lines(const fx *f, const char *needle)
{
    char path[128], line[4096];
    snprintf(path, sizeof(path), "%s/dead/dead-letters.jsonl", f->dir);
    FILE *fp = fopen(path, "r");
    int n = 0;
    while (fp && fgets(line, sizeof(line), fp))
        n += !needle || strstr(line, needle) != NULL;
    if (fp)
        fclose(fp);
    return n;
}

/* In a child that dies holding them (a dead instance): n records "rec <i>" queued in ring
 * `name`, created with the given geometry. */
static void leave_ring(const char *name, size_t cap, size_t max_rec, int n)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ring *r = NULL, *p = NULL;
        char rec[32];
        if (ring_create(name, cap, max_rec, &r) != 0 || ring_attach(name, RING_PRODUCER, &p))
            _exit(1);
        for (int i = 0; i < n; i++) {
            int len = snprintf(rec, sizeof(rec), "rec %d.", i);
            if (ring_push(p, rec, (size_t)len) != 0)
                _exit(1);
        }
        ring_flush(p);
        _exit(0);
    }
    expect_exit_0(pid);
}

/* The test config of instance with rule rule_name. NULL when it does not load. */
static cfg *load_config(const char *instance, const char *rule_name, const char *dir)
{
    char yaml[1280];
    snprintf(yaml, sizeof(yaml),
             "mqtt_clients:\n"
             "  - client_id: \"a\"\n"
             "    broker_url: \"mqtt://127.0.0.1\"\n"
             "    topics: [{name: \"in/#\"}]\n"
             "  - client_id: \"b\"\n"
             "    broker_url: \"mqtt://127.0.0.1\"\n"
             "    topics: [{name: \"in2/#\"}]\n"
             "  - client_id: \"out\"\n"
             "    broker_url: \"mqtt://127.0.0.1\"\n"
             "processing_chains:\n"
             "  fwd:\n"
             "    - step: \"relay\"\n"
             "      config: { target_client_id: \"out\" }\n"
             "rules:\n"
             "  - rule: \"%s\"\n"
             "    topic: \"#\"\n"
             "    action: \"fwd\"\n"
             "runtime:\n"
             "  instance: \"%s\"\n"
             "  workers: 3\n"
             "  ring_size: 65536\n"
             /* salvaged records go to the dead-letter store: never the service's default
              * state folder (/var/lib/mqttflow as root) */
             "  spool_dir: \"%s/spool\"\n"
             "  dead_letter: {dir: \"%s/dead\"}\n",
             rule_name, instance, dir, dir);
    cfg_diag d = {0};
    cfg *c = NULL;
    int rc = cfg_load_buffer("topo.yaml", "/tmp", yaml, strlen(yaml), 0, &c, &d);
    for (size_t i = 0; i < d.n_errors; i++)
        fprintf(stderr, "%s\n", d.errors[i]);
    cfg_diag_fini(&d);
    return rc < 0 ? NULL : c;
}

static int setup(void **state)
{
    static int seq;
    fx *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->instance, sizeof(f->instance), "ttopo%d_%d", (int)getpid(), seq++);
    snprintf(f->dir, sizeof(f->dir), "/tmp/mqttflow-topo.XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    f->c = load_config(f->instance, "r", f->dir);
    if (!f->c) {
        testlib_remove_dir(f->dir);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    cfg_destroy(f->c);
    testlib_remove_dir(f->dir);
    free(f);
    return 0;
}

static void test_topo_max_record(void **state)
{
    (void)state;
    /* large rings: the largest possible record (longest topic, max payload) */
    size_t want = rec_size(CFG_MAX_TOPIC, 256 * 1024) & ~(size_t)7;
    assert_int_equal(topo_max_record(4u << 20, 256 * 1024), want);
    /* small rings: a quarter of the ring */
    assert_int_equal(topo_max_record(65536, 256 * 1024), 16384);
    assert_int_equal(topo_max_record(65536, 256 * 1024) % RING_ALIGN, 0);
}

static void test_topo_creates_and_removes_every_segment(void **state)
{
    fx *f = *state;
    topo *t = NULL;
    char err[256] = "", name[SHM_NAME_MAX];
    assert_int_equal(topo_create(f->c, &t, err, sizeof(err)), 0);
    assert_int_equal(cfg_ingress_count(f->c), 2);
    for (size_t i = 0; i < 2; i++) {
        names_ingress_ring(name, sizeof(name), f->instance, i);
        assert_true(seg_exists(name));
    }
    for (size_t w = 0; w < 3; w++) {
        names_worker_in(name, sizeof(name), f->instance, w);
        assert_true(seg_exists(name));
        names_worker_out(name, sizeof(name), f->instance, w);
        assert_true(seg_exists(name));
    }
    names_stats(name, sizeof(name), f->instance);
    assert_true(seg_exists(name));
    stats *st = topo_stats(t);
    assert_non_null(st);
    assert_int_equal(stats_slot_count(st), stats_slot_total(2, 3));
    /* the ring geometry comes from the config */
    ring *r = NULL;
    names_worker_in(name, sizeof(name), f->instance, 2);
    assert_int_equal(ring_attach(name, RING_OBSERVER, &r), 0);
    assert_int_equal(ring_capacity(r), 65536);
    assert_int_equal(ring_max_record(r), 16384);
    ring_detach(r);

    /* a worker's own state segment goes too */
    shm *state_seg = NULL;
    names_worker_state(name, sizeof(name), f->instance, 1);
    assert_int_equal(shm_create(name, SHM_KIND_STATE, 1, 4096, &state_seg), 0);
    shm_detach(state_seg);

    topo_destroy(t, 1);
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "mqttflow.%s.", f->instance);
    FILE *p = popen("ls /dev/shm", "r");
    assert_non_null(p);
    char line[256];
    while (fgets(line, sizeof(line), p))
        assert_true(strncmp(line, prefix, strlen(prefix)) != 0);
    pclose(p);
}

static void test_topo_refuses_a_live_instance(void **state)
{
    fx *f = *state;
    topo *t = NULL, *t2 = NULL;
    char err[256] = "", want[128];
    assert_int_equal(topo_create(f->c, &t, err, sizeof(err)), 0);
    /* the owner (this process) is alive: a second creation fails, naming the owner */
    assert_int_equal(topo_create(f->c, &t2, err, sizeof(err)), -EEXIST);
    assert_null(t2);
    snprintf(want, sizeof(want), "instance %s is already running (pid %d)", f->instance,
             (int)getpid());
    assert_string_equal(err, want);
    /* and did not remove the live instance's segments */
    char name[SHM_NAME_MAX];
    names_ingress_ring(name, sizeof(name), f->instance, 1);
    assert_true(seg_exists(name));
    topo_destroy(t, 1);
}

/* A supervisor that dies holding its segments: a child creates f's topology, runs leave(f)
 * (0, or -1 to fail) and exits without cleaning up. */
static void dead_instance(const fx *f, int (*leave)(const fx *f))
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        topo *t = NULL;
        char err[256];
        if (topo_create(f->c, &t, err, sizeof(err)) != 0 || leave(f) != 0)
            _exit(1);
        _exit(0);
    }
    expect_exit_0(pid);
}

/* A worker's state, a segment of a worker a bigger config had, and 7 records queued for
 * worker 2. */
static int leave_states_and_queue(const fx *f)
{
    char name[SHM_NAME_MAX];
    shm *s1 = NULL, *s2 = NULL;
    ring *p = NULL;
    names_worker_state(name, sizeof(name), f->instance, 1);
    if (shm_create(name, SHM_KIND_STATE, 1, 4096, &s1) != 0)
        return -1;
    names_worker_in(name, sizeof(name), f->instance, 9);
    if (shm_create(name, SHM_KIND_STATE, 1, 4096, &s2) != 0)
        return -1;
    names_worker_in(name, sizeof(name), f->instance, 2);
    if (ring_attach(name, RING_PRODUCER, &p) != 0)
        return -1;
    for (int i = 0; i < 7; i++)
        if (ring_push(p, "queued", 6) != 0)
            return -1;
    ring_flush(p);
    return 0;
}

/* One record for rule 0 in worker 0's input ring. */
static int queue_rule_0(const fx *f)
{
    char name[SHM_NAME_MAX];
    ring *p = NULL;
    names_worker_in(name, sizeof(name), f->instance, 0);
    if (ring_attach(name, RING_PRODUCER, &p) != 0 || ring_push(p, "rule 0", 6) != 0)
        return -1;
    ring_flush(p);
    return 0;
}

static void test_topo_adopts_what_a_dead_instance_left(void **state)
{
    fx *f = *state;
    dead_instance(f, leave_states_and_queue);
    char name[SHM_NAME_MAX];
    names_stats(name, sizeof(name), f->instance);
    assert_true(seg_exists(name));
    topo *t = NULL;
    char err[256] = "";
    assert_int_equal(topo_create(f->c, &t, err, sizeof(err)), 0);
    /* the queued records are there for the next consumer */
    assert_int_equal(topo_resumed_records(t), 7);
    assert_true(topo_fill_pct(t, STATS_WORKER, 2) > 0);
    assert_int_equal(topo_fill_pct(t, STATS_WORKER, 1), 0);
    names_worker_in(name, sizeof(name), f->instance, 2);
    ring *c = NULL;
    assert_int_equal(ring_attach(name, RING_CONSUMER, &c), 0);
    for (int i = 0; i < 7; i++) {
        const void *buf;
        size_t len;
        assert_int_equal(ring_peek(c, &buf, &len), 0);
        assert_int_equal(len, 6);
        assert_memory_equal(buf, "queued", 6);
        ring_advance(c);
    }
    assert_int_equal(ring_peek(c, &(const void *){NULL}, &(size_t){0}), -EAGAIN);
    /* the worker's state is left to the worker; the ring of no current stage is gone */
    names_worker_state(name, sizeof(name), f->instance, 1);
    assert_true(seg_exists(name));
    names_worker_in(name, sizeof(name), f->instance, 9);
    assert_false(seg_exists(name));
    names_worker_in(name, sizeof(name), f->instance, 2);
    assert_true(seg_exists(name));

    /* a stop that is not clean keeps the rings with records and the state; the records were
     * only read, not released, so the ring still holds them */
    topo_destroy(t, 0);
    assert_true(seg_exists(name));
    names_worker_state(name, sizeof(name), f->instance, 1);
    assert_true(seg_exists(name));
    names_worker_in(name, sizeof(name), f->instance, 0);
    assert_false(seg_exists(name)); /* empty */
    names_stats(name, sizeof(name), f->instance);
    assert_false(seg_exists(name));

    ring_detach(c);
    names_worker_in(name, sizeof(name), f->instance, 2);
    assert_int_equal(ring_unlink(name), 0);
    names_worker_state(name, sizeof(name), f->instance, 1);
    assert_int_equal(shm_unlink_name(name), 0);
}

/* Issue 8 item 5: a ring of another geometry (runtime.ring_size or max_payload changed) is
 * not adopted, but its records are dead-lettered before it is made anew: none is lost. */
static void test_topo_dead_letters_a_ring_of_another_geometry(void **state)
{
    fx *f = *state;
    char name[SHM_NAME_MAX];
    /* another size (worker 0's output), and the config's size with another record limit
     * (ingress 1) */
    names_worker_out(name, sizeof(name), f->instance, 0);
    leave_ring(name, 8192, 1024, 5);
    names_ingress_ring(name, sizeof(name), f->instance, 1);
    leave_ring(name, 65536, 1024, 7);
    topo *t = NULL;
    char err[256] = "";
    assert_int_equal(topo_create(f->c, &t, err, sizeof(err)), 0);
    assert_int_equal(topo_resumed_records(t), 0);
    assert_int_equal(topo_fill_pct(t, STATS_RELAY, 0), 0);
    assert_int_equal(topo_fill_pct(t, STATS_INGRESS, 1), 0);
    assert_int_equal(dead_lines(f, NULL), 12);
    assert_int_equal(dead_lines(f, "\"configuration changed: queued in a ring of another "
                                   "geometry"),
                     12);
    assert_int_equal(dead_lines(f, "\"rec 4.\""), 2); /* one of each ring */
    assert_int_equal(dead_lines(f, "\"rec 6.\""), 1);
    topo_destroy(t, 1);
}

/* A salvage that fails part-way (here the store's file may not grow: EFBIG) and is tried
 * again writes every record exactly once: what was synced was released from the ring. */
static void test_salvage_retry_writes_no_record_twice(void **state)
{
    fx *f = *state;
    char name[SHM_NAME_MAX];
    names_worker_in(name, sizeof(name), f->instance, 7);
    leave_ring(name, 65536, 1024, 300);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit rl = {4096, 4096}; /* about 15 dead letters */
        uint64_t n = 0;
        signal(SIGXFSZ, SIG_IGN);
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(1);
        _exit(salvage_ring(name, f->c, "test", &n) == -EFBIG ? 0 : 2);
    }
    expect_exit_0(pid);
    int first = dead_lines(f, NULL);
    assert_true(first > 0 && first < 300);
    uint64_t n = 0;
    assert_int_equal(salvage_ring(name, f->c, "test", &n), 0);
    assert_int_equal(n, 300 - (uint64_t)first);
    assert_int_equal(dead_lines(f, NULL), 300);
    char rec[32];
    for (int i = 0; i < 300; i++) {
        snprintf(rec, sizeof(rec), "\"rec %d.\"", i);
        assert_int_equal(dead_lines(f, rec), 1);
    }
    /* and a third salvage finds nothing left */
    assert_int_equal(salvage_ring(name, f->c, "test", &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(ring_unlink(name), 0);
}

/* Records are read only from a segment this user's mqttflow left: not from one others may
 * read or write (mode), nor through a symlink. */
static void test_salvage_reads_only_segments_of_ours(void **state)
{
    fx *f = *state;
    char name[SHM_NAME_MAX], path[SHM_NAME_MAX + 16], link[SHM_NAME_MAX + 16];
    uint64_t n = 0;
    names_worker_in(name, sizeof(name), f->instance, 7);
    leave_ring(name, 65536, 1024, 3);
    snprintf(path, sizeof(path), "/dev/shm/%s", name);
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(shm_check_ours(name), -EPERM);
    assert_int_equal(salvage_ring(name, f->c, "test", &n), -EPERM);
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(shm_check_ours(name), 0);

    char lname[SHM_NAME_MAX];
    names_worker_in(lname, sizeof(lname), f->instance, 8);
    snprintf(link, sizeof(link), "/dev/shm/%s", lname);
    assert_int_equal(symlink(path, link), 0);
    assert_true(shm_check_ours(lname) < 0);
    assert_true(salvage_ring(lname, f->c, "test", &n) < 0);
    assert_int_equal(unlink(link), 0);
    assert_int_equal(dead_lines(f, NULL), 0);
    assert_int_equal(ring_unlink(name), 0);
}

static void test_topo_drops_records_of_another_configuration(void **state)
{
    fx *f = *state;
    dead_instance(f, queue_rule_0);
    /* rule 0 is another rule now: the record must not be run by it */
    cfg *other = load_config(f->instance, "renamed", f->dir);
    assert_non_null(other);
    topo *t = NULL;
    char err[256] = "";
    assert_int_equal(topo_create(other, &t, err, sizeof(err)), 0);
    assert_int_equal(topo_resumed_records(t), 0);
    assert_int_equal(topo_fill_pct(t, STATS_WORKER, 0), 0);
    topo_destroy(t, 1);
    cfg_destroy(other);
}

static void test_topo_fill_levels(void **state)
{
    fx *f = *state;
    topo *t = NULL;
    char err[256] = "", name[SHM_NAME_MAX];
    assert_int_equal(topo_create(f->c, &t, err, sizeof(err)), 0);
    assert_int_equal(topo_fill_pct(t, STATS_INGRESS, 0), 0);
    assert_int_equal(topo_fill_pct(t, STATS_ROUTER, 0), 0);
    assert_int_equal(topo_fill_pct(t, STATS_SUPERVISOR, 0), -1);
    assert_int_equal(topo_fill_pct(t, STATS_WORKER, 9), -1);
    assert_int_equal(topo_bytes_queued(t), 0);

    /* a producer fills half of ingress ring 1 */
    ring *p = NULL;
    names_ingress_ring(name, sizeof(name), f->instance, 1);
    assert_int_equal(ring_attach(name, RING_PRODUCER, &p), 0);
    char rec[1024];
    memset(rec, 'x', sizeof(rec));
    size_t pushed = 0;
    while (pushed < 65536 / 2) {
        assert_int_equal(ring_push(p, rec, sizeof(rec) - 8), 0);
        pushed += sizeof(rec);
    }
    ring_flush(p);
    int pct = topo_fill_pct(t, STATS_INGRESS, 1);
    assert_true(pct >= 49 && pct <= 51);
    assert_int_equal(topo_fill_pct(t, STATS_INGRESS, 0), 0);
    /* the router consumes both ingress rings: a quarter of their total */
    pct = topo_fill_pct(t, STATS_ROUTER, 0);
    assert_true(pct >= 24 && pct <= 26);
    assert_int_equal(topo_fill_pct(t, STATS_RELAY, 0), 0);
    assert_true(topo_bytes_queued(t) >= 65536 / 2);
    ring_detach(p);
    /* a ring holding records outlives even a clean stop: the next run adopts it */
    topo_destroy(t, 1);
    names_ingress_ring(name, sizeof(name), f->instance, 1);
    assert_true(seg_exists(name));
    assert_int_equal(ring_unlink(name), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topo_max_record),
        TEST_ST(test_topo_creates_and_removes_every_segment),
        TEST_ST(test_topo_refuses_a_live_instance),
        TEST_ST(test_topo_adopts_what_a_dead_instance_left),
        TEST_ST(test_topo_dead_letters_a_ring_of_another_geometry),
        TEST_ST(test_salvage_retry_writes_no_record_twice),
        TEST_ST(test_salvage_reads_only_segments_of_ours),
        TEST_ST(test_topo_drops_records_of_another_configuration),
        TEST_ST(test_topo_fill_levels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
