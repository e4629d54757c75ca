/* deadletter: the dead-letter store, one JSON line per given-up message (DESIGN §2, §5;
 * issue 4 "Poison messages").
 *
 * The store is the file <dir>/dead-letters.jsonl (directory created 0700 with its parents,
 * file 0600, opened O_APPEND). Each line is one compact JSON object (jansson):
 *   {"time": "2026-11-27T02:12:35.123Z", "instance": ..., "rule": ..., "callback": ...,
 *    "reason": ..., "source_client": ..., "topic": ..., "qos": 1,
 *    "payload": "<UTF-8 text>" | "payload_b64": "<base64>", "payload_len": N}
 * rule, callback and source_client are null when unknown. payload holds the payload as a
 * JSON string when it is valid UTF-8 (NUL bytes included, escaped as \u0000: a jansson
 * reader needs JSON_ALLOW_NUL), otherwise the bytes go base64-encoded (RFC 4648, with
 * padding) under payload_b64.
 *
 * Durability: deadletter_append only writes (one write per line, retried on short writes);
 * deadletter_sync makes every line written so far durable (fdatasync). A caller that gives a
 * message up only once it is stored calls sync once per batch and lets go of the batch's
 * messages after it returned 0. A failed write cuts the file back to where the line began, so
 * the file never holds half a line from this process (a crash mid-write can leave one: a
 * reader skips a last line without its newline).
 *
 * Used by the relay (REC_DEAD records from the workers) and meant for the ingress (oversized
 * messages). One process, one thread per store (no locking here); several processes may
 * append to the same file (O_APPEND writes of one line each do not interleave).
 */
#ifndef MF_DEADLETTER_H
#define MF_DEADLETTER_H

#include <stddef.h>
#include <stdint.h>

#define DEADLETTER_FILE "dead-letters.jsonl"

typedef struct deadletter deadletter;

/* What one dead letter says. Strings may be NULL (written as null), except reason. */
typedef struct deadletter_entry {
    uint64_t time_ns; /* wall clock (CLOCK_REALTIME) of the decision; 0 = now */
    const char *instance;
    const char *rule;
    const char *callback;
    const char *reason; /* text, e.g. "crashed the worker 3 times" */
    const char *source_client;
    const char *topic;
    int qos;
    const void *payload;
    size_t payload_len;
} deadletter_entry;

/* Opens (creating dir and file as above) the store in dir. 0 and *out, or -errno. */
int deadletter_open(const char *dir, deadletter **out);
/* Closes the file (no sync: call deadletter_sync first). Accepts NULL. */
void deadletter_close(deadletter *d);

/* The entry's JSON object as one line without the newline, malloc'd (free() it); NULL when
 * out of memory. Pure: no I/O. */
char *deadletter_json(const deadletter_entry *e);
/* Appends line (no newline in it; one is added). 0 or -errno (nothing of it stays). */
int deadletter_append(deadletter *d, const char *line);
/* fdatasync: every line appended before is durable when it returns 0. -errno otherwise. */
int deadletter_sync(deadletter *d);

/* For rare events of a process that keeps no store open: opens the store in dir, appends
 * e's line, syncs and closes. 0 or -errno. */
int deadletter_store_one(const char *dir, const deadletter_entry *e);
/* Lines appended by this open. Cannot fail. */
uint64_t deadletter_count(const deadletter *d);
/* The file's path (for log lines). */
const char *deadletter_path(const deadletter *d);

#endif
