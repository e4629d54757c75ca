/* route: the router's loop. Reads every ingress ring, matches each message against the rule
 * set (router/rule), and copies it to the input ring of the worker chosen per rule
 * (router/dispatch), one copy per matching rule with rec_hdr.rule set.
 *
 * Delivery: an ingress record is released only after every copy made from it is committed
 * and flushed to its worker ring (batches: up to ROUTE_BATCH records per ingress ring per
 * turn, then flush every worker ring, then release), so a router killed at any point loses
 * nothing; a restarted router re-reads the unreleased records and may duplicate copies it
 * had already flushed (at-least-once).
 *
 * Backpressure: a full worker ring blocks the loop (ring_wait_space), which stops releasing
 * ingress records, which fills the ingress rings, which reaches the brokers through TCP.
 *
 * Stop: when stage_stop_flag is set (the supervisor stops the ingresses first), the loop
 * keeps going until every ingress ring is empty, flushes and returns.
 *
 * Bad input never crashes the router: a record that does not decode, and a damaged region of
 * an ingress ring (a corrupt record header), are counted (errors, dead) and written to the
 * dead-letter store with the decode error, their size and first bytes, and only then
 * released; while the store cannot be written the ring keeps them and is not read on
 * (backpressure; tried again after ROUTE_RETRY_MS, backing off, route.c). A record that is not a
 * message is dead-lettered the same way ($mqttflow/misplaced-record); a copy larger than a worker
 * ring's max_record is counted and skipped. Each record is marked (ring_begin) while it is routed,
 * so a record that kills the router runtime.max_attempts times is skipped on the next start
 * (counted in errors and dead, logged) instead of crashing it forever.
 *
 * One thread; route_create attaches everything, route_run loops, route_destroy detaches.
 */
#ifndef MF_ROUTER_ROUTE_H
#define MF_ROUTER_ROUTE_H

#include <stddef.h>

#include "cfg.h"
#include "stats.h"

#define ROUTE_BATCH   64  /* records taken from one ingress ring per turn */
#define ROUTE_WAIT_MS 200 /* longest park: bounds how late a missed stop flag is seen */

typedef struct route route;

/* Builds the rule set and dispatcher, attaches every ingress ring (consumer) and every worker
 * input ring (producer). c, the stats segment st and the router's slot in it (stage.h) must
 * outlive the route.
 * 0 and *out; -EINVAL when a rule does not compile (a config error); -ENOENT when a ring is
 * missing (supervisor not running); other -errno. Everything attached is detached on
 * failure. */
int route_create(const cfg *c, stats *st, stats_slot *slot, route **out);
/* Runs until stage_stop_flag is set and the ingress rings are drained. 0 on a clean stop;
 * -ETIMEDOUT when, stopping, a worker ring stayed full past ROUTE_STOP_BLOCK_MS (the
 * unreleased ingress records remain for the next run). */
int route_run(route *r);
void route_destroy(route *r); /* flushes worker rings, detaches; accepts NULL */

#endif
