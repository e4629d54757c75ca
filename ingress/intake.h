/* intake: turns one MQTT message into a REC_MSG record in the ingress ring (DESIGN §1, §5).
 *
 * Used by the ingress process, called only from paho's receive thread (messageArrived), one
 * message at a time. The record is committed and the ring flushed before intake_message
 * returns, because paho sends the QoS 1 PUBACK when messageArrived returns (BASELINES
 * pitfall 2): a PUBACK then means "in the ring", and a producer that dies later loses
 * nothing it acknowledged.
 *
 * Full ring: the call blocks until the consumer makes room (backpressure reaches the broker
 * through TCP, since paho's receive thread stops reading), unless runtime.overflow is drop and
 * the message is QoS 0: then it is dropped and counted (ring drops, stats dropped).
 * A message larger than runtime.max_payload or than the ring's max record is counted (stats
 * errors and dead), logged with its topic and size and not written; it never stops the stage.
 *
 * Sequence numbers continue across restarts: they start at the number of records the ring's
 * producers have published so far, so the router sees one increasing series per source.
 */
#ifndef MF_INTAKE_H
#define MF_INTAKE_H

#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "ring.h"
#include "stats.h"

typedef struct intake intake;

enum { INTAKE_WRITTEN = 0, INTAKE_DROPPED = 1 };

/* Prepares intake for ring r (attached as producer; not owned) of source client `client`
 * (cfg index, written into every record). slot (may be NULL) receives in/dropped/errors/dead.
 * 0 and *out, or -ENOMEM / -EINVAL (client above REC_NONE). */
int intake_create(ring *r, stats_slot *slot, size_t client, size_t max_payload,
                  enum cfg_overflow overflow, intake **out);
/* Writes one message (topic need not be NUL-terminated). INTAKE_WRITTEN, INTAKE_DROPPED, or
 * -EMSGSIZE when it was too large (counted and logged, nothing written). Blocks while the
 * ring is full (see above); signals do not end the wait. */
int intake_message(intake *in, const char *topic, size_t topic_len, const void *payload,
                   size_t payload_len, int qos, int retain);
/* Sequence number the next written record gets. */
uint64_t intake_next_seq(const intake *in);
void intake_destroy(intake *in); /* accepts NULL; the ring stays attached */

#endif
