/* salvage: the records of a ring no stage of this configuration can take, into the
 * dead-letter store (issue 8 item 5).
 *
 * A run whose configuration changed the clients or rules (their indices are what records
 * carry) cannot run the records a previous run left queued: they would reach the wrong rule
 * or client. Before, they were dropped with advice ("start the previous configuration once")
 * that could not work, because the ring was recreated. Now every such record becomes a dead
 * letter with the reason "configuration changed", its topic, payload and QoS (the rule and
 * client names of the old configuration are not known any more: null), durable before the
 * ring is removed, so nothing queued disappears silently.
 *
 * The supervisor reads records here and nowhere else: at start, before any stage is
 * started, with the ring attached as its only consumer (its producer and consumer are dead:
 * the stats segment, created exclusively, proved no live supervisor owns the instance).
 */
#ifndef MF_SUPERVISOR_SALVAGE_H
#define MF_SUPERVISOR_SALVAGE_H

#include <stdint.h>

#include "cfg.h"

/* Writes a dead letter for every published record of ring `name` not released yet (reason:
 * "configuration changed: " + why) into c's runtime.dead_letter_dir and syncs. 0 and *n
 * (records written), or -errno (the dead-letter store could not be written, or the segment is
 * not one this user's mqttflow left, shm_check_ours: the caller keeps the ring). The ring is
 * left in /dev/shm (the caller removes it).
 *
 * The geometry is the segment's own (a ring of another runtime.ring_size or max_payload is
 * read as it was written), bounded by its mapped size (ring_attach) and its positions by its
 * capacity (damaged ones: logged, nothing read, 0). Idempotent: every SALVAGE_BATCH records,
 * and before returning, the store is synced and only then are the records written released
 * from the ring (its tail moves), also when a later write fails; so a salvage retried after a
 * failure, or after a crash once the store was synced, writes no record twice (a crash between
 * a write and its sync can still repeat up to one batch: at least once, as the relay). */
int salvage_ring(const char *name, const cfg *c, const char *why, uint64_t *n);

#endif
