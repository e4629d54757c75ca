/* inflight: the relay's in-flight window over one input ring (DESIGN §2, §5).
 *
 * The relay reads records from a worker's output ring ahead of their acknowledgement: each
 * record read is appended to the window with the ring position just after it, then
 * published; publishes complete in any order (several connections, QoS 0 and 1 mixed), but
 * the ring may only be released up to the first record that is not finished. The window is a
 * FIFO of entries, each PENDING (to publish, or to publish again), SENT (handed to paho) or
 * DONE; inflight_release pops the DONE prefix and says how far the ring may be released.
 *
 * Entries are numbered by a 64-bit sequence (first read = 0) that never wraps in practice;
 * completions name their entry by it. A send cursor remembers the first entry that may still
 * be PENDING so that walking the window for work is amortised O(1) per record; inflight_retry
 * moves it back.
 *
 * Used by the relay's main loop only (single thread); pure memory, no syscalls. The record
 * views (topic, payload) point into the ring and stay valid while the entry is in the window,
 * because the ring is released only past popped entries. An entry may instead own a copy
 * (entry.owned: a dead letter turned into a publish, a record read back from a spool), which
 * the window frees when it pops the entry.
 */
#ifndef MF_RELAY_INFLIGHT_H
#define MF_RELAY_INFLIGHT_H

#include <stddef.h>
#include <stdint.h>

enum inflight_state { INFLIGHT_PENDING = 0, INFLIGHT_SENT = 1, INFLIGHT_DONE = 2 };

/* What an entry stands for (how the pump dispatches it). */
enum inflight_kind { INFLIGHT_PUBLISH = 0, INFLIGHT_DEAD = 1 };

typedef struct inflight_entry {
    uint64_t end_pos;    /* ring position just after the record */
    const char *topic;   /* NUL-terminated, in the ring (or in owned) */
    const void *payload; /* payload_len bytes, in the ring (or in owned) */
    const void *rec;     /* the whole record (rec.h), rec_len bytes: what a spool stores */
    void *owned;         /* malloc'd buffer the views point into, or NULL; freed on release */
    uint32_t payload_len;
    uint32_t rec_len;
    uint16_t conn; /* target connection */
    uint8_t qos, retain;
    uint8_t state; /* enum inflight_state */
    uint8_t kind;  /* enum inflight_kind */
} inflight_entry;

typedef struct inflight inflight;

/* A window of up to capacity entries (a power of two >= 2). 0, -EINVAL or -ENOMEM. */
int inflight_create(size_t capacity, inflight **out);
void inflight_destroy(inflight *w); /* frees the owned buffers left; accepts NULL */

size_t inflight_count(const inflight *w); /* entries not yet released */
int inflight_is_full(const inflight *w);
int inflight_is_empty(const inflight *w);

/* Appends a copy of e (the caller fills every field; state PENDING or DONE) and returns its
 * sequence number. The window must not be full (our bug: abort). */
uint64_t inflight_push(inflight *w, const inflight_entry *e);
/* The entry with sequence seq, or NULL when it is not in the window (released or not yet
 * pushed). Valid until the next push or release. */
inflight_entry *inflight_at(inflight *w, uint64_t seq);

/* The first PENDING entry at or after the send cursor, and its sequence in *seq; NULL when
 * there is none. The cursor moves past the SENT/DONE entries it skips. */
inflight_entry *inflight_next_pending(inflight *w, uint64_t *seq);
/* State changes of entry seq (it must be in the window). sent: PENDING -> SENT; done: ->
 * DONE; retry: -> PENDING and the send cursor moves back to it, so it goes out again before
 * anything after it. */
void inflight_sent(inflight *w, uint64_t seq);
void inflight_done(inflight *w, uint64_t seq);
void inflight_retry(inflight *w, uint64_t seq);

/* Pops the DONE entries at the front (freeing their owned buffers). Returns how many; when
 * any, *pos is the ring position up to which the ring may be released (the end of the last
 * popped record). */
size_t inflight_release(inflight *w, uint64_t *pos);

#endif
