/* chain: runs the rules of one worker process: a simple callback rule calls its function on
 * the message; a chain rule feeds the message through its processing chain step by step
 * (DESIGN §3, §4). Steps live in step_<kind>.c, each kind's step_ops found through the table
 * of kinds (config/cfg_steps.h, chain_int.h); their state (sampler windows, format buffers,
 * compiled filter conditions) is kept per rule and step, so two rules sharing a chain never
 * mix their windows.
 *
 * Message flow inside a chain: each step hands what it produces to the next step at once (a
 * callback's mf_emit recurses into the next step before it returns), so a message is fully
 * processed, outputs written through ctx_env.append, when chain_run returns. The end of a
 * chain publishes on the source client (topic as given, origin's QoS/retain); a relay step
 * publishes on its target and ends the message's way.
 *
 * State: stateful steps keep their state in env->state (wstate.h, the worker's state segment)
 * when given, else in a private wstate the set owns; so a set built over an adopted segment
 * carries on with the windows, sums and tables a previous worker left.
 *
 * Time: sampler windows close on time, not on the next message: the caller waits at most
 * until chain_next_deadline and then calls chain_tick. One thread.
 */
#ifndef MF_WORKERS_CHAIN_H
#define MF_WORKERS_CHAIN_H

#include <limits.h>
#include <stdint.h>

#include "ctx.h"
#include "loader.h"

typedef struct chain_set chain_set;

/* Bytes of state-segment region a step of this kind and configuration needs (wstate.h);
 * 0 for a stateless step. Pure. */
size_t chain_state_size(const cfg_step *s);

/* Builds the state of every rule of env->c with functions from ld (both outlive the set).
 * 0 and *out; -ENOMEM; -EINVAL (a step that cannot be built, e.g. a bad filter condition, or
 * a step kind this worker does not implement: logged, a configuration problem). */
int chain_set_create(const ctx_env *env, const loader *ld, chain_set **out);
/* Frees everything without closing windows (call chain_close_all first to flush them). */
void chain_set_destroy(chain_set *cs);

/* What chain_run returns when a step, not a callback, failed: a format step made a topic no
 * broker accepts (the worker dead-letters the message whatever on_error says), or a step
 * failed otherwise (dead-lettered under on_error: dead_letter). Callbacks return small codes;
 * one that returns exactly these values is taken for the step's failure. */
#define CHAIN_ERR_INVALID_TOPIC INT_MIN
#define CHAIN_ERR_STEP          (INT_MIN + 1)

/* Runs rule on m (from origin o). Returns 0, -EINVAL when rule is out of range, the first
 * non-zero value a callback returned (already logged and counted), or a CHAIN_ERR_* above.
 * Outputs that could not be written (too large, bad topic) are logged and counted as
 * errors. */
int chain_run(chain_set *cs, int rule, const ctx_origin *o, const mf_msg *m);

/* Monotonic ns of the earliest open sampler window's close, or UINT64_MAX. */
uint64_t chain_next_deadline(const chain_set *cs);
/* Closes every window whose deadline is <= now_ns: runs its callback with its messages. */
void chain_tick(chain_set *cs, uint64_t now_ns);
/* Closes every open window now (runs their callbacks with what they hold): tests, and a stop
 * that must not leave windows behind. A worker's SIGTERM does not: windows stay in the state
 * segment for the next worker (window.h). */
void chain_close_all(chain_set *cs);

#endif
