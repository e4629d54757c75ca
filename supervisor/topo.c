/* topo: create and remove an instance's segments (see topo.h). */
#include "topo.h"

#include "ring_layout.h"

#include <dirent.h>
#include <errno.h>
#include <sys/statvfs.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hash.h"
#include "deadletter.h"
#include "log.h"
#include "names.h"
#include "rec.h"
#include "ring.h"
#include "salvage.h"
#include "shm.h"

struct topo {
    char *instance;
    size_t n_ingress, n_workers;
    ring **ingress; /* n_ingress observers */
    ring **w_in;    /* n_workers */
    ring **w_out;   /* n_workers */
    stats *st;
    uint64_t resumed_records; /* queued records found in adopted rings at creation */
    uint64_t tag;             /* config_tag, kept in every ring */
};

typedef int (*name_fn)(char *, size_t, const char *, size_t);

size_t topo_max_record(size_t ring_size, size_t max_payload)
{
    size_t want = rec_size(CFG_MAX_TOPIC, max_payload);
    size_t cap = ring_size / 4;
    size_t m = want < cap ? want : cap;
    return m & ~(size_t)(RING_ALIGN - 1);
}

static void fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* The owner pid recorded in an existing segment's header, 0 when unreadable. Read raw: the
 * segment belongs to another supervisor, and only its shm_hdr is of interest. */
static long owner_of(const char *name)
{
    char path[SHM_NAME_MAX + 16];
    shm_hdr h;
    snprintf(path, sizeof(path), "/dev/shm/%s", name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = pread(fd, &h, sizeof(h), 0);
    close(fd);
    if (n != (ssize_t)sizeof(h) || h.magic != SHM_MAGIC)
        return 0;
    return (long)h.owner_pid;
}

static void detach_set(ring **rs, size_t n)
{
    for (size_t i = 0; rs && i < n; i++)
        ring_detach(rs[i]);
    free(rs);
}

/* Detaches every ring and the stats segment and frees t: the end of topo_destroy and of a
 * failed topo_create (what is not attached yet is NULL). Unlinks nothing. */
static void topo_free(topo *t)
{
    detach_set(t->ingress, t->n_ingress);
    detach_set(t->w_in, t->n_workers);
    detach_set(t->w_out, t->n_workers);
    stats_detach(t->st);
    free(t->instance);
    free(t);
}

/* Whether name is a worker's state segment of the instance ("mqttflow.<inst>.w<N>.state"). */
static int is_state_segment(const char *instance, const char *name)
{
    char prefix[SHM_NAME_MAX];
    int n = snprintf(prefix, sizeof(prefix), "mqttflow.%s.w", instance);
    if (n < 0 || (size_t)n >= sizeof(prefix) || strncmp(name, prefix, (size_t)n))
        return 0;
    const char *p = name + n;
    if (*p < '0' || *p > '9')
        return 0;
    while (*p >= '0' && *p <= '9')
        p++;
    return strcmp(p, ".state") == 0;
}

/* Whether name is one of the rings of the current topology (their segments are adopted). */
static int is_current_ring(const topo *t, const char *name)
{
    char want[SHM_NAME_MAX];
    for (size_t i = 0; i < t->n_ingress; i++)
        if (names_ingress_ring(want, sizeof(want), t->instance, i) == 0 && !strcmp(want, name))
            return 1;
    for (size_t i = 0; i < t->n_workers; i++)
        if ((names_worker_in(want, sizeof(want), t->instance, i) == 0 && !strcmp(want, name)) ||
            (names_worker_out(want, sizeof(want), t->instance, i) == 0 && !strcmp(want, name)))
            return 1;
    return 0;
}

/* Records still queued in a ring segment nobody maps (published, not released), 0 when it is
 * not a readable ring. Read raw, for the log line of a segment about to be removed. */
static uint64_t queued_in(const char *name)
{
    ring *r = NULL;
    ring_stats st;
    if (ring_attach(name, RING_OBSERVER, &r) < 0)
        return 0;
    ring_get_stats(r, &st);
    ring_detach(r);
    return st.records_in > st.records_out ? st.records_in - st.records_out : 0;
}

/* Removes the segments of the instance a dead one left that this topology has no use for:
 * rings of stages a previous configuration had and this one has not (their records cannot
 * reach any stage; counted in the log) and anything else but the stats segment, the rings of
 * the current topology (adopted by create_set, queued records survive) and the workers' state
 * segments (each worker adopts its own, so open windows survive too). It runs once this
 * process has created the stats segment exclusively: no live supervisor owns the instance.
 * Returns how many were removed. */
static size_t sweep_stale(const topo *t, const cfg *c)
{
    char prefix[SHM_NAME_MAX], stats_name[SHM_NAME_MAX];
    size_t n = 0;
    snprintf(prefix, sizeof(prefix), "mqttflow.%s.", t->instance);
    if (names_stats(stats_name, sizeof(stats_name), t->instance) < 0)
        return 0;
    DIR *d = opendir("/dev/shm");
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) || !strcmp(e->d_name, stats_name) ||
            is_current_ring(t, e->d_name) || is_state_segment(t->instance, e->d_name))
            continue;
        uint64_t queued = queued_in(e->d_name), saved = 0;
        if (queued) {
            int rc = salvage_ring(e->d_name, c,
                                  "queued for a stage this configuration no longer has (fewer "
                                  "workers or ingress clients)",
                                  &saved);
            if (rc < 0) {
                log_error("supervisor",
                          "%s (not in this configuration) holds %llu queued record(s) that cannot "
                          "be dead-lettered: %s; kept",
                          e->d_name, (unsigned long long)queued, strerror(-rc));
                continue;
            }
        }
        if (shm_unlink_name(e->d_name) < 0)
            continue;
        n++;
        if (queued)
            log_warn("supervisor",
                     "removed %s (not in this configuration): its %llu queued record(s) went to "
                     "the dead-letter store with reason \"configuration changed\"",
                     e->d_name, (unsigned long long)saved);
    }
    closedir(d);
    return n;
}

/* Removes every segment carrying the instance's name but the rings that still hold records
 * (a stop that could not deliver everything must not lose it: the next run adopts them) and,
 * when keep_state, the workers' state segments. Returns how many were kept. */
static size_t sweep_all(const char *instance, int keep_state)
{
    char prefix[SHM_NAME_MAX];
    size_t kept = 0;
    snprintf(prefix, sizeof(prefix), "mqttflow.%s.", instance);
    DIR *d = opendir("/dev/shm");
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, prefix, strlen(prefix)))
            continue;
        if ((keep_state && is_state_segment(instance, e->d_name)) || queued_in(e->d_name)) {
            kept++;
            continue;
        }
        (void)shm_unlink_name(e->d_name);
    }
    closedir(d);
    return kept;
}

/* What the numbers in the records mean: the config's clients and rules, in order (REC_MSG and
 * REC_PUBLISH carry client and rule indices). FNV-1a over their names; never 0 (0: no tag). */
static uint64_t config_tag(const cfg *c)
{
    uint64_t h = HASH_FNV1A_BASIS;
    for (size_t i = 0; i < c->n_clients + c->n_rules + 1; i++) {
        const char *s = i < c->n_clients    ? c->clients[i].client_id
                        : i == c->n_clients ? "\x01rules"
                                            : c->rules[i - c->n_clients - 1].name;
        s = s ? s : "";
        h = hash_fnv1a_add(h, s, strlen(s) + 1); /* the NUL too: "ab","c" is not "a","bc" */
    }
    return h ? h : 1;
}

/* The queued records of the ring name (an earlier run's, about to be made anew) go to the
 * dead-letter store with reason why (salvage.h), then the ring is removed. what says in the
 * log which kind of ring it was, fix what the operator can do when the store fails. 0 or
 * -errno (the store failed: the ring is kept, logged). */
static int salvage_queued(const char *name, const cfg *c, uint64_t queued, const char *what,
                          const char *why, const char *fix)
{
    uint64_t n = 0;
    int rc = salvage_ring(name, c, why, &n);
    if (rc < 0) {
        log_error("supervisor",
                  "%s holds %llu queued record(s) %s and the dead-letter store %s cannot take "
                  "them: %s; the ring is kept, %s",
                  name, (unsigned long long)queued, what, c->runtime.dead_letter_dir, strerror(-rc),
                  fix);
        return rc;
    }
    log_warn("supervisor",
             "%s held %llu queued record(s) %s: %llu written to the dead-letter store %s/%s with "
             "reason \"configuration changed\"",
             name, (unsigned long long)queued, what, (unsigned long long)n,
             c->runtime.dead_letter_dir, DEADLETTER_FILE);
    (void)ring_unlink(name);
    return 0;
}

/* An adopted ring whose records were written under another configuration (other clients or
 * rules, so other indices): its records would be routed to the wrong rule or client, so they
 * go to the dead-letter store (salvage.h) and the ring is made anew. 0 or -errno (*r
 * replaced; on an error of the store the ring is kept and the run refused: nothing queued
 * disappears). */
static int drop_foreign(ring **r, const cfg *c, const char *name, uint64_t queued)
{
    size_t cap = ring_capacity(*r), max_rec = ring_max_record(*r);
    ring_detach(*r);
    *r = NULL;
    int rc = salvage_queued(name, c, queued,
                            "of another configuration (its clients or rules changed since)",
                            "queued under a previous configuration whose clients or rules "
                            "differ (their indices in the records mean other ones now)",
                            "start the previous configuration or fix the store");
    return rc < 0 ? rc : ring_create(name, cap, max_rec, r);
}

/* Before ring_adopt: a ring the last run left in another geometry (runtime.ring_size or
 * runtime.max_payload changed) cannot be adopted, and ring_adopt would reclaim it empty; its
 * queued records go to the dead-letter store first (salvage.h reads them in the segment's own
 * geometry), then the ring is removed, so ring_adopt creates it anew. Anything else (absent,
 * the same geometry, empty, not a ring we can read, not ours) is left to ring_adopt. 0 or
 * -errno (the store failed: the ring is kept and the run refused, as in drop_foreign). */
static int drop_other_geometry(const char *name, const cfg *c, size_t cap, size_t max_rec)
{
    ring *r = NULL;
    ring_stats st;
    if (shm_check_ours(name) < 0 || ring_attach(name, RING_OBSERVER, &r) < 0)
        return 0;
    size_t old_cap = ring_capacity(r), old_max = ring_max_record(r);
    ring_get_stats(r, &st);
    ring_detach(r);
    uint64_t queued = st.records_in > st.records_out ? st.records_in - st.records_out : 0;
    if ((old_cap == cap && old_max == max_rec) || !queued)
        return 0;
    char what[192];
    snprintf(what, sizeof(what),
             "in another geometry (%zu bytes, records up to %zu; now %zu and %zu: "
             "runtime.ring_size or runtime.max_payload changed)",
             old_cap, old_max, cap, max_rec);
    int rc = salvage_queued(name, c, queued, what,
                            "queued in a ring of another geometry (runtime.ring_size or "
                            "runtime.max_payload changed since)",
                            "start with the previous runtime.ring_size and runtime.max_payload "
                            "or fix the store");
    return rc < 0 ? rc : 0;
}

/* Creates n rings named by fn into rs[], adopting those a dead instance left with the same
 * geometry and configuration (their queued records are resumed, and logged). On failure
 * rs[] holds what was made. */
static int create_set(topo *t, const cfg *c, name_fn fn, size_t n, ring **rs, char *err,
                      size_t errlen)
{
    char name[SHM_NAME_MAX];
    size_t max_rec = topo_max_record(c->runtime.ring_size, c->runtime.max_payload);
    for (size_t i = 0; i < n; i++) {
        int rc = fn(name, sizeof(name), t->instance, i);
        if (rc == 0 && (rc = drop_other_geometry(name, c, c->runtime.ring_size, max_rec)) < 0) {
            fail(err, errlen, "queued records of %s: %s", name, strerror(-rc));
            return rc;
        }
        if (rc == 0)
            rc = ring_adopt(name, c->runtime.ring_size, max_rec, &rs[i]);
        if (rc == -EEXIST) {
            fail(err, errlen, "instance %s is already running (pid %ld)", t->instance,
                 owner_of(name));
            return rc;
        }
        if (rc < 0) {
            fail(err, errlen, "ring_adopt(%s, %zu bytes, max record %zu): %s", name,
                 c->runtime.ring_size, max_rec, strerror(-rc));
            return rc;
        }
        if (rc == 1) {
            ring_stats st;
            ring_get_stats(rs[i], &st);
            uint64_t q = st.records_in - st.records_out, tag = ring_tag(rs[i]);
            if (q && tag && tag != t->tag) {
                if ((rc = drop_foreign(&rs[i], c, name, q)) < 0) {
                    fail(err, errlen, "queued records of %s: %s", name, strerror(-rc));
                    return rc;
                }
                q = 0;
            }
            t->resumed_records += q;
            if (q)
                log_info("supervisor", "resuming %llu queued record(s) (%zu bytes) in %s",
                         (unsigned long long)q, ring_used(rs[i]), name);
            else
                log_debug("supervisor", "adopted empty ring %s", name);
        }
        ring_set_tag(rs[i], t->tag);
    }
    return 0;
}

int topo_check_shm(const cfg *c, char *err, size_t errlen)
{
    struct statvfs vfs;
    if (statvfs("/dev/shm", &vfs) != 0)
        return 0;
    uint64_t page = 4096;
    uint64_t seg = (RING_DATA_OFFSET + (uint64_t)c->runtime.ring_size + page - 1) / page * page;
    uint64_t n_rings = cfg_ingress_count(c) + 2 * (uint64_t)c->runtime.workers;
    uint64_t need = seg * n_rings;
    uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    uint64_t total = (uint64_t)vfs.f_blocks * vfs.f_frsize;
    /* this instance's segments are adopted or replaced by a run: their space counts as free */
    char prefix[SHM_NAME_MAX];
    int pl = snprintf(prefix, sizeof(prefix), "mqttflow.%s.", c->runtime.instance);
    DIR *d = opendir("/dev/shm");
    struct dirent *e;
    while (d && pl > 0 && (e = readdir(d)) != NULL) {
        struct stat st;
        if (!strncmp(e->d_name, prefix, (size_t)pl) &&
            fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
            avail += (uint64_t)st.st_blocks * 512;
    }
    if (d)
        closedir(d);
    if (need <= avail)
        return 0;
    fail(err, errlen,
         "the rings need %llu bytes of shared memory (%llu rings of %llu bytes: runtime.ring_size "
         "%zu for %zu ingress and 2 x %d workers) but /dev/shm has %llu bytes free of %llu; "
         "lower runtime.ring_size or runtime.workers, or enlarge /dev/shm (mount -o "
         "remount,size=... /dev/shm; docker --shm-size)",
         (unsigned long long)need, (unsigned long long)n_rings, (unsigned long long)seg,
         c->runtime.ring_size, cfg_ingress_count(c), c->runtime.workers, (unsigned long long)avail,
         (unsigned long long)total);
    return -ENOSPC;
}

int topo_create(const cfg *c, topo **out, char *err, size_t errlen)
{
    if (topo_check_shm(c, err, errlen) < 0)
        return -ENOSPC;
    char name[SHM_NAME_MAX];
    int rc;
    topo *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->n_ingress = cfg_ingress_count(c);
    t->n_workers = (size_t)c->runtime.workers;
    t->instance = strdup(c->runtime.instance);
    t->tag = config_tag(c);
    t->ingress = calloc(t->n_ingress ? t->n_ingress : 1, sizeof(ring *));
    t->w_in = calloc(t->n_workers ? t->n_workers : 1, sizeof(ring *));
    t->w_out = calloc(t->n_workers ? t->n_workers : 1, sizeof(ring *));
    if (!t->instance || !t->ingress || !t->w_in || !t->w_out) {
        rc = -ENOMEM;
        fail(err, errlen, "out of memory");
        goto err_free;
    }

    /* The stats segment first: it is the cheapest place to find a live instance, and
     * nothing else has been created yet when that is the answer. */
    rc = names_stats(name, sizeof(name), t->instance);
    if (rc == 0)
        rc = stats_create_rules(name, stats_slot_total(t->n_ingress, t->n_workers), c->n_rules,
                                t->n_workers, &t->st);
    if (rc == -EEXIST) {
        fail(err, errlen, "instance %s is already running (pid %ld)", t->instance, owner_of(name));
        goto err_free;
    }
    if (rc < 0) {
        fail(err, errlen, "stats_create(%s): %s", name, strerror(-rc));
        goto err_free;
    }
    size_t stale = sweep_stale(t, c);
    if (stale)
        log_info("supervisor", "removed %zu segment(s) a dead instance %s left", stale,
                 t->instance);
    if ((rc = create_set(t, c, names_ingress_ring, t->n_ingress, t->ingress, err, errlen)) ||
        (rc = create_set(t, c, names_worker_in, t->n_workers, t->w_in, err, errlen)) ||
        (rc = create_set(t, c, names_worker_out, t->n_workers, t->w_out, err, errlen)))
        goto err_unlink;
    if (t->resumed_records)
        log_info("supervisor", "instance %s resumes %llu queued record(s) a dead instance left",
                 t->instance, (unsigned long long)t->resumed_records);
    *out = t;
    return 0;

err_unlink:
    /* Only names this call created or adopted (a set's first -EEXIST stops there), and only
     * the empty ones: adopted records stay for the next try. */
    for (size_t i = 0; i < t->n_ingress; i++)
        if (t->ingress[i] && !ring_used(t->ingress[i]) &&
            names_ingress_ring(name, sizeof(name), t->instance, i) == 0)
            (void)ring_unlink(name);
    for (size_t i = 0; i < t->n_workers; i++) {
        if (t->w_in[i] && !ring_used(t->w_in[i]) &&
            names_worker_in(name, sizeof(name), t->instance, i) == 0)
            (void)ring_unlink(name);
        if (t->w_out[i] && !ring_used(t->w_out[i]) &&
            names_worker_out(name, sizeof(name), t->instance, i) == 0)
            (void)ring_unlink(name);
    }
    if (names_stats(name, sizeof(name), t->instance) == 0)
        (void)shm_unlink_name(name);
err_free:
    topo_free(t);
    return rc;
}

void topo_destroy(topo *t, int clean)
{
    char name[SHM_NAME_MAX];
    if (!t)
        return;
    if (names_stats(name, sizeof(name), t->instance) == 0)
        (void)shm_unlink_name(name);
    /* the rings, and what the stages created themselves (the workers' state segments) */
    size_t queued = topo_bytes_queued(t);
    size_t kept = sweep_all(t->instance, !clean);
    if (kept)
        log_warn("supervisor",
                 "instance %s: kept %zu segment(s) for its next run (%zu bytes of records in "
                 "its rings%s)",
                 t->instance, kept, queued, clean ? "" : ", the workers' state");
    topo_free(t);
}

uint64_t topo_resumed_records(const topo *t)
{
    return t->resumed_records;
}

stats *topo_stats(topo *t)
{
    return t->st;
}

static int pct(size_t used, size_t cap)
{
    if (cap == 0)
        return -1;
    size_t p = (used * 100 + cap - 1) / cap; /* round up: a non-empty ring never shows 0% */
    return p > 100 ? 100 : (int)p;
}

static int fill_sum(ring *const *rs, size_t n)
{
    size_t used = 0, cap = 0;
    for (size_t i = 0; i < n; i++) {
        used += ring_used(rs[i]);
        cap += ring_capacity(rs[i]);
    }
    return pct(used, cap);
}

int topo_fill_pct(const topo *t, enum stats_stage kind, size_t idx)
{
    switch (kind) {
    case STATS_INGRESS:
        return idx < t->n_ingress ? fill_sum(&t->ingress[idx], 1) : -1;
    case STATS_ROUTER:
        return fill_sum(t->ingress, t->n_ingress);
    case STATS_WORKER:
        return idx < t->n_workers ? fill_sum(&t->w_in[idx], 1) : -1;
    case STATS_RELAY:
        return fill_sum(t->w_out, t->n_workers);
    default:
        return -1;
    }
}

size_t topo_bytes_queued(const topo *t)
{
    size_t used = 0;
    for (size_t i = 0; i < t->n_ingress; i++)
        used += ring_used(t->ingress[i]);
    for (size_t i = 0; i < t->n_workers; i++)
        used += ring_used(t->w_in[i]) + ring_used(t->w_out[i]);
    return used;
}
