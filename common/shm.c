/* shm: named POSIX shared-memory segments; see shm.h for the contract.
 *
 * Stale reclaim: an existing segment whose header names a dead owner (pid gone, a zombie, or
 * the pid reused by a process with another start time) is unlinked and created anew. Two
 * processes reclaiming the same name at once are serialised with flock on the stale segment,
 * and the one that gets the lock second sees that the name no longer points at the inode it
 * examined and unlinks nothing: a fresh segment is never removed by a late reclaimer.
 * A segment whose header is not complete yet (a creator between O_EXCL and writing the magic)
 * gets a short grace period before it is judged abandoned.
 */
#include "shm.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "atom.h"
#include "clock.h"
#include "log.h"

#define INCOMPLETE_GRACE_NS 200000000ll /* 200 ms for a creator to finish its header */

struct shm {
    void *base;
    size_t size;
    char name[SHM_NAME_MAX + 2];
};

/* "/name" for shm_open; accepts a name with or without its leading slash. */
static int shm_path(const char *name, char *path, size_t cap)
{
    if (!name)
        return -EINVAL;
    if (name[0] == '/')
        name++;
    size_t len = strlen(name);
    if (len == 0 || len > SHM_NAME_MAX || strchr(name, '/') || len + 2 > cap)
        return -EINVAL;
    path[0] = '/';
    memcpy(path + 1, name, len + 1);
    return 0;
}

/* Start time (clock ticks since boot, /proc/<pid>/stat field 22) of a live process: 0 and
 * *start, or -ESRCH when the process is gone or a zombie (it will never touch the segment
 * again). Other errors: -errno. */
static int proc_start_time(pid_t pid, uint64_t *start)
{
    char path[64], buf[1024];

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? -ESRCH : -errno;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    int err = errno;
    close(fd);
    if (n < 0)
        return err == ESRCH ? -ESRCH : -err;
    buf[n] = '\0';
    /* field 2 (comm) is parenthesised and may hold spaces or ')': parse after the last ')' */
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ')
        return -EPROTO;
    p += 2; /* field 3: state */
    if (*p == 'Z' || *p == 'X')
        return -ESRCH;
    for (int field = 3; field < 22; field++) {
        p = strchr(p, ' ');
        if (!p)
            return -EPROTO;
        p++;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(p, &end, 10);
    if (errno || end == p)
        return -EPROTO;
    *start = v;
    return 0;
}

/* The executable's file name of process pid ("mqttflow", "mqttflow-worker"), without the
 * " (deleted)" the kernel appends after an upgrade replaced the file. 0 or -errno. */
static int exe_name(const char *proc, char *buf, size_t len)
{
    char path[64], target[PATH_MAX];
    snprintf(path, sizeof(path), "/proc/%s/exe", proc);
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    if (n < 0)
        return -errno;
    target[n] = 0;
    char *del = strstr(target, " (deleted)");
    if (del && del[10] == 0)
        *del = 0;
    const char *base = strrchr(target, '/');
    const char *name = base ? base + 1 : target;
    if (strlen(name) >= len)
        return -ENAMETOOLONG;
    memcpy(buf, name, strlen(name) + 1);
    return 0;
}

int shm_owner_is_alive(const shm_hdr *h)
{
    uint64_t start;
    if (!h || h->owner_pid == 0 || h->owner_pid > (uint64_t)INT32_MAX)
        return 0;
    if (proc_start_time((pid_t)h->owner_pid, &start) < 0)
        return 0; /* gone, zombie, or unreadable: unreadable /proc of our own uid means gone */
    if (start != h->owner_start)
        return 0;
    /* The pid and start time are only what the header says: a header written by anyone can
     * name any live process (sshd) and so block `run` for ever. The owner is one of ours only
     * when it runs the executable we run (every segment is created and adopted by one kind of
     * process: the supervisor its rings and stats, a worker its state). The file name, not the
     * inode: a supervisor still running an upgraded-away binary is still the owner. */
    char mine[NAME_MAX + 1], theirs[NAME_MAX + 1], pid[24];
    snprintf(pid, sizeof(pid), "%llu", (unsigned long long)h->owner_pid);
    if (exe_name("self", mine, sizeof(mine)) < 0 || exe_name(pid, theirs, sizeof(theirs)) < 0)
        return 0; /* another user's process (EACCES) is not our owner either */
    return strcmp(mine, theirs) == 0;
}

enum existing_state { SEG_LIVE, SEG_STALE, SEG_INCOMPLETE, SEG_FOREIGN };

/* Judges the segment open on fd: live owner, stale, header not written yet, or a file of
 * another user (planted, or chown'ed: never ours to run, whatever its header says). */
static int judge_existing(int fd, enum existing_state *state)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (st.st_uid != geteuid()) {
        *state = SEG_FOREIGN;
        return 0;
    }
    if ((size_t)st.st_size < sizeof(shm_hdr)) {
        *state = SEG_INCOMPLETE;
        return 0;
    }
    shm_hdr *h = mmap(NULL, sizeof(*h), PROT_READ, MAP_SHARED, fd, 0);
    if (h == MAP_FAILED)
        return -errno;
    /* A1 pairs with the creator's M1: a set magic means the owner fields are complete */
    if (atom_load_acquire(&h->magic) != SHM_MAGIC)
        *state = SEG_INCOMPLETE;
    else
        *state = shm_owner_is_alive(h) ? SEG_LIVE : SEG_STALE;
    munmap(h, sizeof(*h));
    return 0;
}

/* Unlinks path if it still names the inode open on fd; serialised with other reclaimers by
 * an exclusive flock on that inode. 0 (unlinked, or already replaced: retry the create). */
static int unlink_if_same(const char *path, int fd)
{
    struct stat a, b;
    char devpath[SHM_NAME_MAX + 16];

    if (flock(fd, LOCK_EX) < 0)
        return -errno;
    int rc = 0;
    snprintf(devpath, sizeof(devpath), "/dev/shm%s", path);
    if (fstat(fd, &a) < 0) {
        rc = -errno;
    } else if (stat(devpath, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev) {
        if (shm_unlink(path) < 0 && errno != ENOENT)
            rc = -errno;
    }
    flock(fd, LOCK_UN);
    return rc;
}

/* An existing segment at path: -EEXIST when its owner lives, 0 after reclaiming it (the
 * caller retries O_EXCL), -errno otherwise. */
static int reclaim_existing(const char *path)
{
    int64_t deadline = (int64_t)clock_mono_ns() + INCOMPLETE_GRACE_NS;

    for (;;) {
        int fd = shm_open(path, O_RDWR | O_CLOEXEC, 0);
        if (fd < 0)
            return errno == ENOENT ? 0 : -errno; /* vanished meanwhile: retry the create */
        enum existing_state state = SEG_INCOMPLETE;
        int rc = judge_existing(fd, &state);
        if (rc == 0 && state == SEG_LIVE)
            rc = -EEXIST;
        if (rc == 0 && state == SEG_FOREIGN) {
            struct stat st;
            rc = fstat(fd, &st) < 0 ? -errno : 0;
            if (rc == 0)
                log_warn("shm",
                         "segment %s belongs to uid %u, not to this user (uid %u): not ours, "
                         "unlinking it and creating it anew",
                         path + 1, (unsigned)st.st_uid, (unsigned)geteuid());
            if (rc == 0 && (rc = unlink_if_same(path, fd)) < 0)
                log_error("shm",
                          "segment /dev/shm%s belongs to uid %u and cannot be removed (%s): "
                          "have its owner or root remove it",
                          path, (unsigned)st.st_uid, strerror(-rc));
            close(fd);
            return rc;
        }
        if (rc == 0 && state == SEG_INCOMPLETE && (int64_t)clock_mono_ns() < deadline) {
            close(fd);
            /* a creator is between O_EXCL and its magic store (microseconds); there is no
             * event to await across processes here, so poll briefly before judging it */
            struct timespec ts = {0, 2000000};
            nanosleep(&ts, NULL);
            continue;
        }
        if (rc == 0) {
            log_warn("shm", "segment %s of a dead owner: unlinking it and creating it anew",
                     path + 1);
            rc = unlink_if_same(path, fd);
        }
        close(fd);
        return rc;
    }
}

static uint64_t page_round(size_t size)
{
    long ps = sysconf(_SC_PAGESIZE);
    uint64_t p = ps > 0 ? (uint64_t)ps : 4096u;
    return ((uint64_t)size + p - 1) / p * p;
}

int shm_create(const char *name, uint32_t kind, uint32_t version, size_t size, shm **out)
{
    char path[SHM_NAME_MAX + 2];
    uint64_t self_start;
    int rc, fd = -1;
    shm *s = NULL;

    *out = NULL;
    if ((rc = shm_path(name, path, sizeof(path))) < 0)
        return rc;
    if (size < sizeof(shm_hdr) || size > (size_t)INT64_MAX / 2)
        return -EINVAL;
    uint64_t total = page_round(size);
    if ((rc = proc_start_time(getpid(), &self_start)) < 0)
        return rc;

    for (int tries = 0;; tries++) {
        fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0)
            break;
        if (errno != EEXIST)
            return -errno;
        if (tries == 3)
            return -EEXIST; /* someone keeps re-creating it: treat as live */
        if ((rc = reclaim_existing(path)) < 0)
            return rc;
    }
    /* the umask may have cleared bits of 0600 (e.g. 0400 under umask 0277): set it exactly */
    if (fchmod(fd, 0600) < 0 || ftruncate(fd, (off_t)total) < 0) {
        rc = -errno;
        log_error("shm", "fchmod/ftruncate(%llu) of segment %s: %s", (unsigned long long)total,
                  path + 1, strerror(-rc));
        goto err_unlink;
    }
    /* Reserve the memory now (issue 8 item 6): tmpfs allocates pages on first touch, so a
     * /dev/shm too small for the segment would otherwise show up later as SIGBUS in whichever
     * stage first writes past the free space, again after every restart. A file system
     * without fallocate (EOPNOTSUPP) keeps the old behaviour. The workers' state segments
     * stay sparse by design (a large address range, pages used as windows grow; wstate.h):
     * not reserved. */
    if (kind != SHM_KIND_STATE && (rc = posix_fallocate(fd, 0, (off_t)total)) != 0 &&
        rc != EOPNOTSUPP && rc != EINVAL) {
        struct statvfs vfs;
        unsigned long long avail = 0, size_all = 0;
        if (fstatvfs(fd, &vfs) == 0) {
            avail = (unsigned long long)vfs.f_bavail * vfs.f_frsize;
            size_all = (unsigned long long)vfs.f_blocks * vfs.f_frsize;
        }
        log_error("shm",
                  "posix_fallocate(%llu) of segment %s in /dev/shm: %s (/dev/shm: %llu bytes "
                  "free of %llu); lower runtime.ring_size or runtime.workers, or enlarge /dev/shm "
                  "(mount -o remount,size=... /dev/shm; docker --shm-size)",
                  (unsigned long long)total, path + 1, strerror(rc), avail, size_all);
        rc = -rc;
        goto err_unlink;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        rc = -ENOMEM;
        goto err_unlink;
    }
    s->base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (s->base == MAP_FAILED) {
        rc = -errno;
        log_error("shm", "mmap(%llu) of segment %s: %s", (unsigned long long)total, path + 1,
                  strerror(-rc));
        goto err_free;
    }
    s->size = total;
    snprintf(s->name, sizeof(s->name), "%s", path + 1);
    close(fd);

    shm_hdr *h = s->base;
    h->version = version;
    h->kind = kind;
    h->size = total;
    h->owner_pid = (uint64_t)getpid();
    h->owner_start = self_start;
    /* M1 pairs with A1 (reclaimers) and A2 (attach): the header is complete once magic is */
    atom_store_release(&h->magic, SHM_MAGIC);
    *out = s;
    return 0;

err_free:
    free(s);
err_unlink:
    shm_unlink(path);
    close(fd);
    return rc;
}

int shm_attach(const char *name, uint32_t kind, uint32_t version, shm **out)
{
    char path[SHM_NAME_MAX + 2];
    struct stat st;
    int rc;

    *out = NULL;
    if ((rc = shm_path(name, path, sizeof(path))) < 0)
        return rc;
    int fd = shm_open(path, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto err_close;
    }
    if ((size_t)st.st_size < sizeof(shm_hdr)) {
        rc = -EPROTO;
        goto err_close;
    }
    shm *s = calloc(1, sizeof(*s));
    if (!s) {
        rc = -ENOMEM;
        goto err_close;
    }
    s->size = (size_t)st.st_size;
    s->base = mmap(NULL, s->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (s->base == MAP_FAILED) {
        rc = -errno;
        log_error("shm", "mmap(%zu) of segment %s: %s", s->size, path + 1, strerror(-rc));
        free(s);
        goto err_close;
    }
    close(fd);
    fd = -1;
    const shm_hdr *h = s->base;
    /* A2 pairs with M1: the other header fields are read only after a set magic */
    if (atom_load_acquire(&h->magic) != SHM_MAGIC || h->kind != kind || h->version != version ||
        h->size != (uint64_t)s->size) {
        rc = -EPROTO;
        munmap(s->base, s->size);
        free(s);
        goto err_close;
    }
    snprintf(s->name, sizeof(s->name), "%s", path + 1);
    *out = s;
    return 0;

err_close:
    if (fd >= 0)
        close(fd);
    return rc;
}

int shm_adopt(const char *name, uint32_t kind, uint32_t version, size_t size, shm **out)
{
    char path[SHM_NAME_MAX + 2];
    uint64_t self_start;
    int rc;

    *out = NULL;
    if ((rc = shm_path(name, path, sizeof(path))) < 0)
        return rc;
    if ((rc = proc_start_time(getpid(), &self_start)) < 0)
        return rc;
    int fd = shm_open(path, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0)
        return errno == ENOENT ? shm_create(name, kind, version, size, out) : -errno;
    /* the same lock reclaimers take (unlink_if_same): nobody unlinks it while we judge it */
    if (flock(fd, LOCK_EX) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    enum existing_state state = SEG_INCOMPLETE;
    shm *s = NULL;
    struct stat st;
    rc = judge_existing(fd, &state);
    if (rc == 0 && state == SEG_LIVE) {
        rc = -EEXIST;
    } else if (rc == 0 && state == SEG_FOREIGN) {
        rc = -EPROTO; /* another user's: never adopted; shm_create below reclaims or refuses */
    } else if (rc == 0 && (fstat(fd, &st) < 0 || (st.st_mode & 0777) != 0600)) {
        /* ours, but others could read or change its records meanwhile: neither adopting nor
         * silently discarding them is right; the operator decides */
        rc = -EPERM;
        log_error("shm",
                  "segment /dev/shm%s has mode %04o, not 0600: others could read or change its "
                  "records, so they are not adopted; inspect it, then remove it to start",
                  path, (unsigned)(st.st_mode & 07777));
    } else if (rc == 0 && state == SEG_INCOMPLETE) {
        rc = -EPROTO; /* nothing worth keeping: shm_create below reclaims it */
    } else if (rc == 0 && (rc = shm_attach(name, kind, version, &s)) == 0 &&
               shm_size(s) != page_round(size)) {
        shm_detach(s);
        s = NULL;
        rc = -EPROTO;
    }
    if (rc == 0) {
        shm_hdr *h = shm_base(s);
        /* relaxed: the magic stays set, so a reader judging liveness right now may see the old
         * or the new owner; both mean "owned" once this process runs (we hold the flock) */
        atom_store_relaxed(&h->owner_pid, (uint64_t)getpid());
        atom_store_relaxed(&h->owner_start, self_start);
        log_info("shm", "segment %s of a dead owner adopted with its contents", path + 1);
    }
    flock(fd, LOCK_UN);
    close(fd);
    if (rc == 0) {
        *out = s;
        return 1;
    }
    /* another kind, version or size: the dead owner's segment is reclaimed and made anew */
    return rc == -EPROTO ? shm_create(name, kind, version, size, out) : rc;
}

int shm_check_ours(const char *name)
{
    char path[SHM_NAME_MAX + 2];
    struct stat st;
    int rc = shm_path(name, path, sizeof(path));
    if (rc < 0)
        return rc;
    int fd = shm_open(path, O_RDONLY | O_CLOEXEC, 0); /* glibc adds O_NOFOLLOW */
    if (fd < 0)
        return -errno;
    enum existing_state state = SEG_INCOMPLETE;
    if (fstat(fd, &st) < 0)
        rc = -errno;
    else if (!S_ISREG(st.st_mode) || (st.st_mode & 07777) != 0600)
        rc = -EPERM;
    else if ((rc = judge_existing(fd, &state)) == 0 && state == SEG_FOREIGN)
        rc = -EPERM;
    else if (rc == 0 && state == SEG_INCOMPLETE)
        rc = -EPROTO;
    else if (rc == 0 && state == SEG_LIVE) {
        /* adopted by this very process (shm_adopt made it the owner) is ours to read */
        shm_hdr h;
        rc = pread(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h) && h.owner_pid == (uint64_t)getpid()
                 ? 0
                 : -EEXIST;
    }
    close(fd);
    return rc;
}

void shm_detach(shm *s)
{
    if (!s)
        return;
    munmap(s->base, s->size);
    free(s);
}

int shm_unlink_name(const char *name)
{
    char path[SHM_NAME_MAX + 2];
    int rc = shm_path(name, path, sizeof(path));
    if (rc < 0)
        return rc;
    return shm_unlink(path) < 0 ? -errno : 0;
}

void *shm_base(const shm *s)
{
    return s->base;
}

size_t shm_size(const shm *s)
{
    return s->size;
}

const char *shm_name(const shm *s)
{
    return s->name;
}
