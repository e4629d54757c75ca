/* suspect: which publish makes a target broker close the connection (issue 8 item 2).
 *
 * A broker closes the connection of a client that publishes something it refuses (mosquitto:
 * a packet above max_packet_size, a topic it cannot parse); it says nothing about which
 * publish, and the relay publishes everything that was lost with a connection again, so one
 * such record would take the connection down forever, and nothing behind it would flow. The
 * worker side has the same problem with a record that kills its worker; the answer is the same:
 * a record gets runtime.max_attempts chances, then it is dead-lettered (relay/dlq).
 *
 * Blame needs a record that was alone: with many publishes in flight, all of them are lost
 * with the connection and most of them are innocent. So after a connection of target t ends
 * with n > 1 QoS>0 publishes outstanding, t is on probation for those n: its publishes go out
 * one at a time (suspect_may_send) until n of them were acknowledged. A connection that ends
 * with exactly one publish outstanding blames that one (ring window, seq); the same record
 * blamed max_attempts times in a row is given up (suspect_lost answers true). An
 * acknowledgement clears the blame. A broker that is restarted while one record is alone in
 * flight blames it too; it takes max_attempts such restarts in a row, each with that record
 * alone in flight, to dead-letter an innocent record (QoS 0 publishes are never outstanding:
 * done once written).
 *
 * Used by the relay's main loop only (one thread); no allocation after create.
 */
#ifndef MF_RELAY_SUSPECT_H
#define MF_RELAY_SUSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct suspect suspect;

/* State for n_conns targets, max_attempts (runtime.max_attempts; 0 = never give up). 0 and
 * *out, or -ENOMEM. */
int suspect_create(size_t n_conns, int max_attempts, suspect **out);
void suspect_destroy(suspect *s); /* accepts NULL */
/* A connection of target conn ended with n_lost QoS>0 publishes outstanding, the publish
 * (win, seq) among them. Call once per lost publish with the same n_lost. Returns true when
 * (win, seq) is to be dead-lettered now instead of published again. */
bool suspect_lost(suspect *s, uint16_t conn, size_t n_lost, uint16_t win, uint64_t seq);
/* A QoS>0 publish on conn was acknowledged. */
void suspect_acked(suspect *s, uint16_t conn);
/* Whether a QoS>0 publish may go to conn now, with `outstanding` QoS>0 publishes there. */
bool suspect_may_send(const suspect *s, uint16_t conn, int outstanding);

#endif
