/* spool_append: the write path of the spool (see spool.h, "Durability").
 *
 * A batch goes to disk as one contiguous write into one segment: the frames are built in a
 * staging buffer (the copy costs far less than the fdatasync that follows, and one write
 * SQE avoids IOV_MAX limits), then write -> fdatasync (-> directory fsync for a new segment)
 * are queued as one IOSQE_IO_LINK chain and submitted with a single io_uring_submit_and_wait.
 * A link breaks on the first failure (later SQEs complete with -ECANCELED), so an fdatasync
 * that completed with 0 always follows a write that completed whole. */
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "spool_int.h"

enum { OP_WRITE = 1, OP_DATASYNC = 2, OP_DIRSYNC = 3 };

static int stage_reserve(spool *s, size_t n)
{
    if (n <= s->stage_cap)
        return 0;
    size_t cap = s->stage_cap ? s->stage_cap : 64u << 10;
    while (cap < n)
        cap *= 2;
    uint8_t *b = realloc(s->stage, cap);
    if (!b)
        return -ENOMEM;
    s->stage = b;
    s->stage_cap = cap;
    return 0;
}

static int new_segment(spool *s)
{
    char name[32];
    spool_seg g = {.first_seq = s->next_seq, .end_seq = s->next_seq, .size = 0};
    int rc = spool_segs_reserve(s);
    if (rc < 0)
        return rc;
    spool_seg_name(name, sizeof name, g.first_seq);
    int fd = openat(s->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        rc = -errno;
        log_error("spool", "%s: open(O_CREAT|O_EXCL) %s/%s: %s", s->name, s->dir, name,
                  strerror(errno));
        return rc;
    }
    if (s->wfd >= 0)
        close(s->wfd);
    s->wfd = fd;
    s->wfirst = g.first_seq;
    s->segs[s->n_segs++] = g;
    return 0;
}

/* Undoes a failed batch: a new segment is removed, an old one cut back to off. */
static void rollback(spool *s, int created, uint64_t off)
{
    char name[32];
    spool_seg_name(name, sizeof name, s->wfirst);
    if (created) {
        close(s->wfd);
        s->wfd = -1;
        s->n_segs--;
        if (unlinkat(s->dirfd, name, 0) == 0)
            return;
    } else if (ftruncate(s->wfd, (off_t)off) == 0 && fdatasync(s->wfd) == 0) {
        return;
    }
    log_error("spool",
              "%s: cannot remove a failed batch from %s/%s: %s; refusing appends "
              "until reopened",
              s->name, s->dir, name, strerror(errno));
    s->broken = 1;
}

static int finish_sync(spool *s, uint64_t off, size_t done, size_t len, int created)
{
    while (done < len) {
        ssize_t r = pwrite(s->wfd, s->stage + done, len - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? -errno : -EIO;
        done += (size_t)r;
    }
    if (fdatasync(s->wfd) < 0 || (created && fsync(s->dirfd) < 0))
        return -errno;
    s->st.fsyncs += created ? 2 : 1;
    return 0;
}

/* Lays the batch out in s->stage as it goes to disk: a segment header first when the batch
 * opens segment g, then one frame and its data per record. */
static void stage_batch(spool *s, const struct iovec *recs, size_t n, int created,
                        const spool_seg *g)
{
    uint8_t *p = s->stage;
    if (created) {
        spool_seghdr h = {.magic = SPOOL_SEG_MAGIC,
                          .version = SPOOL_VERSION,
                          .hdr_bytes = SPOOL_SEGHDR_BYTES,
                          .first_seq = g->first_seq};
        h.crc = spool_crc32c(0, &h, offsetof(spool_seghdr, crc));
        memcpy(p, &h, sizeof h);
        p += sizeof h;
    }
    uint64_t now = clock_wall_ns();
    for (size_t i = 0; i < n; i++) {
        spool_frame f = {.magic = SPOOL_REC_MAGIC,
                         .len = (uint32_t)recs[i].iov_len,
                         .seq = s->next_seq + i,
                         .time_ns = now};
        f.crc = spool_frame_crc(&f, recs[i].iov_base);
        memcpy(p, &f, sizeof f);
        memcpy(p + sizeof f, recs[i].iov_base, f.len);
        p += sizeof f + f.len;
    }
}

/* Queues write -> fdatasync (-> directory fsync) as one linked chain and submits it. Returns the
 * number of SQEs submitted, or -errno; after a failed submit the ring is made anew (the queued
 * SQEs must not go out with a later batch) and the spool is broken if that fails too. */
static int submit_chain(spool *s, uint64_t len, uint64_t off, int created)
{
    unsigned nsqe = created ? 3 : 2;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&s->ring);
    io_uring_prep_write(sqe, s->wfd, s->stage, (unsigned)len, off);
    sqe->flags |= IOSQE_IO_LINK;
    io_uring_sqe_set_data64(sqe, OP_WRITE);
    sqe = io_uring_get_sqe(&s->ring);
    io_uring_prep_fsync(sqe, s->wfd, IORING_FSYNC_DATASYNC);
    io_uring_sqe_set_data64(sqe, OP_DATASYNC);
    if (created) {
        /* the new file's directory entry must be durable too, or a crash loses the file */
        sqe->flags |= IOSQE_IO_LINK;
        sqe = io_uring_get_sqe(&s->ring);
        io_uring_prep_fsync(sqe, s->dirfd, 0);
        io_uring_sqe_set_data64(sqe, OP_DIRSYNC);
    }
    int sub;
    do
        sub = io_uring_submit_and_wait(&s->ring, nsqe);
    while (sub == -EINTR);
    if (sub < 0) {
        log_error("spool", "%s: io_uring_submit: %s", s->name, strerror(-sub));
        /* nothing was submitted: the SQEs stay queued; drop them with a fresh ring state */
        io_uring_queue_exit(&s->ring);
        s->ring_ok = 0;
        if (io_uring_queue_init(SPOOL_URING_DEPTH, &s->ring, 0) == 0)
            s->ring_ok = 1;
        else
            s->broken = 1;
    }
    return sub;
}

/* Reaps the sub completions of a submitted chain and finishes a short write by hand. 0 when
 * all len bytes are written and synced, else the first -errno. */
static int reap_chain(spool *s, int sub, uint64_t len, uint64_t off, int created)
{
    int64_t wres = -ECANCELED;
    int fail = 0, short_write = 0;
    for (unsigned k = 0; k < (unsigned)sub; k++) {
        struct io_uring_cqe *cqe;
        int w;
        do
            w = io_uring_wait_cqe(&s->ring, &cqe);
        while (w == -EINTR);
        if (w < 0) {
            fail = w;
            break;
        }
        uint64_t op = io_uring_cqe_get_data64(cqe);
        int res = cqe->res;
        io_uring_cqe_seen(&s->ring, cqe);
        if (op == OP_WRITE) {
            wres = res;
            if (res >= 0 && (uint64_t)res < len)
                short_write = 1; /* breaks the link: the syncs come back -ECANCELED */
            else if (res < 0)
                fail = res;
        } else if (res == 0) {
            s->st.fsyncs++;
        } else if (!(short_write && res == -ECANCELED) && !fail) {
            fail = res;
        }
    }
    if (!fail && short_write)
        fail = finish_sync(s, off, (size_t)wres, (size_t)len, created);
    return fail;
}

int spool_append_batch(spool *s, const struct iovec *recs, size_t n)
{
    int rc;
    if (s->broken)
        return -EIO;
    if (n == 0)
        return 0;
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (recs[i].iov_len == 0 || recs[i].iov_len > s->o.max_record)
            return -EMSGSIZE;
        total += SPOOL_FRAME_BYTES + recs[i].iov_len;
    }
    int created = s->wfd < 0 || s->n_segs == 0 || s->segs[s->n_segs - 1].size >= s->o.segment_bytes;
    uint64_t len = total + (created ? SPOOL_SEGHDR_BYTES : 0);
    if (len > (1u << 30))
        return -EMSGSIZE; /* one write SQE carries 32-bit lengths; batches are far smaller */
    if (s->o.max_bytes && s->st.bytes + len > s->o.max_bytes) {
        s->st.refused += n;
        return -ENOSPC;
    }
    if ((rc = stage_reserve(s, (size_t)len)) < 0)
        return rc;
    if (created && (rc = new_segment(s)) < 0)
        return rc;
    spool_seg *g = &s->segs[s->n_segs - 1];
    uint64_t off = g->size;
    stage_batch(s, recs, n, created, g);
    if ((rc = submit_chain(s, len, off, created)) < 0) {
        rollback(s, created, off);
        return rc;
    }
    if ((rc = reap_chain(s, rc, len, off, created)) != 0) {
        log_error("spool", "%s: writing %" PRIu64 " bytes to segment %016" PRIx64 " of %s: %s",
                  s->name, len, s->wfirst, s->dir, strerror(-rc));
        rollback(s, created, off);
        return rc;
    }
    g->size = off + len;
    g->end_seq += n;
    s->next_seq += n;
    s->st.bytes += len;
    s->st.segments += created ? 1 : 0;
    s->st.records += n;
    s->st.appended += n;
    s->st.batches++;
    return 0;
}

int spool_append(spool *s, const void *data, size_t len)
{
    struct iovec v = {.iov_base = (void *)data, .iov_len = len};
    return spool_append_batch(s, &v, 1);
}
