/* window: the message store of one sampler step (one per rule and chain step), a tumbling
 * window of `duration` seconds.
 *
 * A window opens with the first message added after it was last closed and closes duration
 * later (so an idle rule costs no wake-ups); the worker's loop waits at most until the
 * earliest deadline, so a window closes on time even when no further message arrives. It
 * keeps copies of at most max_messages messages; beyond, messages are counted as dropped.
 *
 * Why an interface of its own: the state lives in process memory today and is lost with the
 * worker; it is meant to move into the worker's shared-memory state segment (names.h
 * names_worker_state) so that a restarted worker closes its open windows as if nothing
 * happened (DESIGN §5). Only this file pair changes then.
 *
 * One thread. The views returned by window_msgs are valid until window_reset/destroy.
 */
#ifndef MF_WORKERS_WINDOW_H
#define MF_WORKERS_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctx.h"
#include "mqttflow.h"

#define WINDOW_CLOSED UINT64_MAX /* window_deadline of a window holding nothing */

typedef struct window window;

/* max_messages > 0; duration_ns 0 means no time limit (a batch closed by count only).
 * 0 and *out, or -EINVAL, -ENOMEM. */
int window_create(uint64_t duration_ns, uint32_t max_messages, window **out);
void window_destroy(window *w); /* accepts NULL */

/* Adds a copy of m (topic, payload, client_id) from origin o, opening the window at now_ns
 * if it was closed. 0; -ENOSPC when the window holds max_messages (counted as a drop);
 * -ENOMEM (nothing added). */
int window_add(window *w, const mf_msg *m, const ctx_origin *o, uint64_t now_ns);
/* Monotonic ns at which the open window closes, or WINDOW_CLOSED when nothing is held or the
 * window has no time limit. */
uint64_t window_deadline(const window *w);
/* Messages held. */
size_t window_count(const window *w);
/* The held messages (*msgs valid until window_reset), their count as the return value, and
 * in *o the origin the window's output inherits: the source client, sequence number and
 * received time of the last message, the highest QoS, retain 0 (a window's summary is not a
 * retained state of the broker's). */
size_t window_msgs(window *w, const mf_msg **msgs, ctx_origin *o);
/* Empties the window (closed until the next add). */
void window_reset(window *w);
/* Messages refused because the window was full, since creation. */
uint64_t window_drops(const window *w);

#endif
