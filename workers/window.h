/* window: the message store of one sampler or batch step (one per rule and chain step), a
 * tumbling window of `duration` seconds, kept in the step's region of the worker's state
 * segment (wstate.h) so that it survives the worker (DESIGN §5).
 *
 * A window opens with the first message added after it was last closed and closes duration
 * later (so an idle rule costs no wake-ups); the worker's loop waits at most until the
 * earliest deadline, so a window closes on time even when no further message arrives. The
 * deadline is CLOCK_MONOTONIC, system-wide: a worker that adopts the segment after a crash or
 * a live restart closes the window at its original deadline. It keeps copies of at most
 * max_messages messages in a data area of window_data_cap(max_messages) bytes; beyond either,
 * messages are counted as dropped.
 *
 * Region layout: a geometry block, a double-buffered commit record (count, bytes used,
 * deadline, close attempts, the applied input position), an entry table of max_messages
 * entries (offset, lengths, client, qos/retain, seq, received time) and the data area (topic
 * NUL payload NUL client_id NUL per message). An add writes the entry and bytes past the
 * published count, then publishes the new commit record with one release store; a SIGKILL at
 * any instruction leaves the window with or without that message, never half of it. At attach
 * every count, offset and length is bounds-checked; a corrupt window is logged and emptied.
 *
 * Exactly once across a crash: the commit record holds the input position of the last record
 * added (wstate_applied); the next worker re-reads the records not yet released and skips
 * those adds (window_add returns 1). Messages added by a window's close (a window feeding a
 * later window) carry no position: a crash during that close adds them again when the close
 * is retried (at-least-once there).
 *
 * Closing: window_begin_close counts a close attempt in the segment before the callback runs;
 * the caller emits, flushes the output ring, then window_reset empties the window. A worker
 * that dies inside the close finds the window still full after its restart and retries the
 * close; a window whose close was begun more than runtime.max_attempts times is given up by
 * the caller (logged, its messages counted as dropped).
 *
 * On a stop (SIGTERM) windows stay open in the segment: the next worker of a live restart
 * closes them on time. When the whole instance stops (the router stopped first) the worker
 * closes them early instead, since the supervisor removes the segment of a clean stop (run.h).
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

/* Bytes of a window region for max_messages, and the data area it holds. */
size_t window_region_size(uint32_t max_messages);
size_t window_data_cap(uint32_t max_messages);

/* Attaches a window to region (len bytes, window_region_size(max_messages); zeroed = empty),
 * validating and keeping what a previous worker left there. replay: the stored input position
 * refers to the current input ring (wstate_positions_valid). label names it in logs.
 * max_messages > 0; duration_ns 0 means no time limit (a batch closed by count only).
 * 0 and *out, or -EINVAL (region too small), -ENOMEM. */
int window_create(void *region, size_t len, uint64_t duration_ns, uint32_t max_messages,
                  bool replay, const char *label, window **out);
void window_destroy(window *w); /* accepts NULL; the region keeps the window */

/* Adds a copy of m (topic, payload, client_id) from origin o (o->pos: input position, 0 for
 * none), opening the window at now_ns if it was closed. 0; 1 when a previous worker already
 * added it (a record re-read after a crash: nothing done); -ENOSPC when the window is full
 * (counted as a drop). */
int window_add(window *w, const mf_msg *m, const ctx_origin *o, uint64_t now_ns);
/* Monotonic ns at which the open window closes, or WINDOW_CLOSED when nothing is held or the
 * window has no time limit. */
uint64_t window_deadline(const window *w);
/* Messages held. */
size_t window_count(const window *w);
/* Counts an attempt to close the window (in the segment) and returns the attempts begun on
 * its current contents, this one included. */
unsigned window_begin_close(window *w);
/* The held messages (*msgs valid until window_reset), their count as the return value, and
 * in *o the origin the window's output inherits: the source client, sequence number and
 * received time of the last message, the highest QoS, retain 0 (a window's summary is not a
 * retained state of the broker's), no input position. 0 and nothing when out of memory. */
size_t window_msgs(window *w, const mf_msg **msgs, ctx_origin *o);
/* Empties the window (closed until the next add); keeps the applied input position. */
void window_reset(window *w);
/* Messages refused because the window was full, since the region was made. */
uint64_t window_drops(const window *w);

#endif
