/* dispatch: which worker runs one copy of a message for one rule (DESIGN §5).
 *
 *   sequential  every message of a rule goes to one worker (the k-th sequential rule of the
 *               config to worker k mod workers), so the rule sees its messages in arrival
 *               order and its stateful steps see them all; a restart with the same config
 *               keeps the assignment;
 *   parallel    (threaded) the worker whose input ring holds the fewest bytes, ties broken
 *               round-robin, so every worker is used and a slow one gets less;
 *   per_topic   FNV-1a of the topic mod workers: each topic keeps its order on one worker,
 *               different topics spread.
 *
 * Used by the router's one thread; the parallel round-robin cursor is the only state that
 * changes after dispatch_create.
 */
#ifndef MF_ROUTER_DISPATCH_H
#define MF_ROUTER_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "cfg.h"

typedef struct dispatch dispatch;

/* The load of worker w, in bytes queued for it (the router passes its input ring's fill plus
 * what it has written there since the last flush). Called only for parallel rules. */
typedef size_t (*dispatch_load_fn)(void *ctx, size_t worker);

/* A dispatcher for the rules of c over n_workers (>= 1) workers. c must outlive it.
 * 0 and *out; -EINVAL (n_workers == 0); -ENOMEM. */
int dispatch_create(const cfg *c, size_t n_workers, dispatch **out);
void dispatch_destroy(dispatch *d); /* accepts NULL */
/* The worker for rule (< c->n_rules) and this topic. Never fails. */
size_t dispatch_pick(dispatch *d, size_t rule, const char *topic, size_t topic_len,
                     dispatch_load_fn load, void *ctx);
/* The per_topic hash (exposed for tests and for `mqttflow status` explanations). */
uint64_t dispatch_topic_hash(const char *topic, size_t topic_len);

#endif
