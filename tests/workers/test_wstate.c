/* workers/wstate and workers/window: the state segment of a worker and the windows in it.
 * A "crash" is a forked child that opens the segment, changes it and dies of SIGKILL without
 * closing anything; the test process then adopts what it left. Covered: an adopted window
 * keeps its messages and deadline; a changed configuration starts fresh; a corrupt header or
 * a corrupt window is reset (logged), never read; re-adds from input positions a previous
 * worker applied are skipped (several adds of one record included), unless the input ring
 * changed; close attempts survive; a live owner is refused; the segment takes memory only
 * for the pages in use. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "clock.h"
#include "names.h"
#include "shm.h"
#include "workers/window.h"
#include "workers/wstate.h"
#include "wsfx.h"
#include "wtest.h"
#include "tests/tools/testlib.h"

typedef struct fx {
    char instance[32];
    char name[SHM_NAME_MAX];
} fx;

static const char *yaml_fmt = "mqtt_clients:\n"
                              "  - client_id: c1\n"
                              "    broker_url: mqtt://127.0.0.1\n"
                              "    topics: [{name: \"in/#\"}]\n"
                              "rules:\n"
                              "  - {rule: r0, source_client_id: c1, topic: \"in/#\", action: ch}\n"
                              "processing_chains:\n"
                              "  ch:\n"
                              "    - {step: filter, config: {condition: \"1 == 1\"}}\n"
                              "    - {step: sampler, config: {duration: %g, max_messages: 8}}\n"
                              "runtime: {instance: \"%s\", workers: 1}\n";

#define IN_PID   4242u
#define IN_START 777u
#define DUR_NS   600000000000ull /* 600 s */

static int setup(void **state)
{
    static int counter;
    fx *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->instance, sizeof(f->instance), "ws%d-%d", (int)getpid(), counter++);
    names_worker_state(f->name, sizeof(f->name), f->instance, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    shm_unlink_name(f->name);
    free(f);
    return 0;
}

static cfg *config(const fx *f, double duration)
{
    cfg *c = wt_cfg(yaml_fmt, duration, f->instance);
    assert_non_null(c);
    return c;
}

/* Opens the state and the window of step 1. */
static wstate *open_win_at(const cfg *c, uint64_t in_pid, uint64_t tail, window **w)
{
    wstate *ws = NULL;
    size_t len = 0;
    wstate_input in = {.pid = in_pid, .start = IN_START, .tail = tail};
    assert_int_equal(wstate_open(c, 0, &in, &ws), 0);
    void *region = wstate_region(ws, 0, 1, &len);
    assert_non_null(region);
    assert_null(wstate_region(ws, 0, 0, NULL)); /* a filter has no state */
    uint64_t dur = (uint64_t)(c->chains[0].steps[1].duration * 1e9);
    assert_int_equal(
        window_create(region, len, dur, 8, wstate_positions_valid(ws), "test window", w), 0);
    return ws;
}

/* The input ring as the crashed worker left it: tail TAIL. */
#define TAIL 64u

static wstate *open_win(const cfg *c, uint64_t in_pid, window **w)
{
    return open_win_at(c, in_pid, TAIL, w);
}

static int add(window *w, const char *payload, uint64_t pos, uint64_t now)
{
    mf_msg m = {.topic = "in/t",
                .payload = payload,
                .payload_len = strlen(payload),
                .qos = 1,
                .client_id = "c1"};
    ctx_origin o = {.client = 0, .qos = 1, .seq = pos, .received_ns = 5, .pos = pos};
    return window_add(w, &m, &o, now);
}

/* The payloads held, joined by commas. */
static const char *held(window *w)
{
    static char buf[256];
    const mf_msg *msgs;
    ctx_origin o;
    size_t n = window_msgs(w, &msgs, &o);
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++)
        snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s", i ? "," : "",
                 (const char *)msgs[i].payload);
    return buf;
}

/* Runs fn in a child that then dies of SIGKILL holding the segment. */
static void crash_after(const cfg *c, void (*fn)(window *w, uint64_t now), uint64_t now)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        window *w;
        wstate *ws = open_win_at(c, IN_PID, 0, &w);
        wstate_note_released(ws, TAIL); /* records before 11 were released */
        fn(w, now);
        raise(SIGKILL);
        _exit(1);
    }
    wsfx_wait_killed(pid);
}

/* A config of a 600 s window whose state a worker left behind: it ran fn, then died. */
static cfg *crashed(const fx *f, void (*fn)(window *w, uint64_t now), uint64_t now)
{
    cfg *c = config(f, 600);
    crash_after(c, fn, now);
    return c;
}

/* The state that the worker of crashed(f, fn, now) left, opened anew from input ring in_pid
 * at tail: *c its config, *w its window. */
static wstate *reopened(const fx *f, void (*fn)(window *w, uint64_t now), uint64_t now,
                        uint64_t in_pid, uint64_t tail, cfg **c, window **w)
{
    *c = crashed(f, fn, now);
    return open_win_at(*c, in_pid, tail, w);
}

/* open_win (input ring IN_PID), with what it logged in log. */
static wstate *open_win_logged(const cfg *c, window **w, char *log, size_t cap)
{
    wt_capture capture;
    wt_capture_start(&capture);
    wstate *ws = open_win(c, IN_PID, w);
    wt_capture_end(&capture, log, cap);
    return ws;
}

static void close_all(window *w, wstate *ws, cfg *c)
{
    window_destroy(w);
    wstate_close(ws);
    cfg_destroy(c);
}

static void add_abc(window *w, uint64_t now)
{
    add(w, "a", 11, now);
    add(w, "b", 12, now + 1);
    add(w, "b2", 12, now + 2); /* a second add from the same input record */
    add(w, "c", 13, now + 3);
}

static void test_wstate_adopted_window_keeps_messages_and_deadline(void **state)
{
    uint64_t now = clock_mono_ns();
    cfg *c;
    window *w;
    wstate *ws = reopened(*state, add_abc, now, IN_PID, TAIL, &c, &w);
    assert_true(wstate_adopted(ws));
    assert_int_equal(window_count(w), 4);
    assert_string_equal(held(w), "a,b,b2,c");
    assert_int_equal(window_deadline(w), now + DUR_NS); /* opened by the first add */
    close_all(w, ws, c);
}

static void test_wstate_readds_by_position_are_skipped(void **state)
{
    uint64_t now = clock_mono_ns();
    cfg *c;
    window *w;
    wstate *ws = reopened(*state, add_abc, now, IN_PID, TAIL, &c, &w);
    assert_true(wstate_positions_valid(ws));
    /* the records re-read after the crash: all applied already */
    assert_int_equal(add(w, "a", 11, now), 1);
    assert_int_equal(add(w, "b", 12, now), 1);
    assert_int_equal(add(w, "b2", 12, now), 1);
    assert_int_equal(add(w, "c", 13, now), 1);
    /* new ones go in, and so does a second add of one new record */
    assert_int_equal(add(w, "d", 14, now), 0);
    assert_int_equal(add(w, "d2", 14, now), 0);
    /* an add from no input record (a window's close) is never skipped */
    assert_int_equal(add(w, "z", 0, now), 0);
    assert_string_equal(held(w), "a,b,b2,c,d,d2,z");
    close_all(w, ws, c);
}

static void add_ab_partial(window *w, uint64_t now)
{
    add(w, "a", 11, now);
    add(w, "b", 12, now); /* the record of b would add b2 too, but the worker dies first */
}

static void test_wstate_record_cut_by_crash_adds_its_missing_part(void **state)
{
    uint64_t now = clock_mono_ns();
    cfg *c;
    window *w;
    wstate *ws = reopened(*state, add_ab_partial, now, IN_PID, TAIL, &c, &w);
    assert_int_equal(add(w, "a", 11, now), 1);
    assert_int_equal(add(w, "b", 12, now), 1);
    assert_int_equal(add(w, "b2", 12, now), 0);
    assert_string_equal(held(w), "a,b,b2");
    close_all(w, ws, c);
}

static void test_wstate_other_input_ring_ignores_positions(void **state)
{
    uint64_t now = clock_mono_ns();
    /* a new input ring (another owner, tail 0): positions start over, none is skipped */
    cfg *c;
    window *w;
    wstate *ws = reopened(*state, add_abc, now, IN_PID + 1, 0, &c, &w);
    assert_true(wstate_adopted(ws));
    assert_false(wstate_positions_valid(ws));
    assert_int_equal(add(w, "n1", 1, now), 0);
    assert_int_equal(window_count(w), 5);
    close_all(w, ws, c);
}

static void test_wstate_ring_adopted_by_new_supervisor_keeps_positions(void **state)
{
    uint64_t now = clock_mono_ns();
    /* the same ring, taken over by a new supervisor: another owner, its tail where it was */
    cfg *c;
    window *w;
    wstate *ws = reopened(*state, add_abc, now, IN_PID + 1, TAIL, &c, &w);
    assert_true(wstate_positions_valid(ws));
    assert_int_equal(add(w, "c", 13, now), 1);
    assert_int_equal(window_count(w), 4);
    close_all(w, ws, c);
}

static void test_wstate_changed_config_starts_fresh(void **state)
{
    fx *f = *state;
    cfg *c = crashed(f, add_abc, clock_mono_ns());
    cfg_destroy(c);

    c = config(f, 300); /* another duration: the old window would be misread */
    char log[4096];
    window *w;
    wstate *ws = open_win_logged(c, &w, log, sizeof(log));
    assert_false(wstate_adopted(ws));
    assert_int_equal(window_count(w), 0);
    assert_int_equal(window_deadline(w), WINDOW_CLOSED);
    assert_non_null(strstr(log, "another configuration"));
    close_all(w, ws, c);
}

/* Overwrites bytes of the segment file as a stray write would. */
static void scribble(const fx *f, off_t off, const void *bytes, size_t n)
{
    char path[SHM_NAME_MAX + 16];
    snprintf(path, sizeof(path), "/dev/shm/%s", f->name);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, bytes, n, off), (ssize_t)n);
    close(fd);
}

/* After a crash (add_abc), n bytes at off of the segment are overwritten; then opening the
 * state (input ring IN_PID) must start fresh, empty, with a log line that holds why. */
static void assert_scribbled_starts_fresh(const fx *f, off_t off, const void *bytes, size_t n,
                                          const char *why)
{
    cfg *c = crashed(f, add_abc, clock_mono_ns());
    scribble(f, off, bytes, n);
    char log[4096];
    window *w;
    wstate *ws = open_win_logged(c, &w, log, sizeof(log));
    assert_false(wstate_adopted(ws));
    assert_int_equal(window_count(w), 0);
    if (!strstr(log, why))
        fail_msg("the log does not say \"%s\": %s", why, log);
    close_all(w, ws, c);
}

static void test_wstate_corrupt_header_starts_fresh(void **state)
{
    uint64_t junk = 0x1234;
    assert_scribbled_starts_fresh(*state, offsetof(wstate_hdr, magic), &junk, sizeof(junk),
                                  "no valid header");
}

/* A segment of layout version 1 (hashes with the truncated FNV basis) left by an older build:
 * not misread, not migrated, started fresh with a log line that says why. */
static void test_wstate_older_layout_starts_fresh(void **state)
{
    uint32_t v1 = 1;
    assert_scribbled_starts_fresh(*state, offsetof(shm_hdr, version), &v1, sizeof(v1),
                                  "older mqttflow (state layout 1, this one reads 2)");
}

static void test_wstate_corrupt_window_is_emptied(void **state)
{
    fx *f = *state;
    cfg *c = crashed(f, add_abc, clock_mono_ns());
    /* the window region is the first region (page 1): its first message's entry claims a
     * huge topic, as a stray write could leave it. The entry table follows the geometry block
     * and the double-buffered commit record; find it by its known offset field instead of
     * hard-coding: entry 0 holds off == 0, topic_len == 4 ("in/t"). */
    char path[SHM_NAME_MAX + 16];
    snprintf(path, sizeof(path), "/dev/shm/%s", f->name);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    unsigned char page[WSTATE_PAGE];
    assert_int_equal(pread(fd, page, sizeof(page), WSTATE_PAGE), (ssize_t)sizeof(page));
    close(fd);
    off_t at = -1;
    for (size_t i = 64; i + 16 <= sizeof(page); i += 8) {
        uint64_t off;
        uint32_t tl, pl;
        memcpy(&off, page + i, 8);
        memcpy(&tl, page + i + 8, 4);
        memcpy(&pl, page + i + 12, 4);
        if (off == 0 && tl == 4 && pl == 1) {
            at = (off_t)(WSTATE_PAGE + i + 8);
            break;
        }
    }
    assert_true(at > 0);
    uint32_t huge = 0x7fffffff;
    scribble(f, at, &huge, sizeof(huge));

    char log[4096];
    window *w;
    wstate *ws = open_win_logged(c, &w, log, sizeof(log));
    assert_true(wstate_adopted(ws)); /* the header is fine: only the window is reset */
    assert_int_equal(window_count(w), 0);
    assert_non_null(strstr(log, "corrupt"));
    assert_int_equal(add(w, "x", 0, clock_mono_ns()), 0); /* and it works again */
    assert_string_equal(held(w), "x");
    close_all(w, ws, c);
}

static void begin_close(window *w, uint64_t now)
{
    add(w, "a", 1, now);
    window_begin_close(w); /* the worker dies in the window's callback */
}

static void test_wstate_close_attempts_survive(void **state)
{
    fx *f = *state;
    cfg *c = crashed(f, begin_close, clock_mono_ns());
    window *w;
    wstate *ws = open_win(c, IN_PID, &w);
    assert_int_equal(window_count(w), 1);
    assert_int_equal(window_begin_close(w), 2);
    window_reset(w);
    assert_int_equal(window_count(w), 0);
    assert_int_equal(add(w, "b", 2, clock_mono_ns()), 0);
    assert_int_equal(window_begin_close(w), 1); /* counted per window's contents */
    close_all(w, ws, c);
}

static void test_wstate_live_owner_is_refused(void **state)
{
    fx *f = *state;
    cfg *c = config(f, 600);
    wstate *ws = NULL, *again = NULL;
    wstate_input in = {.pid = IN_PID, .start = IN_START};
    assert_int_equal(wstate_open(c, 0, &in, &ws), 0);
    assert_int_equal(wstate_open(c, 0, &in, &again), -EEXIST);
    assert_null(again);
    wstate_close(ws);
    cfg_destroy(c);
}

/* Bytes of tmpfs the segment holds (not its size: pages never touched take nothing). */
static long long allocated(const fx *f)
{
    char path[SHM_NAME_MAX + 16];
    struct stat st;
    snprintf(path, sizeof(path), "/dev/shm/%s", f->name);
    assert_int_equal(stat(path, &st), 0);
    return (long long)st.st_blocks * 512;
}

static void test_wstate_segment_stays_sparse(void **state)
{
    fx *f = *state;
    cfg *c = crashed(f, add_abc, clock_mono_ns());
    long long after_use = allocated(f);
    assert_true(after_use <= 64 * 1024); /* of a segment of more than 1 MiB */
    cfg_destroy(c);

    /* a config change empties the old state by giving its pages back */
    c = config(f, 300);
    window *w;
    wstate *ws = open_win(c, IN_PID, &w);
    assert_false(wstate_adopted(ws));
    assert_true(allocated(f) <= after_use);
    close_all(w, ws, c);
}

static void test_wstate_window_full_counts_drops(void **state)
{
    fx *f = *state;
    cfg *c = config(f, 600);
    wstate *ws = NULL;
    assert_int_equal(wstate_create_private(c, &ws), 0);
    size_t len;
    void *region = wstate_region(ws, 0, 1, &len);
    window *w;
    assert_int_equal(window_create(region, len, DUR_NS, 8, false, "w", &w), 0);
    uint64_t now = clock_mono_ns();
    for (int i = 0; i < 8; i++)
        assert_int_equal(add(w, "m", (uint64_t)i + 1, now), 0);
    assert_int_equal(add(w, "m", 9, now), -ENOSPC);
    assert_int_equal(window_drops(w), 1);
    /* a message larger than the data area is refused the same way */
    window_reset(w);
    size_t big = window_data_cap(8) + 1;
    char *p = malloc(big + 1);
    assert_non_null(p);
    memset(p, 'x', big);
    p[big] = '\0';
    assert_int_equal(add(w, p, 10, now), -ENOSPC);
    free(p);
    assert_int_equal(window_count(w), 0);
    close_all(w, ws, c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST_ST(test_wstate_adopted_window_keeps_messages_and_deadline),
        TEST_ST(test_wstate_readds_by_position_are_skipped),
        TEST_ST(test_wstate_record_cut_by_crash_adds_its_missing_part),
        TEST_ST(test_wstate_other_input_ring_ignores_positions),
        TEST_ST(test_wstate_ring_adopted_by_new_supervisor_keeps_positions),
        TEST_ST(test_wstate_changed_config_starts_fresh),
        TEST_ST(test_wstate_corrupt_header_starts_fresh),
        TEST_ST(test_wstate_older_layout_starts_fresh),
        TEST_ST(test_wstate_corrupt_window_is_emptied),
        TEST_ST(test_wstate_close_attempts_survive),
        TEST_ST(test_wstate_live_owner_is_refused),
        TEST_ST(test_wstate_window_full_counts_drops),
        TEST_ST(test_wstate_segment_stays_sparse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
