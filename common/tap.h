/* tap: copies of the messages passing one point of a running instance (`mqttflow tap`).
 *
 * Points: TAP_INGRESS (every message the router takes from the ingress rings), TAP_RULE
 * (every message the router hands to a rule, with that rule) and TAP_OUT (every publish the
 * relay takes from the workers, with its target client and the rule that produced it). Both
 * producing stages are single processes, so each point has one producer and one reader:
 * an SPSC byte ring in its own segment (names_tap), created by the supervisor on a reader's
 * request and removed when the reader's control connection closes (its exit, even kill -9).
 *
 * The pipeline never waits for a tap: tap_put copies what fits (the payload cut at
 * TAP_MAX_PAYLOAD) and, when the ring is full, counts a drop the reader reports. A stage
 * learns of a tap from a generation number per point in the stats segment
 * (stats_tap_gen), read once per batch by tap_port_sync: with no tap attached that load and
 * a NULL test per message are the whole cost, and a stage drops its mapping at the first
 * batch after the reader is gone.
 *
 * Threads: a tap's producer side is used by one thread of the stage, its consumer side by
 * the reader; tap_create/tap_destroy by the supervisor.
 */
#ifndef MF_TAP_H
#define MF_TAP_H

#include <stddef.h>
#include <stdint.h>

#include "rec.h"
#include "stats.h"

enum tap_point { TAP_INGRESS = 0, TAP_RULE, TAP_OUT, TAP_N };

#define TAP_RULE_ANY    0xffffffffu
#define TAP_RING_BYTES  (1u << 20) /* per tap: a few thousand small messages of slack */
#define TAP_MAX_PAYLOAD 1024u /* bytes of a payload copied; the reader shows the rest's length */

typedef struct tap tap;

/* "ingress", "rule", "out" -> the point, -1 when none. */
int tap_point_parse(const char *name);
const char *tap_point_name(int point);

/* Supervisor: creates the tap segment name (shm_create: a dead owner's is replaced) for point,
 * passing only messages of rule (TAP_RULE_ANY: all). 0 or -errno; nothing left on failure. */
int tap_create(const char *name, int point, uint32_t rule, tap **out);
/* Supervisor: unlinks the segment and unmaps it. Accepts NULL. */
void tap_destroy(tap *t);
/* Stage or reader: maps an existing tap. 0, -ENOENT, -EPROTO. */
int tap_attach(const char *name, tap **out);
void tap_detach(tap *t); /* accepts NULL */

/* Producer: copies message v (its rule, client, qos as in its header) when it passes the
 * filter and fits; else counts a drop. Never blocks, never fails. */
void tap_put(tap *t, const rec_view *v);

/* Reader: one message, a view into the ring valid until tap_next. */
typedef struct tap_msg {
    uint64_t at_ns;       /* CLOCK_REALTIME when the stage passed it */
    uint32_t payload_len; /* the message's whole length (v.h.payload_len: the bytes copied) */
    rec_view v;
} tap_msg;
/* 1 and *m, 0 when the ring is empty, -EBADMSG when the ring holds garbage (a tap the
 * reader cannot trust: it should stop). */
int tap_take(tap *t, tap_msg *m);
/* Releases what tap_take returned. */
void tap_next(tap *t);
/* Messages the producer could not copy because the ring was full. */
uint64_t tap_dropped(const tap *t);
/* Messages copied so far. */
uint64_t tap_written(const tap *t);

/* A stage's end of one point: which generation it follows and its mapping. */
typedef struct tap_port {
    uint64_t gen;
    tap *t;
} tap_port;

/* Once per batch: follows the supervisor's generation of point (attach on a new tap, detach
 * when gone). st may be NULL (no stats segment: no taps). One acquire load when nothing
 * changed. */
void tap_port_sync(tap_port *p, stats *st, int point, const char *instance);
/* Per message: a copy when a tap is attached. */
static inline void tap_port_put(tap_port *p, const rec_view *v)
{
    if (p->t)
        tap_put(p->t, v);
}
/* Drops the mapping (stage exit). */
void tap_port_fini(tap_port *p);

#endif
