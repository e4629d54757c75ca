/* chain_int: what chain.c and the step_*.c files share (STYLE 4); nothing else includes it.
 *
 * A chain_rule is one rule's chain: its steps in order, each with the state its kind needs.
 * Every step kind implements step_ops (below): process takes one message from the previous
 * step and hands its output to chain_feed(cr, index + 1, ...). chain_feed at index == n
 * publishes on the source client.
 */
#ifndef MF_WORKERS_CHAIN_INT_H
#define MF_WORKERS_CHAIN_INT_H

#include <stddef.h>

#include "chain.h"
#include <jansson.h>

#include "expr.h"
#include "window.h"
#include "wstate.h"

typedef struct chain_rule chain_rule;

/* A growable scratch buffer (format step); reused from one message to the next. */
typedef struct chain_buf {
    char *p;
    size_t len, cap;
} chain_buf;

typedef struct step_ops step_ops;

typedef struct chain_step {
    chain_rule *cr;
    size_t index;
    const cfg_step *cfg;
    const step_ops *ops; /* its kind's (NULL only in a set being torn down after a failure) */
    mf_callback cb;      /* sampler, custom_processor */
    const char *cb_name;
    window *win;  /* sampler, batch */
    void *state;  /* throttle, on_change, aggregate: the kind's own state */
    void *region; /* the step's region of the state segment (wstate.h), or NULL */
    size_t region_len;
    wstate_replay replay;     /* aggregate, on_change: re-reads after a crash */
    char label[96];           /* "rule R, step I (kind)" for logs */
    expr *cond;               /* filter */
    chain_buf topic, payload; /* format */
} chain_step;

struct chain_rule {
    chain_set *cs;
    const ctx_env *env;
    int rule;
    const cfg_rule *r;
    chain_step *steps;
    size_t n;
};

/* Hands m (from origin o) to step i; i == cr->n publishes on the source client. 0, or the
 * -errno of an output that could not be written (already logged and counted). */
int chain_feed(chain_rule *cr, size_t i, const ctx_origin *o, const mf_msg *m);
/* The mf_emit target of a callback run by a step (next_arg = the chain_step). */
int chain_emit_next(mf_ctx *x, const char *topic, const void *payload, size_t len);
/* Records a callback's non-zero return as the result of the chain_run in progress. */
void chain_note_error(chain_rule *cr, int rc);
/* The name of client i ("" when out of range), for mf_msg.client_id. */
const char *chain_client_name(const chain_rule *cr, int client);

/* The value at field of m's JSON payload ("a.b[2]"; a leading "payload." is allowed; NULL =
 * the whole payload), as a new reference, or NULL when the payload is not JSON or the field
 * is missing. */
json_t *chain_json_field(const mf_msg *m, const char *field);
/* The hash a step compares m by: of the raw payload (field NULL), else of the compact JSON
 * (keys sorted) of the field. *found false (and *h 0) when the field is missing or the payload
 * is not JSON. 0, or -ENOMEM when the JSON text cannot be built. */
int chain_field_hash(const mf_msg *m, const char *field, uint64_t *h, bool *found);
/* Follows "a.b[2].c" (len bytes) from v; a borrowed reference or NULL. */
json_t *chain_json_path(json_t *v, const char *path, size_t len);
/* Counts one message dropped on purpose by a step (throttle, full window). */
void chain_count_drop(chain_rule *cr);
/* Counts and logs a message lost to an error in a step. */
void chain_count_error(chain_rule *cr);

/* Whether stored input positions of this worker's state refer to the current input ring. */
bool chain_replay(const chain_rule *cr);
/* For a step that keeps the highest input position it applied (*last_pos, in its state):
 * whether o re-reads a position it already applied after a worker restart. The first new
 * position ends the replay; *last_pos advances to o's. */
bool chain_step_replaying(chain_step *s, const ctx_origin *o, uint64_t *last_pos);
/* Makes the outputs written so far visible downstream (before state forgets what made them). */
void chain_flush(chain_rule *cr);
/* Counts a close attempt of a step's held state (attempts = what the step counted, this one
 * included): false, after a log line, when it passed runtime.max_attempts and the held state
 * must be given up (n_held messages counted as dropped). */
bool chain_close_allowed(chain_step *s, unsigned attempts, size_t n_held);
/* Begins the close of a window step: counts the attempt; false when the window was given up
 * (it is emptied). */
bool chain_window_close_begin(chain_step *s);

/* chain_buf helpers: 0 or -ENOMEM. */
int chain_buf_put(chain_buf *b, const void *data, size_t len);
int chain_buf_nul(chain_buf *b); /* NUL-terminates without counting it in len */
void chain_buf_fini(chain_buf *b);

/* What a step kind does (STYLE 22): one `const step_ops step_<name>_ops` per row of the table
 * of kinds (cfg_steps.h), defined in workers/step_<name>.c; chain.c drives every step through
 * it and knows no kind by name. Only process is required. */
typedef struct step_ops {
    /* Bytes of state-segment region a step of this configuration needs (wstate.h); NULL:
     * stateless. Pure: wstate plans the segment with it before any step is built. */
    size_t (*state_size)(const cfg_step *c);
    /* Builds the step's own state (s->region is its region, when it has one). 0, or -errno
     * after a log line (a configuration problem found only here, or our bug). fini runs after
     * a failed init too. */
    int (*init)(chain_step *s);
    /* Takes one message from the previous step; what it passes on goes to
     * chain_feed(s->cr, s->index + 1, ...). 0, or the -errno of an output already logged and
     * counted. */
    int (*process)(chain_step *s, const ctx_origin *o, const mf_msg *m);
    /* Monotonic ns at which the held state must be emitted (close), UINT64_MAX for never, 0
     * for at the next tick; NULL: UINT64_MAX. */
    uint64_t (*deadline)(const chain_step *s);
    /* Whether the step holds messages a stop must flush (close); NULL: false. */
    bool (*holds)(const chain_step *s);
    /* Emits what the step holds and forgets it. */
    void (*close)(chain_step *s);
    /* Frees what init built (the region stays for the next worker). Accepts a step whose init
     * failed or never ran. */
    void (*fini)(chain_step *s);
} step_ops;

#define STEP_OPS_DECL(ID, name, ...) extern const step_ops step_##name##_ops;
CFG_STEP_KINDS(STEP_OPS_DECL)
#undef STEP_OPS_DECL

#endif
