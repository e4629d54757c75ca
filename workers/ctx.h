/* ctx: struct mf_ctx and the worker's side of the callback API (mf_emit, mf_publish, mf_log,
 * mf_param of common/mqttflow.h), used only inside a worker process.
 *
 * One mf_ctx lives on the stack of each callback invocation: it says which rule, step and
 * callback is running, which message is being processed (its QoS, retain flag, source client
 * and sequence number are inherited by what the callback emits), and where mf_emit goes (the
 * next step of the chain, or a publish on the source client at the end of a chain or from a
 * simple callback rule). Every output leaves the worker through ctx_env.append, which appends
 * one REC_PUBLISH record to the output; the run loop points it at the output ring, tests at a
 * recorder.
 *
 * Why struct mf_ctx is defined in this header rather than kept opaque (STYLE 5): it is opaque
 * to callbacks (mqttflow.h only declares it), but the worker's own modules allocate one per
 * invocation on the stack, which is the cheapest possible context and needs the definition.
 *
 * The mf_* functions are exported from the worker executable (-rdynamic) so that modules
 * loaded with dlopen resolve them. One thread: a worker runs one callback at a time.
 */
#ifndef MF_WORKERS_CTX_H
#define MF_WORKERS_CTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "mqttflow.h"
#include "rec.h"
#include "stats.h"

/* Messages one callback invocation may emit or publish; beyond, mf_emit returns -ENOSPC. It
 * bounds what a runaway callback can push into the output ring per input record. */
#define CTX_MAX_EMITS 10000u

/* Appends one record to the worker's output (h is complete except topic_len/payload_len): a
 * REC_PUBLISH from ctx_write, a REC_DEAD from deadrec.h. 0, or -EMSGSIZE when the record
 * cannot fit the output, or another -errno. */
typedef int (*ctx_append_fn)(void *arg, const rec_hdr *h, const char *topic, const void *payload,
                             size_t len);

/* What every context of one worker shares; owned by the caller, outlives every ctx. */
/* The callback running now, for the watchdog's log line (workers/watchdog.h). Written by
 * ctx_call on the worker thread, read by the watchdog thread. */
typedef struct ctx_busy {
    int rule;             /* -1 when idle */
    const char *callback; /* cfg-owned name, lives as long as the process */
} ctx_busy;

struct wstate;

typedef struct ctx_env {
    const cfg *c;
    ctx_append_fn append;
    void *append_arg;
    /* makes what append wrote visible downstream (the output ring's flush), or NULL: a window
     * flushes its output before it forgets its messages (window.h) */
    void (*flush)(void *append_arg);
    /* where stateful steps keep their state (wstate.h); NULL: the chain set makes a private
     * one */
    struct wstate *state;
    stats_slot *slot; /* this worker's counters (busy_since_ns included), or NULL */
    /* busy_since_ns is never set below this: a fine-clock time taken after this process
     * started (ctx_call reads the coarse clock, the supervisor compares with its spawn time) */
    uint64_t busy_floor_ns;
    ctx_busy *busy; /* or NULL */
    /* Sees every message a chain step hands on (step = the step that emitted it), before the
     * next step gets it: `mqttflow try` prints them (supervisor/try.h). NULL in a worker. */
    void (*trace)(void *trace_arg, int rule, int step, const mf_msg *m);
    void *trace_arg;
} ctx_env;

/* The message being processed: what outputs inherit (DESIGN §4). */
typedef struct ctx_origin {
    int client;           /* source client index */
    int qos, retain;      /* of the message being processed */
    uint64_t seq;         /* ingress sequence number, copied into outputs for tracing */
    uint64_t received_ns; /* wall clock at ingress */
    uint64_t pos;         /* input ring position + 1 of the record it came from (replays after
                           * a crash, wstate.h), 0 when not from an input record */
} ctx_origin;

/* Where mf_emit goes. Returns what mf_emit returns (0, -EINVAL, -ENOSPC, ...). */
typedef int (*ctx_next_fn)(mf_ctx *ctx, const char *topic, const void *payload, size_t len);

struct mf_ctx {
    const ctx_env *env;
    int rule;             /* rule index, -1 in mf_init / mf_fini */
    int step;             /* chain step index, -1 for a simple callback rule */
    const char *callback; /* callback name (logs) */
    const char *module;   /* module path (logs of mf_init / mf_fini) */
    const cfg_param *params;
    size_t n_params;
    ctx_next_fn next; /* NULL: no message is being processed, mf_emit/mf_publish refuse */
    void *next_arg;
    ctx_origin origin;
    uint32_t emitted; /* outputs of this invocation, against CTX_MAX_EMITS */
};

/* A context for mf_init / mf_fini of a module: mf_log and mf_param (always NULL) work,
 * mf_emit and mf_publish return -EINVAL since there is no message to inherit from. */
void ctx_init_module(mf_ctx *x, const ctx_env *env, const char *module);

/* A context for one invocation of a callback on behalf of rule (and chain step, -1 for none).
 * next/next_arg receive mf_emit. Cannot fail. */
void ctx_init_call(mf_ctx *x, const ctx_env *env, int rule, int step, const char *callback,
                   const cfg_param *params, size_t n_params, ctx_next_fn next, void *next_arg,
                   const ctx_origin *origin);

/* Validates and writes one REC_PUBLISH on client (index) for rule/step with origin o, and
 * counts it in stats `out`. Used by mf_publish, mf_emit at the end of a chain and the relay
 * step. 0; -EINVAL (bad client, topic, qos or retain; payload above runtime.max_payload; a
 * record too large for the output ring); another -errno from env->append. The topic is not
 * checked again when it is the one an mf_emit under way has checked (ctx.c, emit_checked). */
int ctx_write(const ctx_env *env, int rule, int step, const ctx_origin *o, int client,
              const char *topic, const void *payload, size_t len, int qos, int retain);

/* Runs cb(x, msgs, n), marking the worker busy in stats for the supervisor's callback
 * timeout (busy_since_ns: the coarse clock, up to one jiffy early, never below
 * env->busy_floor_ns). A non-zero return is logged with rule and callback name and counted in stats
 * `errors`; it is returned. */
int ctx_call(mf_ctx *x, mf_callback cb, const mf_msg *msgs, size_t n);

/* mf_emit's default target at the end of a chain or from a simple callback rule: publish on
 * the origin's source client, topic as given, the origin's QoS and retain flag. */
int ctx_next_publish_source(mf_ctx *x, const char *topic, const void *payload, size_t len);

/* The name of rule i for logs ("?" when out of range). */
const char *ctx_rule_name(const ctx_env *env, int rule);

#endif
