#include "stats.h"

#include <errno.h>
#include <stdlib.h>

#define STATS_VERSION 1

/* Segment: shm_hdr, then this header on its own cache line, then the slots. */
typedef struct stats_layout {
    shm_hdr hdr;
    uint64_t n_slots;
    uint64_t pad[7];
    stats_slot slots[];
} stats_layout;
_Static_assert(sizeof(stats_layout) == 128, "stats_layout header");

struct stats {
    shm *seg;
    stats_layout *l;
};

static size_t layout_size(size_t n_slots)
{
    return sizeof(stats_layout) + n_slots * sizeof(stats_slot);
}

int stats_create(const char *name, size_t n_slots, stats **out)
{
    if (n_slots == 0 || n_slots > 4096)
        return -EINVAL;
    stats *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    int rc = shm_create(name, SHM_KIND_STATS, STATS_VERSION, layout_size(n_slots), &s->seg);
    if (rc < 0) {
        free(s);
        return rc;
    }
    s->l = shm_base(s->seg);
    /* relaxed: the segment is published to other processes by their later shm_open/mmap,
     * which orders everything written before it */
    __atomic_store_n(&s->l->n_slots, n_slots, __ATOMIC_RELAXED);
    *out = s;
    return 0;
}

int stats_attach(const char *name, stats **out)
{
    stats *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    int rc = shm_attach(name, SHM_KIND_STATS, STATS_VERSION, &s->seg);
    if (rc < 0) {
        free(s);
        return rc;
    }
    s->l = shm_base(s->seg);
    if (layout_size(s->l->n_slots) > shm_size(s->seg)) {
        stats_detach(s);
        return -EPROTO;
    }
    *out = s;
    return 0;
}

void stats_detach(stats *s)
{
    if (!s)
        return;
    shm_detach(s->seg);
    free(s);
}

size_t stats_slot_count(const stats *s)
{
    return (size_t)s->l->n_slots;
}

stats_slot *stats_slot_at(stats *s, size_t idx)
{
    return idx < s->l->n_slots ? &s->l->slots[idx] : NULL;
}

size_t stats_slot_index(enum stats_stage kind, size_t idx, size_t n_ingress)
{
    /* singletons first, so no caller needs the worker count */
    switch (kind) {
    case STATS_SUPERVISOR:
        return 0;
    case STATS_ROUTER:
        return 1;
    case STATS_RELAY:
        return 2;
    case STATS_INGRESS:
        return 3 + idx;
    case STATS_WORKER:
    default:
        return 3 + n_ingress + idx;
    }
}

size_t stats_slot_total(size_t n_ingress, size_t n_workers)
{
    return 3 + n_ingress + n_workers;
}
