#include "wstate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "atom.h"
#include "chain.h"
#include "hash.h"
#include "log.h"
#include "names.h"

#define COMP "worker"

struct wstate {
    shm *seg;   /* NULL: private memory */
    char *base; /* the wstate_hdr */
    size_t size;
    size_t *off; /* per rule and step: region offset, 0 = stateless */
    size_t *len;
    size_t *first; /* per rule: index of its step 0 in off/len */
    size_t n_rules;
    size_t n_steps;   /* entries of off/len */
    size_t n_regions; /* steps with state */
    bool adopted, positions_valid;
};

static const cfg_chain *rule_chain(const cfg *c, size_t r)
{
    int ch = c->rules[r].chain;
    return ch >= 0 && (size_t)ch < c->n_chains ? &c->chains[ch] : NULL;
}

size_t wstate_plan(const cfg *c, uint64_t *hash)
{
    uint64_t h = HASH_FNV1A_BASIS;
    size_t size = WSTATE_PAGE; /* the header's page */
    uint64_t v = WSTATE_VERSION;

    h = hash_fnv1a_add(h, &v, sizeof(v));
    for (size_t r = 0; r < c->n_rules; r++) {
        const cfg_chain *ch = rule_chain(c, r);
        uint64_t id = r << 32 | (ch ? ch->n_steps : 0xffffffffu);
        h = hash_fnv1a_add(h, &id, sizeof(id));
        for (size_t i = 0; ch && i < ch->n_steps; i++) {
            size_t n = chain_state_size(&ch->steps[i]);
            h = cfg_step_hash(h, &ch->steps[i]);
            size += (n + WSTATE_PAGE - 1) / WSTATE_PAGE * WSTATE_PAGE;
        }
    }
    if (hash)
        *hash = h;
    return size;
}

void wstate_close(wstate *ws)
{
    if (!ws)
        return;
    if (ws->seg)
        shm_detach(ws->seg);
    else if (ws->base)
        munmap(ws->base, ws->size);
    free(ws->off);
    free(ws->len);
    free(ws->first);
    free(ws);
}

/* Fills the region table from the plan (the same walk as wstate_plan). */
static int build_table(wstate *ws, const cfg *c)
{
    size_t n = 0;
    for (size_t r = 0; r < c->n_rules; r++) {
        const cfg_chain *ch = rule_chain(c, r);
        n += ch ? ch->n_steps : 0;
    }
    ws->n_rules = c->n_rules;
    ws->n_steps = n;
    ws->off = calloc(n ? n : 1, sizeof(*ws->off));
    ws->len = calloc(n ? n : 1, sizeof(*ws->len));
    ws->first = calloc(c->n_rules ? c->n_rules : 1, sizeof(*ws->first));
    if (!ws->off || !ws->len || !ws->first)
        return -ENOMEM;
    size_t at = WSTATE_PAGE, k = 0;
    for (size_t r = 0; r < c->n_rules; r++) {
        const cfg_chain *ch = rule_chain(c, r);
        ws->first[r] = k;
        for (size_t i = 0; ch && i < ch->n_steps; i++, k++) {
            size_t len = chain_state_size(&ch->steps[i]);
            ws->off[k] = len ? at : 0;
            ws->len[k] = len;
            ws->n_regions += len != 0;
            at += (len + WSTATE_PAGE - 1) / WSTATE_PAGE * WSTATE_PAGE;
        }
    }
    return at <= ws->size ? 0 : -EPROTO; /* our bug: the plan and the table disagree */
}

/* Zeroes every region (only when old contents are there: new memory is zero, and writing it
 * would allocate every page of a sparse segment) and publishes the header for this plan. */
static void init_fresh(wstate *ws, uint64_t hash, bool old_contents)
{
    wstate_hdr *h = (wstate_hdr *)ws->base;
    /* relaxed: a reader of the magic is the next worker, after this one is dead */
    atom_store_relaxed(&h->magic, 0);
    if (old_contents && madvise(ws->base + WSTATE_PAGE, ws->size - WSTATE_PAGE, MADV_REMOVE) < 0) {
        /* MADV_REMOVE frees the tmpfs pages (they read back as zeros); memset if refused */
        log_warn(COMP, "madvise(MADV_REMOVE, %zu) of the state segment: %s; zeroing it",
                 ws->size - WSTATE_PAGE, strerror(errno));
        memset(ws->base + WSTATE_PAGE, 0, ws->size - WSTATE_PAGE);
    }
    h->cfg_hash = hash;
    h->size = ws->size;
    h->n_regions = ws->n_regions;
    /* S1: the header is valid only once the regions are zeroed; pairs with the acquire load
     * of S2 in the next worker's wstate_open */
    atom_store_release(&h->magic, WSTATE_MAGIC);
}

static int create_common(const cfg *c, wstate **out, wstate **ws_out, uint64_t *hash)
{
    *out = NULL;
    wstate *ws = calloc(1, sizeof(*ws));
    if (!ws)
        return -ENOMEM;
    ws->size = wstate_plan(c, hash);
    *ws_out = ws;
    return 0;
}

int wstate_create_private(const cfg *c, wstate **out)
{
    wstate *ws;
    uint64_t hash;
    int rc = create_common(c, out, &ws, &hash);
    if (rc < 0)
        return rc;
    /* anonymous memory is zeroed and sparse, like a new segment */
    void *p = mmap(NULL, ws->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        rc = -errno;
        log_error(COMP, "mmap(%zu) of the private step state: %s", ws->size, strerror(-rc));
        free(ws);
        return rc;
    }
    ws->base = p;
    if ((rc = build_table(ws, c)) < 0) {
        wstate_close(ws);
        return rc;
    }
    init_fresh(ws, hash, false);
    *out = ws;
    return 0;
}

/* Says so when name holds a state segment of an older layout (shm_adopt then makes it anew
 * without a word: an older version is just another one to it). */
static void note_old_layout(const char *name)
{
    for (uint32_t v = 1; v < WSTATE_VERSION; v++) {
        shm *old;
        if (shm_attach(name, SHM_KIND_STATE, v, &old) == 0) {
            shm_detach(old);
            log_warn(COMP,
                     "state segment %s: written by an older mqttflow (state layout %u, this one "
                     "reads %u): not migrated, the state of the stateful steps starts fresh",
                     name, v, WSTATE_VERSION);
            return;
        }
    }
}

int wstate_open(const cfg *c, size_t worker, const wstate_input *in, wstate **out)
{
    char name[SHM_NAME_MAX];
    wstate *ws;
    uint64_t hash;
    int rc = create_common(c, out, &ws, &hash);
    if (rc < 0)
        return rc;
    if ((rc = names_worker_state(name, sizeof(name), c->runtime.instance, worker)) < 0)
        goto fail;
    note_old_layout(name);
    rc = shm_adopt(name, SHM_KIND_STATE, WSTATE_VERSION, ws->size, &ws->seg);
    if (rc < 0) {
        log_error(COMP, "shm_adopt(%zu) of state segment %s: %s", ws->size, name, strerror(-rc));
        goto fail;
    }
    bool had_contents = rc == 1, adopted = had_contents;
    ws->base = shm_base(ws->seg);
    if (shm_size(ws->seg) < ws->size) { /* shm_adopt rounds up, never down */
        rc = -EPROTO;
        goto fail;
    }
    ws->size = shm_size(ws->seg);
    if ((rc = build_table(ws, c)) < 0)
        goto fail;
    wstate_hdr *h = (wstate_hdr *)ws->base;
    if (adopted) {
        /* S2: pairs with S1 (the previous worker's init) */
        uint64_t magic = atom_load_acquire(&h->magic);
        if (magic != WSTATE_MAGIC || h->cfg_hash != hash || h->size != ws->size) {
            log_warn(COMP, "state segment %s: %s: the state of the stateful steps starts fresh",
                     name,
                     magic != WSTATE_MAGIC ? "no valid header (incomplete or corrupt)"
                                           : "written for another configuration");
            adopted = false;
        }
    }
    if (!adopted)
        init_fresh(ws, hash, had_contents);
    ws->adopted = adopted;
    /* relaxed: written by a worker that is dead now */
    uint64_t noted = atom_load_relaxed(&h->input_tail);
    bool same_ring = h->input_pid == in->pid && h->input_start == in->start;
    ws->positions_valid = adopted && (same_ring || (noted > 0 && in->tail >= noted));
    if (adopted && !ws->positions_valid)
        log_warn(COMP,
                 "state segment %s: the input ring is not the one the state was built from; "
                 "records read again may be added to windows twice",
                 name);
    h->input_pid = in->pid;
    h->input_start = in->start;
    if (!ws->positions_valid)
        atom_store_relaxed(&h->input_tail, in->tail);
    if (adopted)
        log_info(COMP, "state segment %s adopted: open windows carry on", name);
    *out = ws;
    return 0;
fail:
    wstate_close(ws);
    return rc;
}

void *wstate_region(wstate *ws, int rule, size_t step, size_t *len)
{
    if (rule < 0 || (size_t)rule >= ws->n_rules)
        return NULL;
    size_t k = ws->first[rule] + step;
    size_t n_next = (size_t)rule + 1 < ws->n_rules ? ws->first[rule + 1] : ws->n_steps;
    if (k >= n_next || !ws->off[k])
        return NULL;
    if (len)
        *len = ws->len[k];
    return ws->base + ws->off[k];
}

void wstate_note_released(wstate *ws, uint64_t tail)
{
    wstate_hdr *h = (wstate_hdr *)ws->base;
    /* relaxed: read only by a later worker after this one died; a stale value only makes that
     * worker trust positions less */
    atom_store_relaxed(&h->input_tail, tail);
}

bool wstate_adopted(const wstate *ws)
{
    return ws->adopted;
}

bool wstate_positions_valid(const wstate *ws)
{
    return ws->positions_valid;
}

bool wstate_replay_skip(wstate_replay *r, const wstate_applied *a, uint64_t pos)
{
    if (pos == 0)
        return false;
    if (pos != r->cur_pos) {
        r->cur_pos = pos;
        r->cur_k = 0;
    }
    r->cur_k++;
    if (!r->on)
        return false;
    /* records come in input order: before the mark, or the first adds of the marked record,
     * were applied by the previous worker */
    if (pos < a->pos || (pos == a->pos && r->cur_k <= a->adds))
        return true;
    r->on = false; /* past the mark: everything from here on is new */
    return false;
}

wstate_applied wstate_applied_next(wstate_applied a, uint64_t pos)
{
    if (pos == 0)
        return a;
    wstate_applied n = {.pos = pos, .adds = pos == a.pos ? a.adds + 1 : 1};
    return n;
}

/* Double-buffered records: [gen][pad to 64][copy 0][copy 1], copy (gen & 1) is current. */
static size_t db_stride(size_t len)
{
    return (len + 63u) & ~(size_t)63u;
}

const void *wstate_db_cur(const void *region, size_t len)
{
    /* D2: pairs with D1 of the writer (a previous worker, or this one) */
    uint64_t gen = atom_load_acquire((const uint64_t *)region);
    return (const char *)region + 64 + (gen & 1) * db_stride(len);
}

void *wstate_db_next(void *region, size_t len)
{
    /* relaxed: only this process writes the generation while it runs */
    uint64_t gen = atom_load_relaxed((uint64_t *)region);
    char *cur = (char *)region + 64 + (gen & 1) * db_stride(len);
    char *next = (char *)region + 64 + ((gen + 1) & 1) * db_stride(len);
    memcpy(next, cur, len);
    return next;
}

void wstate_db_publish(void *region)
{
    uint64_t gen = atom_load_relaxed((uint64_t *)region); /* relaxed: our own word */
    /* D1: the next copy is complete before it becomes current; pairs with D2. A SIGKILL
     * before this store leaves the old copy current. */
    atom_store_release((uint64_t *)region, gen + 1);
}
