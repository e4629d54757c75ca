/* spool: real files in a temporary directory. Order over many batches and segment rollover,
 * fsync completions per batch, reopen at the checkpoint, kill -9 of an appending child
 * (repeatedly), quarantine of damaged files, the cap (REFUSE), TTL. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "clock.h"
#include "spool.h"
#include "spool_int.h" /* spool_ckpt: the checkpoint's bytes, to damage one */

/* A record is its 8-byte id then bytes derived from the id, so content, order and
 * duplicates can all be checked from what is read back. Every 97th record is big (a batch
 * holding one takes long enough to write that a kill can land inside it: torn tails). */
#define REC_BIG (512u << 10)
static size_t rec_len(uint64_t id)
{
    return 8 + (id % 97 == 96 ? REC_BIG : (size_t)(id % 200));
}

static size_t make_rec(uint8_t *buf, uint64_t id)
{
    size_t extra = rec_len(id) - 8;
    memcpy(buf, &id, 8);
    for (size_t i = 0; i < extra; i++)
        buf[8 + i] = (uint8_t)(id * 31 + i);
    return 8 + extra;
}

static int check_rec(const void *data, size_t len, uint64_t *id)
{
    if (len < 8)
        return -1;
    memcpy(id, data, 8);
    if (len != rec_len(*id))
        return -1;
    uint8_t *want = malloc(len);
    make_rec(want, *id);
    int rc = memcmp(want, data, len) == 0 ? 0 : -1;
    free(want);
    return rc;
}

static int append_ids(spool *s, uint64_t first, size_t n)
{
    struct iovec v[64];
    assert_true(n <= 64);
    for (size_t i = 0; i < n; i++) {
        v[i].iov_base = malloc(rec_len(first + i));
        v[i].iov_len = make_rec(v[i].iov_base, first + i);
    }
    int rc = spool_append_batch(s, v, n);
    for (size_t i = 0; i < n; i++)
        free(v[i].iov_base);
    return rc;
}

static char *mk_tmpdir(void)
{
    char tmpl[] = "/tmp/mf-spool-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    char *r = malloc(strlen(d) + 8);
    sprintf(r, "%s/sp", d);
    return r;
}

static void rm_rf(const char *path)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    assert_int_equal(system(cmd), 0);
}

static void cleanup_dir(char *d)
{
    char *slash = strrchr(d, '/');
    *slash = '\0';
    rm_rf(d);
    free(d);
}

static size_t count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name), sl = strlen(suffix);
        if (e->d_name[0] != '.' && l >= sl && strcmp(e->d_name + l - sl, suffix) == 0)
            n++;
    }
    closedir(d);
    return n;
}

/* Reads everything left; checks contents; returns how many; ids in *ids (caller frees). */
static size_t read_all(spool *s, uint64_t **ids, int consume)
{
    size_t n = 0, cap = 1024;
    *ids = malloc(cap * sizeof **ids);
    const void *d;
    size_t len;
    int rc;
    while ((rc = spool_peek(s, &d, &len, NULL)) == 0) {
        uint64_t id;
        assert_int_equal(check_rec(d, len, &id), 0);
        if (n == cap)
            *ids = realloc(*ids, (cap *= 2) * sizeof **ids);
        (*ids)[n++] = id;
        assert_int_equal(spool_consume(s), 0);
        (void)consume;
    }
    assert_int_equal(rc, -ENODATA);
    return n;
}

static void test_spool_order_over_batches_and_rollover(void **state)
{
    (void)state;
    char *dir = mk_tmpdir();
    spool *s;
    spool_opts o = {.segment_bytes = 16 << 10};
    assert_int_equal(spool_open(dir, &o, &s), 0);
    assert_true(spool_is_empty(s));
    uint64_t id = 0;
    srand(7);
    for (int b = 0; b < 300; b++) {
        size_t n = 1 + (size_t)(rand() % 20);
        assert_int_equal(append_ids(s, id, n), 0);
        id += n;
        if (b % 50 == 0) { /* read a little while writing: reader and writer interleave */
            const void *d;
            size_t len;
            assert_int_equal(spool_peek(s, &d, &len, NULL), 0);
        }
    }
    assert_int_equal(spool_count(s), id);
    spool_stats st;
    spool_get_stats(s, &st);
    assert_true(st.segments > 5);
    assert_int_equal(count_files(dir, ".seg"), st.segments);
    uint64_t *ids;
    size_t n = read_all(s, &ids, 1);
    assert_int_equal(n, id);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ids[i], i);
    free(ids);
    assert_true(spool_is_empty(s));
    assert_int_equal(spool_ack(s), 0);
    /* every segment but the writer's last is gone once all is acknowledged */
    assert_true(count_files(dir, ".seg") <= 1);
    struct stat stb;
    assert_int_equal(stat(dir, &stb), 0);
    assert_int_equal(stb.st_mode & 0777, 0700);
    spool_close(s);
    cleanup_dir(dir);
}

static void test_spool_append_returns_after_fsync(void **state)
{
    (void)state;
    char *dir = mk_tmpdir();
    spool *s;
    assert_int_equal(spool_open(dir, NULL, &s), 0);
    spool_stats a, b;
    for (int i = 0; i < 10; i++) {
        spool_get_stats(s, &a);
        assert_int_equal(append_ids(s, (uint64_t)i * 5, 5), 0);
        spool_get_stats(s, &b);
        /* the call returned only after the fdatasync completion came back with success */
        assert_true(b.fsyncs >= a.fsyncs + 1);
        assert_int_equal(b.batches, a.batches + 1);
        assert_int_equal(b.appended, a.appended + 5);
    }
    /* the first batch created the segment: its directory entry was fsync'd too */
    assert_int_equal(b.fsyncs, 11);
    char path[600];
    snprintf(path, sizeof path, "%s/0000000000000000.seg", dir);
    struct stat stb;
    assert_int_equal(stat(path, &stb), 0);
    assert_int_equal(stb.st_mode & 0777, 0600);
    assert_int_equal((uint64_t)stb.st_size, b.bytes);
    /* what append returned as stored is in the file, before close */
    spool *s2;
    assert_int_equal(spool_open(dir, NULL, &s2), -EBUSY); /* one user per directory */
    spool_close(s);
    cleanup_dir(dir);
}

static void test_spool_reopen_resumes_at_checkpoint(void **state)
{
    (void)state;
    char *dir = mk_tmpdir();
    spool *s;
    spool_opts o = {.segment_bytes = 4096};
    assert_int_equal(spool_open(dir, &o, &s), 0);
    for (uint64_t i = 0; i < 200; i += 10)
        assert_int_equal(append_ids(s, i, 10), 0);
    const void *d;
    size_t len;
    uint64_t id;
    for (int i = 0; i < 120; i++) {
        assert_int_equal(spool_peek(s, &d, &len, NULL), 0);
        assert_int_equal(spool_consume(s), 0);
    }
    size_t before = count_files(dir, ".seg");
    assert_int_equal(spool_ack(s), 0);
    assert_true(count_files(dir, ".seg") < before); /* consumed segments deleted */
    for (int i = 0; i < 30; i++) { /* consumed, never acknowledged: read again after reopen */
        assert_int_equal(spool_peek(s, &d, &len, NULL), 0);
        assert_int_equal(spool_consume(s), 0);
    }
    spool_close(s);

    assert_int_equal(spool_open(dir, &o, &s), 0);
    assert_int_equal(spool_count(s), 80);
    assert_int_equal(spool_peek(s, &d, &len, NULL), 0);
    assert_int_equal(check_rec(d, len, &id), 0);
    assert_int_equal(id, 120);
    /* appends continue after what is there, in order */
    assert_int_equal(append_ids(s, 200, 10), 0);
    uint64_t *ids;
    size_t n = read_all(s, &ids, 1);
    assert_int_equal(n, 90);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ids[i], 120 + i);
    free(ids);
    spool_close(s);
    cleanup_dir(dir);
}

/* ---- kill -9 while appending ---- */

static void child_append_loop(const char *dir, uint64_t next, int wfd)
{
    spool *s;
    spool_opts o = {.segment_bytes = 32 << 10};
    if (spool_open(dir, &o, &s) < 0)
        _exit(3);
    srand((unsigned)getpid());
    for (;;) {
        size_t n = 1 + (size_t)(rand() % 16);
        if (append_ids(s, next, n) < 0)
            _exit(4);
        next += n;
        uint64_t last = next - 1; /* durable: report it */
        if (write(wfd, &last, sizeof last) != sizeof last)
            _exit(5);
    }
}

/* A kill -9 leaves whole writes behind (the page cache outlives the process); what a power
 * loss leaves, a batch that reached the disk in part, is made here: the start of a frame
 * with part of its data after the last record of the newest segment. */
static void tear_last_segment(const char *dir, uint64_t id)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char last[sizeof(e->d_name)] = ""; /* sized like d_name: no truncation to reason about */
    while ((e = readdir(d)) != NULL)
        if (strlen(e->d_name) == 20 && strcmp(e->d_name + 16, ".seg") == 0 &&
            strcmp(e->d_name, last) > 0)
            snprintf(last, sizeof last, "%s", e->d_name);
    closedir(d);
    if (!last[0])
        return;
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, last);
    /* A segment's header goes to the disk in the same write as its first batch, so torn
     * frame bytes only ever follow a whole header. A kill between the creation of a segment
     * and that write leaves it empty; tearing it would make a state no crash can make. */
    struct stat stb;
    assert_int_equal(stat(path, &stb), 0);
    if (stb.st_size < SPOOL_SEGHDR_BYTES)
        return;
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    uint8_t torn[64] = {'S', 'P', 'F', 'R', 200, 0, 0, 0};
    memcpy(torn + 8, &id, 8);
    size_t len = 1 + (size_t)rand() % sizeof torn;
    assert_int_equal(write(fd, torn, len), (ssize_t)len);
    close(fd);
}

static void test_spool_kill9_while_appending(void **state)
{
    (void)state;
    char *dir = mk_tmpdir();
    spool_opts o = {.segment_bytes = 32 << 10};
    uint64_t next = 0;       /* first id the next child appends */
    uint64_t first_left = 0; /* first id not yet acknowledged by the reader */
    srand(11);
    spool_stats total = {0};
    for (int round = 0; round < 20; round++) {
        int p[2];
        assert_int_equal(pipe(p), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            child_append_loop(dir, next, p[1]);
        }
        close(p[1]);
        int reports = 1 + rand() % 40;
        uint64_t reported = UINT64_MAX, v;
        for (int i = 0; i < reports; i++) {
            assert_int_equal(read(p[0], &v, sizeof v), (ssize_t)sizeof v);
            reported = v;
        }
        struct timespec ts = {0, (long)(rand() % 3000) * 1000};
        nanosleep(&ts, NULL); /* a random moment inside a later batch */
        kill(pid, SIGKILL);
        while (read(p[0], &v, sizeof v) == (ssize_t)sizeof v)
            reported = v; /* reports written before the kill landed */
        close(p[0]);
        int wst;
        assert_int_equal(waitpid(pid, &wst, 0), pid);
        assert_true(WIFSIGNALED(wst));

        if (round % 3 == 2)
            tear_last_segment(dir, next);
        spool *s;
        assert_int_equal(spool_open(dir, &o, &s), 0);
        uint64_t *ids;
        size_t n = read_all(s, &ids, 1);
        /* exactly once, in order, from the first unacknowledged id, up to at least the last
         * one reported durable (a batch being written at the kill may be there in part) */
        assert_true(n > 0);
        assert_int_equal(ids[0], first_left);
        for (size_t i = 1; i < n; i++)
            assert_int_equal(ids[i], ids[i - 1] + 1);
        assert_true(ids[n - 1] >= reported);
        next = ids[n - 1] + 1;
        spool_stats st;
        spool_get_stats(s, &st);
        total.cut_bytes += st.cut_bytes;
        total.quarantined += st.quarantined;
        /* acknowledge part of it, so checkpoint and segment deletion are crashed around too */
        spool_close(s);
        assert_int_equal(spool_open(dir, &o, &s), 0);
        size_t k = (size_t)rand() % (n + 1);
        const void *d;
        size_t len;
        for (size_t i = 0; i < k; i++) {
            assert_int_equal(spool_peek(s, &d, &len, NULL), 0);
            assert_int_equal(spool_consume(s), 0);
        }
        assert_int_equal(spool_ack(s), 0);
        first_left = k < n ? ids[k] : next;
        free(ids);
        spool_close(s);
    }
    print_message("20 kills: %" PRIu64 " records, %" PRIu64 " torn bytes cut, %" PRIu64
                  " files quarantined\n",
                  next, total.cut_bytes, total.quarantined);
    assert_true(total.cut_bytes > 0);
    /* the only whole files a crash can leave damaged are segments it had just created and
     * not yet written (empty): those are quarantined; nothing with a record in it is */
    char q[600];
    snprintf(q, sizeof q, "%s/quarantine", dir);
    uint64_t whole = 0;
    DIR *qd = opendir(q);
    struct dirent *e;
    while (qd && (e = readdir(qd)) != NULL) {
        if (e->d_name[0] == '.' || strstr(e->d_name, ".tail."))
            continue;
        char fp[900];
        struct stat stb;
        snprintf(fp, sizeof fp, "%s/%s", q, e->d_name);
        assert_int_equal(stat(fp, &stb), 0);
        assert_true(stb.st_size < SPOOL_SEGHDR_BYTES);
        whole++;
    }
    if (qd)
        closedir(qd);
    assert_int_equal(whole, total.quarantined);
    cleanup_dir(dir);
}

/* ---- damaged files ---- */

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static void test_spool_quarantines_damaged_files(void **state)
{
    (void)state;
    char *dir = mk_tmpdir();
    spool *s;
    assert_int_equal(spool_open(dir, NULL, &s), 0);
    assert_int_equal(append_ids(s, 0, 10), 0);
    spool_close(s);
    /* a torn tail on the good segment: half a frame */
    char path[600];
    snprintf(path, sizeof path, "%s/0000000000000000.seg", dir);
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "SPFR\x10\0\0\0\x0a", 9), 9);
    close(fd);
    uint8_t junk[1000];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(i * 7 + 3);
    write_file(dir, "0000000000000100.seg", "", 0);      /* empty */
    write_file(dir, "0000000000000200.seg", junk, 10);   /* truncated header */
    write_file(dir, "0000000000000300.seg", junk, 1000); /* garbage */
    write_file(dir, "checkpoint", junk, 5);              /* corrupt checkpoint */

    assert_int_equal(spool_open(dir, NULL, &s), 0);
    spool_stats st;
    spool_get_stats(s, &st);
    assert_int_equal(st.quarantined, 4);
    assert_int_equal(st.cut_bytes, 9);
    assert_int_equal(st.recovered, 10);
    assert_int_equal(spool_count(s), 10);
    char q[600];
    snprintf(q, sizeof q, "%s/quarantine", dir);
    assert_int_equal(count_files(q, ""), 5); /* 4 files + the cut tail */
    assert_int_equal(count_files(dir, ".seg"), 1);
    uint64_t *ids;
    assert_int_equal(read_all(s, &ids, 1), 10);
    for (size_t i = 0; i < 10; i++)
        assert_int_equal(ids[i], i);
    free(ids);
    assert_int_equal(append_ids(s, 10, 3), 0); /* and it works on */
    spool_close(s);

    /* garbage inside a record (not the tail): cut there, the rest quarantined */
    fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "XX", 2, 32 + 5 * 40 + 50), 2); /* inside a record's data */
    close(fd);
    assert_int_equal(spool_open(dir, NULL, &s), 0);
    spool_get_stats(s, &st);
    assert_true(st.cut_bytes > 0);
    /* records 0..4 before the damage, then the next segment (10..12) untouched */
    size_t n = read_all(s, &ids, 1);
    assert_int_equal(n, 8);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ids[i], i < 5 ? i : i + 5);
    free(ids);
    spool_close(s);
    cleanup_dir(dir);
}

static void test_spool_cap_refuses_with_enospc(void **state)
{
    (void)state;
    char *dir = mk_tmpdir();
    spool *s;
    spool_opts o = {.max_bytes = 2 << 20, .segment_bytes = 128 << 10};
    assert_int_equal(spool_open(dir, &o, &s), 0);
    uint64_t id = 0;
    int rc;
    while ((rc = append_ids(s, id, 8)) == 0)
        id += 8;
    assert_int_equal(rc, -ENOSPC);
    spool_stats st;
    spool_get_stats(s, &st);
    assert_true(st.bytes <= o.max_bytes);
    assert_int_equal(st.refused, 8);
    assert_int_equal(spool_count(s), id); /* nothing stored was dropped */
    uint64_t bytes = st.bytes;
    assert_int_equal(append_ids(s, id, 8), -ENOSPC);
    spool_get_stats(s, &st);
    assert_int_equal(st.bytes, bytes); /* nothing written */
    /* the reader frees whole segments: appends work again, after what was there */
    uint64_t *ids;
    size_t n = read_all(s, &ids, 1);
    assert_int_equal(n, id);
    free(ids);
    assert_int_equal(spool_ack(s), 0);
    spool_get_stats(s, &st);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(append_ids(s, id, 8), 0);
    n = read_all(s, &ids, 1);
    assert_int_equal(n, 8);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ids[i], id + i);
    free(ids);
    /* an empty record: -EMSGSIZE, nothing written */
    uint8_t one[1];
    struct iovec v = {.iov_base = one, .iov_len = 0};
    assert_int_equal(spool_append_batch(s, &v, 1), -EMSGSIZE);
    spool_close(s);
    cleanup_dir(dir);
}

static void test_spool_ttl_skips_expired(void **state)
{
    (void)state;
    char *dir = mk_tmpdir();
    spool *s;
    spool_opts o = {.ttl_ms = 100};
    assert_int_equal(spool_open(dir, &o, &s), 0);
    assert_int_equal(append_ids(s, 0, 5), 0);
    /* waiting for the TTL to pass is the thing under test: poll the clock, not a guess */
    uint64_t t0 = clock_wall_ns();
    while (clock_wall_ns() < t0 + 150000000ull) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(append_ids(s, 5, 3), 0);
    uint64_t *ids;
    size_t n = read_all(s, &ids, 1);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 5);
    free(ids);
    spool_stats st;
    spool_get_stats(s, &st);
    assert_int_equal(st.expired, 5);
    assert_int_equal(st.consumed, 3);
    assert_int_equal(spool_count(s), 0);
    spool_close(s);
    cleanup_dir(dir);
}

/* A spool directory holding ids 0..n-1 in its first segment, closed; that segment's path in
 * seg (so a test can damage it) and its size in *bytes. Returns the directory. */
static char *spool_of_ids(size_t n, char *seg, size_t seg_cap, uint64_t *bytes)
{
    char *dir = mk_tmpdir();
    spool *s;
    assert_int_equal(spool_open(dir, NULL, &s), 0);
    assert_int_equal(append_ids(s, 0, n), 0);
    spool_stats st;
    spool_get_stats(s, &st);
    *bytes = st.bytes;
    spool_close(s);
    snprintf(seg, seg_cap, "%s/0000000000000000.seg", dir);
    return dir;
}

/* A cut torn tail is cut in the file, not only in memory: the file ends where the kept
 * records end, and the next open finds nothing more to cut. */
static void test_spool_torn_tail_cut_in_the_file(void **state)
{
    (void)state;
    char path[600];
    uint64_t kept;
    char *dir = spool_of_ids(10, path, sizeof path, &kept);
    spool *s;
    spool_stats st;
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "SPFR\x10\0\0\0\x0a\0\0", 11), 11);
    close(fd);

    assert_int_equal(spool_open(dir, NULL, &s), 0);
    spool_get_stats(s, &st);
    assert_int_equal(st.cut_bytes, 11);
    assert_int_equal(st.bytes, kept);
    struct stat stb;
    assert_int_equal(stat(path, &stb), 0);
    assert_int_equal((uint64_t)stb.st_size, kept);
    spool_close(s);

    assert_int_equal(spool_open(dir, NULL, &s), 0);
    spool_get_stats(s, &st);
    assert_int_equal(st.cut_bytes, 0);
    assert_int_equal(st.quarantined, 0);
    assert_int_equal(spool_count(s), 10);
    spool_close(s);
    cleanup_dir(dir);
}

/* A checkpoint of the right size and magic whose CRC does not match is corrupt: quarantined,
 * and reading starts from the oldest record (redelivery, never loss). */
static void test_spool_checkpoint_with_bad_crc_quarantined(void **state)
{
    (void)state;
    char *dir = mk_tmpdir();
    spool *s;
    assert_int_equal(spool_open(dir, NULL, &s), 0);
    assert_int_equal(append_ids(s, 0, 10), 0);
    const void *d;
    size_t len;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(spool_peek(s, &d, &len, NULL), 0);
        assert_int_equal(spool_consume(s), 0);
    }
    assert_int_equal(spool_ack(s), 0);
    spool_close(s);

    char path[600];
    snprintf(path, sizeof path, "%s/checkpoint", dir);
    spool_ckpt c;
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &c, sizeof c, 0), (ssize_t)sizeof c);
    assert_int_equal(c.acked_seq, 4);
    c.acked_seq = 6; /* a bit flip on the disk: magic and size still right */
    assert_int_equal(pwrite(fd, &c, sizeof c, 0), (ssize_t)sizeof c);
    close(fd);

    assert_int_equal(spool_open(dir, NULL, &s), 0);
    spool_stats st;
    spool_get_stats(s, &st);
    assert_int_equal(st.quarantined, 1);
    assert_int_equal(spool_count(s), 10);
    uint64_t *ids;
    assert_int_equal(read_all(s, &ids, 1), 10);
    assert_int_equal(ids[0], 0);
    free(ids);
    char q[600];
    snprintf(q, sizeof q, "%s/quarantine", dir);
    assert_int_equal(count_files(q, ""), 1);
    spool_close(s);
    cleanup_dir(dir);
}

/* A record whose sequence number is not the next one (with a valid CRC: a stale or misplaced
 * write, not a torn one) ends what recovery keeps of its segment. */
static void test_spool_record_out_of_sequence_cut(void **state)
{
    (void)state;
    char path[600];
    uint64_t bytes;
    char *dir = spool_of_ids(3, path, sizeof path, &bytes);
    spool *s;
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint64_t off = SPOOL_SEGHDR_BYTES;
    spool_frame f;
    for (int i = 0; i < 2; i++) { /* to the third record's frame */
        assert_int_equal(pread(fd, &f, sizeof f, (off_t)off), (ssize_t)sizeof f);
        off += sizeof f + f.len;
    }
    assert_int_equal(pread(fd, &f, sizeof f, (off_t)off), (ssize_t)sizeof f);
    assert_int_equal(f.seq, 2);
    uint8_t data[64];
    assert_true(f.len <= sizeof data);
    assert_int_equal(pread(fd, data, f.len, (off_t)(off + sizeof f)), (ssize_t)f.len);
    f.seq = 5;
    f.crc = spool_frame_crc(&f, data);
    assert_int_equal(pwrite(fd, &f, sizeof f, (off_t)off), (ssize_t)sizeof f);
    close(fd);

    assert_int_equal(spool_open(dir, NULL, &s), 0);
    spool_stats st;
    spool_get_stats(s, &st);
    assert_int_equal(st.cut_bytes, sizeof f + f.len);
    assert_int_equal(st.bytes, bytes - st.cut_bytes);
    assert_int_equal(spool_count(s), 2);
    uint64_t *ids;
    assert_int_equal(read_all(s, &ids, 1), 2);
    assert_int_equal(ids[1], 1);
    free(ids);
    spool_close(s);
    cleanup_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spool_order_over_batches_and_rollover),
        cmocka_unit_test(test_spool_append_returns_after_fsync),
        cmocka_unit_test(test_spool_reopen_resumes_at_checkpoint),
        cmocka_unit_test(test_spool_kill9_while_appending),
        cmocka_unit_test(test_spool_quarantines_damaged_files),
        cmocka_unit_test(test_spool_cap_refuses_with_enospc),
        cmocka_unit_test(test_spool_ttl_skips_expired),
        cmocka_unit_test(test_spool_torn_tail_cut_in_the_file),
        cmocka_unit_test(test_spool_checkpoint_with_bad_crc_quarantined),
        cmocka_unit_test(test_spool_record_out_of_sequence_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
