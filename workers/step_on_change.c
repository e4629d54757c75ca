/* step_on_change: per topic, passes a message on only when its `field` (a JSON field path;
 * none = the whole payload) differs from the value last passed on that topic; repeats are
 * dropped silently (they are the point of the step, not a loss). The first message of a topic
 * always passes. JSON values compare as values ({"a":1} equals { "a" : 1 }); a payload without
 * the field compares as "missing".
 *
 * State: an open-addressing table (topic hash -> value hash) in the step's region of the
 * worker's state segment (wstate.h), so a restarted worker still knows the last values and
 * does not let one message per topic through again. 64-bit FNV-1a hashes (hash.h) stand for the
 * topic and the value (a collision, about 2^-64 per pair, would take a change for a repeat). The
 * table is bounded (ON_CHANGE_MAX_TOPICS); when full it is cleared, which only lets one
 * message per topic pass again.
 *
 * Crash consistency and re-reads: an entry records the input position of the message that
 * set it; the position is stored before the value hash (release), so a SIGKILL between the two
 * leaves the old value and the re-read message passes as a change. A message re-read after a
 * crash that finds the value it set itself passes again (its output may not have reached the
 * output ring: at-least-once, like a stateless step); one that was a repeat stays dropped. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "atom.h"
#include "chain_int.h"
#include "hash.h"
#include "log.h"

#define COMP                 "worker"
#define ON_CHANGE_MAX_TOPICS 65536u
#define ON_CHANGE_SLOTS      (2u * ON_CHANGE_MAX_TOPICS) /* load <= 1/2 */

typedef struct oc_slot {
    uint64_t topic; /* hash | 1; 0 = empty. O1: stored last (release) */
    uint64_t value; /* hash of the value. O2: stored after pos (release) */
    uint64_t pos;   /* input position + 1 of the message that set value */
} oc_slot;

typedef struct oc_table {
    uint64_t n;        /* entries in use (approximate after a crash mid-clear: harmless) */
    uint64_t last_pos; /* highest input position applied, for replays */
    uint64_t pad[6];
    oc_slot slots[ON_CHANGE_SLOTS];
} oc_table;

static size_t step_on_change_state_size(const cfg_step *c)
{
    (void)c;
    return sizeof(oc_table);
}

static int step_on_change_init(chain_step *s)
{
    if (!s->region || s->region_len < sizeof(oc_table))
        return -EINVAL; /* our bug: the plan gave it no region */
    oc_table *t = s->region;
    if (t->n > ON_CHANGE_MAX_TOPICS) {
        log_error(COMP, "%s: state left by the previous worker is corrupt: table emptied",
                  s->label);
        memset(t, 0, sizeof(*t));
    }
    s->replay.on = chain_replay(s->cr) && t->last_pos != 0;
    s->state = t;
    return 0;
}

static void step_on_change_fini(chain_step *s)
{
    s->state = NULL; /* the region stays for the next worker */
}

/* The slot of topic, or the empty slot where it goes; NULL when the table has neither (only a
 * corrupt table is full: n keeps the load at 1/2). */
static oc_slot *find(oc_table *t, uint64_t topic)
{
    size_t i = (size_t)(topic >> 1) & (ON_CHANGE_SLOTS - 1);
    for (size_t probes = 0; probes < ON_CHANGE_SLOTS; probes++) {
        /* relaxed: this process is the only writer while it runs */
        uint64_t at = atom_load_relaxed(&t->slots[i].topic);
        if (!at || at == topic)
            return &t->slots[i];
        i = (i + 1) & (ON_CHANGE_SLOTS - 1);
    }
    return NULL;
}

/* The hash m is compared by: of the compact JSON of the field, the raw payload, or "" (the
 * field is missing). -ENOMEM when the JSON cannot be built. */
static int value_of(const chain_step *s, const mf_msg *m, uint64_t *h)
{
    bool found;
    int rc = chain_field_hash(m, s->cfg->field, h, &found);
    if (rc == 0 && !found)
        *h = hash_fnv1a("", 0);
    return rc;
}

static int step_on_change_process(chain_step *s, const ctx_origin *o, const mf_msg *m)
{
    oc_table *t = s->state;
    uint64_t v;
    if (value_of(s, m, &v) < 0) {
        /* without memory for the value, passing the message on is the lesser harm */
        log_warn(COMP, "%s: out of memory, message passed unchecked", s->label);
        return chain_feed(s->cr, s->index + 1, o, m);
    }
    uint64_t topic = hash_fnv1a(m->topic, strlen(m->topic)) | 1;
    bool replaying = chain_step_replaying(s, o, &t->last_pos);

    oc_slot *e = find(t, topic);
    if (!e) {
        log_error(COMP, "%s: table corrupt (no free slot): emptied", s->label);
        memset(t->slots, 0, sizeof(t->slots));
        t->n = 0;
        e = find(t, topic);
    }
    if (e->topic) {
        if (e->value == v) {
            if (replaying && e->pos == o->pos)
                return chain_feed(s->cr, s->index + 1, o, m); /* it set the value itself */
            return 0;                                         /* a repeat */
        }
        atom_store_relaxed(&e->pos, o->pos); /* relaxed: ordered by O2 below */
        /* O2: the position before the value; a crash between leaves the old value. Pairs with
         * the next worker's plain reads after shm_adopt (the process's death orders them; the
         * release keeps the compiler from sinking the position store past it) */
        atom_store_release(&e->value, v);
        return chain_feed(s->cr, s->index + 1, o, m);
    }
    if (t->n + 1 > ON_CHANGE_MAX_TOPICS) {
        memset(t->slots, 0, sizeof(t->slots));
        t->n = 0;
        e = find(t, topic);
    }
    e->value = v;
    e->pos = o->pos;
    /* O1: a slot is in use once its topic is; value and pos are complete before. Pairs with
     * the next worker's reads after shm_adopt, as O2 */
    atom_store_release(&e->topic, topic);
    t->n++;
    return chain_feed(s->cr, s->index + 1, o, m);
}

const step_ops step_on_change_ops = {
    .state_size = step_on_change_state_size,
    .init = step_on_change_init,
    .process = step_on_change_process,
    .fini = step_on_change_fini,
};
