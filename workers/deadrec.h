/* deadrec: the worker's side of the dead-letter path (DESIGN §2, §5; issue 8 "every drop is a
 * dead letter", issue 9 "the dead-letter path in one module per side").
 *
 * A worker never writes the dead-letter store itself: it appends a REC_DEAD record (rec.h) to
 * its output ring through ctx_env.append, and the relay's dead-letter module (relay/dlq.h)
 * writes it to the store and only then releases it. This module makes those records, one
 * function per kind of thing given up: a message (its topic, payload, QoS, rule and source
 * client as they came in, the reason in aux), a damaged region of the input ring, an
 * input record that does not decode, and one that decodes but is no message of a known rule. Their
 * callers count them (stats dead) and log them; here only a record the output cannot take is
 * logged.
 *
 * Used by the worker's thread only (run.c); no state.
 */
#ifndef MF_WORKERS_DEADREC_H
#define MF_WORKERS_DEADREC_H

#include <stddef.h>
#include <stdint.h>

#include "ctx.h"
#include "rec.h"

/* Bytes of a damaged region or an undecodable record kept in its dead letter (at most
 * runtime.max_payload) */
#define DEADREC_KEEP 4096

/* Hands the message v on as given up for aux (REC_DEAD_AUX of rec.h). 0, or the -errno of
 * env->append (logged: the record may not fit the output ring, an oversized payload; then the
 * caller's log line and count are all that is left). */
int deadrec_message(const ctx_env *env, const rec_view *v, uint16_t aux);
/* A region of `bytes` bytes of the input ring that could not be read as records
 * (REC_DEAD_CORRUPT_RING; the first DEADREC_KEEP of first[0..len) are kept). 0 or -errno
 * (logged). */
int deadrec_region(const ctx_env *env, uint64_t bytes, const void *first, size_t len);
/* An input record of len bytes that rec_decode refused for `why` (REC_DEAD_UNDECODABLE; its
 * first DEADREC_KEEP bytes are kept). 0 or -errno (logged). */
int deadrec_undecodable(const ctx_env *env, const void *buf, size_t len, enum rec_bad why);
/* An input record of len bytes that decodes but cannot be run: of another kind than REC_MSG
 * or for a rule this worker does not have (REC_DEAD_MISPLACED for `what`, with that kind or
 * rule number; its first DEADREC_KEEP bytes are kept). 0 or -errno (logged). */
int deadrec_misplaced(const ctx_env *env, const void *buf, size_t len, enum rec_misplaced what,
                      unsigned n);

#endif
