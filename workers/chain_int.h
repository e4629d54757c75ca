/* chain_int: what chain.c and the step_*.c files share (STYLE 4); nothing else includes it.
 *
 * A chain_rule is one rule's chain: its steps in order, each with the state its kind needs.
 * Every step kind implements process (take one message from the previous step) and may have
 * init/fini; process hands its output to chain_feed(cr, index + 1, ...). chain_feed at
 * index == n publishes on the source client.
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

typedef struct chain_step {
    chain_rule *cr;
    size_t index;
    const cfg_step *cfg;
    mf_callback cb; /* sampler, custom_processor */
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
/* Follows "a.b[2].c" (len bytes) from v; a borrowed reference or NULL. */
json_t *chain_json_path(json_t *v, const char *path, size_t len);
/* Counts one message dropped on purpose by a step (throttle, full window). */
void chain_count_drop(chain_rule *cr);
/* Counts and logs a message lost to an error in a step. */
void chain_count_error(chain_rule *cr);

/* Whether stored input positions of this worker's state refer to the current input ring. */
bool chain_replay(const chain_rule *cr);
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

/* step kinds */
/* region sizes (wstate.h), 0 for a stateless kind */
size_t step_aggregate_state_size(void);
size_t step_throttle_state_size(void);
size_t step_on_change_state_size(void);
int step_sampler_init(chain_step *s);
int step_sampler_process(chain_step *s, const ctx_origin *o, const mf_msg *m);
/* Runs the window's callback if it holds messages, then empties it. */
void step_sampler_close(chain_step *s);
void step_sampler_fini(chain_step *s); /* destroys s->win: sampler and batch */

int step_custom_processor_process(chain_step *s, const ctx_origin *o, const mf_msg *m);
int step_relay_process(chain_step *s, const ctx_origin *o, const mf_msg *m);
int step_format_process(chain_step *s, const ctx_origin *o, const mf_msg *m);
void step_format_fini(chain_step *s);
/* batch: a window closed by count or interval, emitted as one JSON array */
int step_batch_init(chain_step *s);
int step_batch_process(chain_step *s, const ctx_origin *o, const mf_msg *m);
void step_batch_close(chain_step *s);
/* throttle: at most `rate` messages per second (bursts of up to max(1, rate)), or one per
 * `interval`; the rest are dropped and counted */
int step_throttle_init(chain_step *s);
int step_throttle_process(chain_step *s, const ctx_origin *o, const mf_msg *m);
/* on_change: per topic, passes a message only when its field (or payload) changed */
int step_on_change_init(chain_step *s);
int step_on_change_process(chain_step *s, const ctx_origin *o, const mf_msg *m);
/* aggregate: count/min/max/avg/sum of a numeric field over an interval */
int step_aggregate_init(chain_step *s);
int step_aggregate_process(chain_step *s, const ctx_origin *o, const mf_msg *m);
uint64_t step_aggregate_deadline(const chain_step *s);
void step_aggregate_close(chain_step *s);
/* each fini accepts a step of any kind and frees only what its own kind holds */
void step_throttle_fini(chain_step *s);
void step_on_change_fini(chain_step *s);
void step_aggregate_fini(chain_step *s);
int step_filter_init(chain_step *s);
int step_filter_process(chain_step *s, const ctx_origin *o, const mf_msg *m);
void step_filter_fini(chain_step *s);

#endif
