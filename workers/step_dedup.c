/* step_dedup: drops a message whose key was already seen within `window` seconds; the rest
 * pass on. The key is the value at `key` (a JSON field path such as payload.id, compared as
 * compact JSON with sorted keys, so {"a":1} equals { "a" : 1 }), or the whole payload (its
 * bytes) when no key is set. Per rule and step: a key's window starts when it is first seen
 * and is not extended by repeats; the first message after the window passes and starts the
 * next one. A dropped repeat is counted in stats `dropped` (it is the step's purpose, like a
 * throttle's). A message without the key (the field is missing, or the payload is not JSON)
 * passes and is not remembered: there is nothing to compare it by.
 *
 * State: a table in the step's region of the worker's state segment (wstate.h), so a
 * restarted worker still drops what its predecessor saw. Keys are 64-bit FNV-1a hashes
 * (hash.h; a collision, about 2^-64 per pair, would drop a distinct message). Capacity:
 * DEDUP_MAX_KEYS keys per rule and step, DEDUP_BUCKETS buckets of DEDUP_WAYS entries, about
 * 1.5 MiB of region (tmpfs pages are taken only when touched). When a key's bucket is full of
 * keys still within their window, the one seen first (the nearest to its end) is forgotten, so
 * a repeat of it may pass once more; each such eviction is counted in the region and logged
 * at powers of two. Nothing grows and nothing is rebuilt: a message costs one bucket's look.
 *
 * Crash consistency and re-reads: an entry is {key, first, pos}; writing one clears its key,
 * stores first and pos, then the key (release): a SIGKILL in between leaves the entry empty
 * (the key it held is forgotten: at most one repeat of it passes), never a key with another
 * key's window. A message
 * re-read after a crash that finds the entry it made itself (same input position) passes
 * again: its output may not have reached the output ring (at-least-once, as on_change). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "atom.h"
#include "chain_int.h"
#include "clock.h"
#include "log.h"

#define COMP           "worker"
#define DEDUP_WAYS     8u
#define DEDUP_BUCKETS  8192u /* a power of two */
#define DEDUP_MAX_KEYS (DEDUP_WAYS * DEDUP_BUCKETS)

typedef struct dd_entry {
    uint64_t key;   /* hash, never 0; 0 = empty. E1: stored last (release) */
    uint64_t first; /* monotonic ns the key's window started */
    uint64_t pos;   /* input position + 1 of the message that started it (0: none) */
} dd_entry;

typedef struct dd_table {
    uint64_t last_pos;  /* highest input position applied, for replays */
    uint64_t evictions; /* keys forgotten within their window (bucket full) */
    uint64_t pad[6];
    dd_entry e[DEDUP_BUCKETS][DEDUP_WAYS];
} dd_table;

static size_t state_size(const cfg_step *c)
{
    (void)c;
    return sizeof(dd_table);
}

static int init(chain_step *s)
{
    if (!(s->cfg->interval > 0)) {
        log_error(COMP, "%s: needs a window", s->label);
        return -EINVAL;
    }
    if (!s->region || s->region_len < sizeof(dd_table))
        return -EINVAL; /* our bug: the plan gave it no region */
    dd_table *t = s->region;
    /* entries need no check: any first in the future or past the window reads as expired */
    s->replay.on = chain_replay(s->cr) && t->last_pos != 0;
    s->state = t;
    return 0;
}

static void fini(chain_step *s)
{
    s->state = NULL; /* the region stays for the next worker */
}

/* The key's hash in *h: 0 and *h = 0 when m has no key (missing field, not JSON); -ENOMEM. */
static int key_of(const chain_step *s, const mf_msg *m, uint64_t *h)
{
    bool found;
    if (chain_field_hash(m, s->cfg->field, h, &found) < 0)
        return -ENOMEM;
    if (found && *h == 0)
        *h = 1; /* 0 marks an empty entry */
    return 0;
}

static void evicted(chain_step *s, dd_table *t)
{
    uint64_t n = ++t->evictions;
    if ((n & (n - 1)) == 0)
        log_warn(COMP,
                 "%s: more than %u keys within their window in one bucket: the oldest "
                 "forgotten (%llu so far; a repeat of it may pass)",
                 s->label, DEDUP_WAYS, (unsigned long long)n);
}

static int process(chain_step *s, const ctx_origin *o, const mf_msg *m)
{
    dd_table *t = s->state;
    uint64_t key;
    if (key_of(s, m, &key) < 0) {
        /* without memory for the key, passing the message on is the lesser harm */
        log_warn(COMP, "%s: out of memory, message passed unchecked", s->label);
        return chain_feed(s->cr, s->index + 1, o, m);
    }
    if (key == 0)
        return chain_feed(s->cr, s->index + 1, o, m);

    bool replaying = chain_step_replaying(s, o, &t->last_pos);

    uint64_t now = clock_mono_ns(), win_ns = (uint64_t)(s->cfg->interval * 1e9);
    /* FNV-1a's bits 32..44 barely change with a key's last bytes ("k1", "k2"): fold in the
     * low bits, which do */
    dd_entry *b = t->e[(key ^ key >> 32) & (DEDUP_BUCKETS - 1)], *free_e = NULL, *oldest = &b[0];
    for (unsigned i = 0; i < DEDUP_WAYS; i++) {
        dd_entry *e = &b[i];
        /* relaxed: this process is the only writer while it runs */
        uint64_t k = atom_load_relaxed(&e->key);
        bool live = k != 0 && now >= e->first && now - e->first < win_ns;
        if (k == key && live) {
            if (replaying && e->pos == o->pos)
                return chain_feed(s->cr, s->index + 1, o, m); /* it started the window */
            chain_count_drop(s->cr);
            return 0; /* a repeat */
        }
        if (k == key || (!live && !free_e))
            free_e = e; /* its own expired entry first, else the first free one */
        if (k == key)
            break;
        if (e->first < oldest->first)
            oldest = e;
    }
    if (!free_e) {
        free_e = oldest;
        evicted(s, t);
    }
    atom_store_relaxed(&free_e->key, 0); /* relaxed: ordered by E1 below */
    free_e->first = now;
    free_e->pos = o->pos;
    /* E1: the entry is complete before its key makes it one. Pairs with the next worker's
     * reads after shm_adopt (the process's death orders them; the release keeps the compiler
     * from sinking the stores above past it) */
    atom_store_release(&free_e->key, key);
    return chain_feed(s->cr, s->index + 1, o, m);
}

const step_ops step_dedup_ops = {
    .state_size = state_size,
    .init = init,
    .process = process,
    .fini = fini,
};
