/* spool: see spool.h. Files: spool.c (open, recovery, reader, checkpoint) and spool_append.c
 * (the io_uring write path); shared state in spool_int.h. */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "grow.h"
#include "log.h"
#include "privdir.h"
#include "spool_int.h"

#define CKPT_MAGIC   0x31504b4350534d46ull /* "MFSPCKP1" */
#define CKPT_NAME    "checkpoint"
#define CKPT_TMP     "checkpoint.tmp"
#define QDIR         "quarantine"
#define RD_CHUNK     (256u << 10)
#define LOCK_NAME    "lock"
#define LOCK_WAIT_NS (1000ull * 1000 * 1000)

/* ---- CRC32C (Castagnoli), hardware when the CPU has SSE4.2, else a table ---- */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static int crc_hw;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        crc_table[i] = c;
    }
#if defined(__x86_64__)
    __builtin_cpu_init();
    crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_sse(uint32_t c, const uint8_t *p, size_t n)
{
    uint64_t c64 = c;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c64 = __builtin_ia32_crc32di(c64, v);
        p += 8;
        n -= 8;
    }
    c = (uint32_t)c64;
    while (n--)
        c = __builtin_ia32_crc32qi(c, *p++);
    return c;
}
#endif

uint32_t spool_crc32c(uint32_t crc, const void *data, size_t n)
{
    const uint8_t *p = data;
    uint32_t c = ~crc;
    pthread_once(&crc_once, crc_init);
#if defined(__x86_64__)
    if (crc_hw)
        return ~crc_sse(c, p, n);
#endif
    while (n--)
        c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
    return ~c;
}

uint32_t spool_frame_crc(const spool_frame *f, const void *data)
{
    /* len, seq and time_ns are contiguous right after magic: bytes 4..24 of the frame */
    uint32_t c = spool_crc32c(0, (const uint8_t *)f + 4, 20);
    return spool_crc32c(c, data, f->len);
}

/* ---- small file helpers ---- */

static int pread_full(int fd, void *buf, size_t n, uint64_t off)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, (char *)buf + done, n - done, (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            return -EIO; /* file shorter than we know it is */
        done += (size_t)r;
    }
    return 0;
}

static int write_full(int fd, const void *buf, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = write(fd, (const char *)buf + done, n - done);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        done += (size_t)r;
    }
    return 0;
}

/* Makes bytes [off, off+need) of the segment file fd (size bytes) available in rb and points
 * *p at them. Reads ahead up to RD_CHUNK so records are not read one pread each. */
static int rd_get(spool_rdbuf *rb, int fd, uint64_t off, size_t need, uint64_t size,
                  const uint8_t **p)
{
    if (off + need > size)
        return -ERANGE;
    if (rb->valid && off >= rb->off && off + need <= rb->off + rb->len) {
        *p = rb->b + (off - rb->off);
        return 0;
    }
    size_t want = need > RD_CHUNK ? need : RD_CHUNK;
    if (off + want > size)
        want = (size_t)(size - off);
    if (want > rb->cap) {
        uint8_t *nb = realloc(rb->b, want);
        if (!nb)
            return -ENOMEM;
        rb->b = nb;
        rb->cap = want;
    }
    rb->valid = 0;
    int rc = pread_full(fd, rb->b, want, off);
    if (rc < 0)
        return rc;
    rb->off = off;
    rb->len = want;
    rb->valid = 1;
    *p = rb->b;
    return 0;
}

void spool_seg_name(char *buf, size_t cap, uint64_t first_seq)
{
    snprintf(buf, cap, "%016" PRIx64 ".seg", first_seq);
}

/* Moves dir/name into quarantine/ under a name that cannot collide, logs why, counts it. */
static void quarantine(spool *s, const char *name, const char *why)
{
    char dst[512];
    if (mkdirat(s->dirfd, QDIR, 0700) < 0 && errno != EEXIST)
        log_warn("spool", "%s: mkdir %s/%s: %s", s->name, s->dir, QDIR, strerror(errno));
    snprintf(dst, sizeof dst, QDIR "/%s.%" PRIu64, name, clock_wall_ns());
    if (renameat(s->dirfd, name, s->dirfd, dst) < 0) {
        log_error("spool", "%s: rename %s/%s to %s (%s): %s; removing it", s->name, s->dir, name,
                  dst, why, strerror(errno));
        unlinkat(s->dirfd, name, 0);
    } else {
        log_warn("spool", "%s: %s/%s quarantined as %s: %s", s->name, s->dir, name, dst, why);
    }
    s->st.quarantined++;
}

/* Copies [from, size) of fd into quarantine/<name>.tail.<ns> so cut bytes can be examined. */
static void quarantine_tail(spool *s, const char *name, int fd, uint64_t from, uint64_t size)
{
    char dst[512];
    if (mkdirat(s->dirfd, QDIR, 0700) < 0 && errno != EEXIST)
        return;
    snprintf(dst, sizeof dst, QDIR "/%s.tail.%" PRIu64, name, clock_wall_ns());
    int out = openat(s->dirfd, dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (out < 0)
        return;
    loff_t in_off = (loff_t)from;
    uint64_t left = size - from;
    while (left > 0) {
        ssize_t r = copy_file_range(fd, &in_off, out, NULL, left, 0);
        if (r <= 0)
            break;
        left -= (uint64_t)r;
    }
    close(out);
}

/* ---- recovery ---- */

int spool_segs_reserve(spool *s)
{
    spool_seg *n = grow_one(s->segs, &s->cap_segs, s->n_segs, sizeof(*n), 16);
    if (!n)
        return -ENOMEM;
    s->segs = n;
    return 0;
}

static int seg_push(spool *s, const spool_seg *g)
{
    int rc = spool_segs_reserve(s);
    if (rc < 0)
        return rc;
    s->segs[s->n_segs++] = *g;
    return 0;
}

/* Checks a segment's size and header against first_seq (from its name): NULL when it is a
 * segment of ours, else why it is not (the quarantine reason). */
static const char *seg_header_problem(spool_rdbuf *rb, int fd, uint64_t size, uint64_t first_seq)
{
    const uint8_t *p;
    spool_seghdr h;
    if (size == 0)
        return "empty file";
    if (size < SPOOL_SEGHDR_BYTES)
        return "truncated segment header";
    if (rd_get(rb, fd, 0, sizeof h, size, &p) < 0)
        return "unreadable segment header";
    memcpy(&h, p, sizeof h);
    if (h.magic != SPOOL_SEG_MAGIC || h.version != SPOOL_VERSION ||
        h.hdr_bytes != SPOOL_SEGHDR_BYTES || h.first_seq != first_seq ||
        h.crc != spool_crc32c(0, &h, offsetof(spool_seghdr, crc)))
        return "bad segment header (not a spool segment or corrupt)";
    return NULL;
}

/* Walks the records after the header while each one is whole, in sequence and checksummed.
 * Leaves *off at the end of the last good record, *seq at the seq after it, and *why saying what
 * stopped the walk before size (NULL when it reached size). 0, or -ENOMEM (nothing to trust). */
static int scan_records(spool *s, spool_rdbuf *rb, int fd, uint64_t size, uint64_t *off,
                        uint64_t *seq, const char **why)
{
    const uint8_t *p;
    int rc;
    *why = NULL;
    while (*off < size) {
        spool_frame f;
        if (*off + sizeof f > size) {
            *why = "truncated record frame";
            break;
        }
        if ((rc = rd_get(rb, fd, *off, sizeof f, size, &p)) < 0) {
            if (rc == -ENOMEM)
                return rc;
            *why = "unreadable record";
            break;
        }
        memcpy(&f, p, sizeof f);
        if (f.magic != SPOOL_REC_MAGIC || f.reserved != 0 || f.len == 0 ||
            f.len > SPOOL_MAX_RECORD) {
            *why = "bad record frame";
            break;
        }
        if (f.seq != *seq) {
            *why = "record out of sequence";
            break;
        }
        if (*off + sizeof f + f.len > size) {
            *why = "truncated record data";
            break;
        }
        if ((rc = rd_get(rb, fd, *off + sizeof f, f.len, size, &p)) < 0) {
            if (rc == -ENOMEM)
                return rc;
            *why = "unreadable record";
            break;
        }
        if (spool_frame_crc(&f, p) != f.crc) {
            *why = "record checksum mismatch";
            break;
        }
        *off += sizeof f + f.len;
        (*seq)++;
        s->st.recovered++;
    }
    return 0;
}

/* Cuts a damaged tail [off, size) off the file, after copying it to quarantine/ for a look.
 * kept is the number of good records before it (for the log). 0, or -1 when the cut failed and
 * the whole file was quarantined instead. */
static int cut_tail(spool *s, const char *name, int fd, uint64_t off, uint64_t size, uint64_t kept,
                    const char *why)
{
    log_warn("spool",
             "%s: %s/%s: %s at offset %" PRIu64 ": cutting %" PRIu64 " bytes (kept %" PRIu64
             " records, tail copied to %s/)",
             s->name, s->dir, name, why, off, size - off, kept, QDIR);
    quarantine_tail(s, name, fd, off, size);
    if (ftruncate(fd, (off_t)off) < 0 || fdatasync(fd) < 0) {
        log_error("spool", "%s: ftruncate %s/%s to %" PRIu64 ": %s; quarantining it", s->name,
                  s->dir, name, off, strerror(errno));
        quarantine(s, name, "cannot cut its damaged tail");
        return -1;
    }
    s->st.cut_bytes += size - off;
    return 0;
}

/* Validates one segment file; on success adds it to s->segs (or deletes it when it holds
 * nothing unacknowledged). Damage is quarantined/cut, never an error; only -ENOMEM fails. */
static int recover_segment(spool *s, const char *name, uint64_t first_seq)
{
    int rc = 0;
    int fd = openat(s->dirfd, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    struct stat stb;
    spool_rdbuf rb = {0};
    const char *why;
    if (fd < 0) {
        log_warn("spool", "%s: open %s/%s: %s; quarantining it", s->name, s->dir, name,
                 strerror(errno));
        quarantine(s, name, "cannot be opened");
        return 0;
    }
    if (fstat(fd, &stb) < 0 || !S_ISREG(stb.st_mode)) {
        quarantine(s, name, "not a regular file");
        goto out;
    }
    uint64_t size = (uint64_t)stb.st_size;
    if ((why = seg_header_problem(&rb, fd, size, first_seq)) != NULL) {
        quarantine(s, name, why);
        goto out;
    }
    uint64_t off = SPOOL_SEGHDR_BYTES, seq = first_seq;
    if ((rc = scan_records(s, &rb, fd, size, &off, &seq, &why)) < 0)
        goto out;
    if (off < size) {
        if (cut_tail(s, name, fd, off, size, seq - first_seq, why) < 0)
            goto out;
        size = off;
    }
    if (seq == first_seq || seq <= s->acked_seq) {
        /* nothing in it, or all of it acknowledged before a crash beat the unlink */
        if (unlinkat(s->dirfd, name, 0) < 0)
            log_warn("spool", "%s: unlink %s/%s: %s", s->name, s->dir, name, strerror(errno));
        goto out;
    }
    spool_seg g = {.first_seq = first_seq, .end_seq = seq, .size = size};
    rc = seg_push(s, &g);
out:
    free(rb.b);
    close(fd);
    return rc;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int name_is_segment(const char *n, uint64_t *first)
{
    if (strlen(n) != 20 || strcmp(n + 16, ".seg") != 0)
        return 0;
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = n[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return 0;
        v = v << 4 | (uint64_t)d;
    }
    *first = v;
    return 1;
}

static void read_checkpoint(spool *s)
{
    spool_ckpt c;
    int fd = openat(s->dirfd, CKPT_NAME, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno != ENOENT)
            log_warn("spool", "%s: open %s/%s: %s; reading from the oldest record", s->name, s->dir,
                     CKPT_NAME, strerror(errno));
        return;
    }
    ssize_t r = pread(fd, &c, sizeof c, 0);
    struct stat stb;
    int ok = r == (ssize_t)sizeof c && fstat(fd, &stb) == 0 && stb.st_size == sizeof c &&
             c.magic == CKPT_MAGIC && c.crc == spool_crc32c(0, &c, offsetof(spool_ckpt, crc));
    close(fd);
    if (!ok) {
        quarantine(s, CKPT_NAME, "corrupt checkpoint; reading from the oldest record");
        return;
    }
    s->acked_seq = c.acked_seq;
}

static int recover(spool *s)
{
    int rc = 0;
    uint64_t *firsts = NULL;
    size_t n = 0, cap = 0;
    unlinkat(s->dirfd, CKPT_TMP, 0); /* an interrupted ack; the old checkpoint is in force */
    read_checkpoint(s);
    int dfd = dup(s->dirfd);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        rc = -errno;
        if (dfd >= 0)
            close(dfd);
        return rc;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        uint64_t first;
        if (name_is_segment(e->d_name, &first)) {
            uint64_t *nf = grow_one(firsts, &cap, n, sizeof(*nf), 64);
            if (!nf) {
                rc = -ENOMEM;
                goto out;
            }
            firsts = nf;
            firsts[n++] = first;
        } else if (strlen(e->d_name) > 4 &&
                   strcmp(e->d_name + strlen(e->d_name) - 4, ".seg") == 0) {
            quarantine(s, e->d_name, "segment file with a malformed name");
        }
    }
    if (n)
        qsort(firsts, n, sizeof *firsts, cmp_u64);
    for (size_t i = 0; i < n; i++) {
        char name[32];
        spool_seg_name(name, sizeof name, firsts[i]);
        if ((rc = recover_segment(s, name, firsts[i])) < 0)
            goto out;
    }
    for (size_t i = 1; i < s->n_segs; i++)
        if (s->segs[i].first_seq != s->segs[i - 1].end_seq)
            log_warn("spool",
                     "%s: %s: records %" PRIu64 "..%" PRIu64 " are missing (a "
                     "segment was quarantined or cut)",
                     s->name, s->dir, s->segs[i - 1].end_seq, s->segs[i].first_seq - 1);
    s->next_seq = s->acked_seq;
    if (s->n_segs && s->segs[s->n_segs - 1].end_seq > s->next_seq)
        s->next_seq = s->segs[s->n_segs - 1].end_seq;
    s->r_seq = s->acked_seq;
    if (s->n_segs && s->segs[0].first_seq > s->r_seq)
        s->r_seq = s->segs[0].first_seq;
    s->r_seg = 0;
    s->r_off = SPOOL_SEGHDR_BYTES;
    for (size_t i = 0; i < s->n_segs; i++) {
        const spool_seg *g = &s->segs[i];
        s->st.bytes += g->size;
        s->st.segments++;
        uint64_t from = g->first_seq > s->r_seq ? g->first_seq : s->r_seq;
        if (g->end_seq > from)
            s->st.records += g->end_seq - from;
    }
    if (n || s->st.quarantined)
        log_info("spool",
                 "%s: recovered %s: %" PRIu64 " records to read in %zu segments "
                 "(%" PRIu64 " bytes), %" PRIu64 " files quarantined, %" PRIu64 " bytes cut",
                 s->name, s->dir, s->st.records, s->n_segs, s->st.bytes, s->st.quarantined,
                 s->st.cut_bytes);
out:
    free(firsts);
    closedir(d);
    return rc;
}

/* ---- open / close ---- */

/* The lock is a separate file, never handed to io_uring: a process killed with requests in
 * flight releases files those requests reference only when the kernel's deferred ring
 * teardown runs, after the parent already saw the exit. The short retry covers a previous
 * owner that is still exiting. */
static int take_lock(spool *s)
{
    s->lockfd = openat(s->dirfd, LOCK_NAME, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (s->lockfd < 0) {
        int rc = -errno;
        log_error("spool", "%s: open %s/%s: %s", s->name, s->dir, LOCK_NAME, strerror(errno));
        return rc;
    }
    uint64_t deadline = clock_mono_ns() + LOCK_WAIT_NS;
    while (flock(s->lockfd, LOCK_EX | LOCK_NB) < 0) {
        if (errno != EWOULDBLOCK) {
            int rc = -errno;
            log_error("spool", "%s: flock %s/%s: %s", s->name, s->dir, LOCK_NAME, strerror(errno));
            return rc;
        }
        if (clock_mono_ns() > deadline) {
            log_error("spool", "%s: %s is in use by another process", s->name, s->dir);
            return -EBUSY;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

int spool_open(const char *dir, const spool_opts *o, spool **out)
{
    int rc;
    spool *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->dirfd = -1;
    s->lockfd = -1;
    s->wfd = -1;
    s->rfd = -1;
    if (o)
        s->o = *o;
    if (!s->o.max_record || s->o.max_record > SPOOL_MAX_RECORD)
        s->o.max_record = SPOOL_MAX_RECORD;
    if (!s->o.segment_bytes) {
        uint64_t sb = s->o.max_bytes ? s->o.max_bytes / 8 : 64u << 20;
        if (sb < (64u << 10))
            sb = 64u << 10;
        if (sb > (64u << 20))
            sb = 64u << 20;
        s->o.segment_bytes = sb;
    }
    s->dir = strdup(dir);
    s->name = strdup(o && o->name ? o->name : dir);
    if (!s->dir || !s->name) {
        rc = -ENOMEM;
        goto err;
    }
    s->o.name = NULL;
    /* a directory of our own, walked without following planted links (privdir.h) */
    char err[PATH_MAX + 256];
    if ((rc = privdir_open(dir, &s->dirfd, err, sizeof(err))) < 0) {
        log_error("spool", "%s: %s", s->name, err);
        goto err;
    }
    if ((rc = take_lock(s)) < 0)
        goto err;
    if ((rc = io_uring_queue_init(SPOOL_URING_DEPTH, &s->ring, 0)) < 0) {
        log_error("spool", "%s: io_uring_queue_init(%u): %s", s->name, SPOOL_URING_DEPTH,
                  strerror(-rc));
        goto err;
    }
    s->ring_ok = 1;
    if ((rc = recover(s)) < 0)
        goto err;
    *out = s;
    return 0;
err:
    spool_close(s);
    return rc;
}

void spool_close(spool *s)
{
    if (!s)
        return;
    if (s->wfd >= 0)
        close(s->wfd);
    if (s->rfd >= 0)
        close(s->rfd);
    if (s->ring_ok)
        io_uring_queue_exit(&s->ring);
    if (s->dirfd >= 0)
        close(s->dirfd);
    if (s->lockfd >= 0)
        close(s->lockfd); /* drops the flock */
    free(s->rb.b);
    free(s->stage);
    free(s->segs);
    free(s->dir);
    free(s->name);
    free(s);
}

/* ---- reader ---- */

static int reader_open(spool *s)
{
    const spool_seg *g = &s->segs[s->r_seg];
    if (s->rfd >= 0 && s->rfd_first == g->first_seq)
        return 0;
    if (s->rfd >= 0)
        close(s->rfd);
    s->rb.valid = 0;
    char name[32];
    spool_seg_name(name, sizeof name, g->first_seq);
    s->rfd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (s->rfd < 0) {
        int rc = -errno;
        log_error("spool", "%s: open %s/%s: %s", s->name, s->dir, name, strerror(errno));
        return rc;
    }
    s->rfd_first = g->first_seq;
    return 0;
}

int spool_peek(spool *s, const void **data, size_t *len, uint64_t *seq)
{
    int rc;
    s->shown = 0;
    for (;;) {
        if (s->r_seg >= s->n_segs)
            return -ENODATA;
        const spool_seg *g = &s->segs[s->r_seg];
        if (s->r_off >= g->size) {
            if (s->r_seg + 1 >= s->n_segs)
                return -ENODATA;
            s->r_seg++;
            s->r_off = SPOOL_SEGHDR_BYTES;
            continue;
        }
        if ((rc = reader_open(s)) < 0)
            return rc;
        const uint8_t *p;
        spool_frame f;
        if ((rc = rd_get(&s->rb, s->rfd, s->r_off, sizeof f, g->size, &p)) < 0)
            return rc == -ERANGE ? -EIO : rc;
        memcpy(&f, p, sizeof f);
        if (f.magic != SPOOL_REC_MAGIC || f.len == 0 || f.len > SPOOL_MAX_RECORD)
            return -EIO; /* validated at open or written by us: the disk changed under us */
        if ((rc = rd_get(&s->rb, s->rfd, s->r_off + sizeof f, f.len, g->size, &p)) < 0)
            return rc == -ERANGE ? -EIO : rc;
        if (spool_frame_crc(&f, p) != f.crc) {
            log_error("spool", "%s: %s: record %" PRIu64 " changed on disk (checksum)", s->name,
                      s->dir, f.seq);
            return -EIO;
        }
        uint64_t next = s->r_off + sizeof f + f.len;
        if (f.seq < s->r_seq) { /* before the checkpoint: already acknowledged */
            s->r_off = next;
            continue;
        }
        if (s->o.ttl_ms && clock_wall_ns() > f.time_ns + s->o.ttl_ms * 1000000ull) {
            s->r_off = next;
            s->r_seq = f.seq + 1;
            s->st.expired++;
            s->st.records--;
            continue;
        }
        s->shown = 1;
        s->shown_next = next;
        s->shown_seq = f.seq;
        *data = p;
        *len = f.len;
        if (seq)
            *seq = f.seq;
        return 0;
    }
}

int spool_consume(spool *s)
{
    if (!s->shown)
        return -ENODATA;
    s->shown = 0;
    s->r_off = s->shown_next;
    s->r_seq = s->shown_seq + 1;
    s->st.consumed++;
    s->st.records--;
    return 0;
}

static int write_checkpoint(spool *s, uint64_t acked)
{
    int rc = 0;
    spool_ckpt c = {.magic = CKPT_MAGIC, .acked_seq = acked};
    c.crc = spool_crc32c(0, &c, offsetof(spool_ckpt, crc));
    int fd =
        openat(s->dirfd, CKPT_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        rc = -errno;
        goto fail;
    }
    if ((rc = write_full(fd, &c, sizeof c)) < 0 || (fdatasync(fd) < 0 && (rc = -errno))) {
        close(fd);
        goto fail;
    }
    close(fd);
    if (renameat(s->dirfd, CKPT_TMP, s->dirfd, CKPT_NAME) < 0 || fsync(s->dirfd) < 0) {
        rc = -errno;
        goto fail;
    }
    return 0;
fail:
    log_error("spool", "%s: writing %s/%s: %s", s->name, s->dir, CKPT_NAME, strerror(-rc));
    return rc;
}

int spool_ack(spool *s)
{
    int rc;
    if (s->r_seq == s->acked_seq)
        return 0;
    if ((rc = write_checkpoint(s, s->r_seq)) < 0)
        return rc;
    s->acked_seq = s->r_seq;
    /* delete whole segments behind the reader; the reader's own segment stays until it is
     * passed, the writer's current one is closed first so no append goes to an unlinked file */
    size_t drop = 0;
    while (drop < s->n_segs && s->segs[drop].end_seq <= s->acked_seq) {
        spool_seg *g = &s->segs[drop];
        char name[32];
        spool_seg_name(name, sizeof name, g->first_seq);
        if (s->wfd >= 0 && s->wfirst == g->first_seq) {
            close(s->wfd);
            s->wfd = -1;
        }
        if (s->rfd >= 0 && s->rfd_first == g->first_seq) {
            close(s->rfd);
            s->rfd = -1;
            s->rb.valid = 0;
        }
        if (unlinkat(s->dirfd, name, 0) < 0 && errno != ENOENT) {
            log_warn("spool", "%s: unlink %s/%s: %s", s->name, s->dir, name, strerror(errno));
            break;
        }
        s->st.bytes -= g->size;
        s->st.segments--;
        drop++;
    }
    if (drop) {
        memmove(s->segs, s->segs + drop, (s->n_segs - drop) * sizeof *s->segs);
        s->n_segs -= drop;
        if (s->r_seg >= drop) {
            s->r_seg -= drop;
        } else {
            s->r_seg = 0;
            s->r_off = SPOOL_SEGHDR_BYTES;
        }
    }
    return 0;
}

uint64_t spool_count(const spool *s)
{
    return s->st.records;
}

int spool_is_empty(const spool *s)
{
    return s->st.records == 0;
}

void spool_get_stats(const spool *s, spool_stats *out)
{
    *out = s->st;
}
