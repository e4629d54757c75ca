/* wstate: the memory that holds the state of a worker's stateful steps (sampler and batch
 * windows, aggregate sums, throttle buckets, on_change tables), so that it survives the
 * worker (DESIGN §5: "lives where a worker crash does not erase it").
 *
 * Where: one shared-memory segment per worker, names_worker_state(instance, w), kind
 * SHM_KIND_STATE, opened with shm_adopt: a worker that follows a dead or stopped one (kill -9,
 * a crash, `mqttflow restart worker N`) takes over its segment with the contents, so open
 * windows close at their original deadline (CLOCK_MONOTONIC is system-wide, deadlines stay
 * valid across processes). The supervisor removes the segments when the whole instance
 * stops (and sweeps stale ones at start); a worker never unlinks its own. Tests and a worker
 * without a supervisor use wstate_create_private (anonymous memory, same layout).
 *
 * Layout: the segment header (wstate_hdr), then one region per stateful step of every chain
 * rule, page aligned, at offsets computed from the configuration (wstate_plan). Every worker
 * builds every rule's chain (a threaded rule may come to any worker), so every worker has a
 * region for every stateful step; untouched pages of a tmpfs segment take no memory. Sizes
 * come from each kind's step_ops.state_size (its file's header says what it holds), e.g.:
 *   sampler/batch  window.h: an entry table of max_messages entries and a data area of
 *                  clamp(max_messages x 1 KiB, 1 MiB, 16 MiB) bytes; a message that does not
 *                  fit counts as a drop, like one beyond max_messages
 *   aggregate      one double-buffered record with the topic (up to WSTATE_TOPIC_MAX bytes)
 *   throttle       one double-buffered bucket
 *   on_change      a table of ON_CHANGE_SLOTS (topic hash, value hash) entries
 * No runtime key sizes it: the configuration module is not this one's; the plan is derived
 * from the chains alone. tmpfs allocates a page when it is first touched: a /dev/shm too full
 * for the windows' contents makes that touch a SIGBUS, a worker crash like any other (sized
 * generously it never happens: the pages in use are those of the messages windows hold).
 *
 * Adoption is validated: magic, layout version, size and a hash of everything in the config
 * that shapes or interprets the state (rules' chains, every stateful step's kind and
 * parameters). A mismatch starts every region fresh (zeroed) with a log line: a changed
 * config never misreads old state. Each region validates its own contents on attach
 * (window.c, step_*.c: counts, offsets and lengths bounds-checked) and resets itself when
 * corrupt, logged, never a crash.
 *
 * Crash consistency: each region changes by writing new bytes where nothing reads them, then
 * publishing with one release store (a generation word selecting one of two copies, or a
 * count): a SIGKILL at any instruction leaves the old or the new state. The worker is the only
 * process that maps the segment while it runs (shm_adopt refuses a live owner: -EEXIST).
 *
 * Exactly once into a window across a crash: the records applied to a region but not yet
 * released from the input ring are read again by the next worker. Each region keeps the input
 * position of the last record it applied (wstate_applied: ring_read_pos + 1 before
 * ring_advance, and how many adds that record made) and skips them on the re-read
 * (wstate_replay). The positions are meaningful only for the same input ring: see
 * wstate_open; for a new ring (positions start again at 0) they are ignored.
 *
 * One thread. Failures of open/create leave nothing mapped.
 */
#ifndef MF_WORKERS_WSTATE_H
#define MF_WORKERS_WSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "shm.h"

/* Layout version (shm_hdr.version). 2: hashes are hash.h's FNV-1a; version 1 used a truncated
 * offset basis, so its config hash and its on_change tables (topic and value hashes) mean
 * nothing to this build. An older segment is not migrated (on_change's hashes cannot be
 * recomputed without the topics): wstate_open logs it and the state starts fresh, as after a
 * config change. */
#define WSTATE_VERSION   2u
#define WSTATE_MAGIC     0x6574617473776d66ull /* "mfwstate" */
#define WSTATE_TOPIC_MAX 4096u
#define WSTATE_PAGE      4096u

/* The segment's first bytes (a *_layout exception to opacity, STYLE 5). */
typedef struct wstate_hdr {
    shm_hdr shm;
    uint64_t magic;     /* WSTATE_MAGIC, release-stored after the regions were zeroed */
    uint64_t cfg_hash;  /* wstate_plan's hash of the stateful chains */
    uint64_t size;      /* bytes the plan needs */
    uint64_t n_regions; /* regions the plan has */
    uint64_t input_pid; /* identity of the input ring the positions refer to: its owner */
    uint64_t input_start;
    uint64_t input_tail; /* its released position, noted after each release (relaxed) */
    uint64_t pad[1];
} wstate_hdr;
_Static_assert(sizeof(wstate_hdr) == 128, "wstate_hdr layout");

typedef struct wstate wstate;

/* The position of the last input record a region applied and how many adds it made (a
 * callback before a window may emit several messages from one record). pos 0: none. */
typedef struct wstate_applied {
    uint64_t pos;
    uint64_t adds;
} wstate_applied;

/* Process memory of a region: whether it is re-reading records a previous worker applied. */
typedef struct wstate_replay {
    bool on;
    uint64_t cur_pos, cur_k; /* the record being applied and its adds so far, this process */
} wstate_replay;

/* Bytes the state of c needs (header included, page multiple) and the config hash. Region
 * sizes come from chain_state_size (chain.h). */
size_t wstate_plan(const cfg *c, uint64_t *hash);

/* What identifies the input ring the stored positions refer to. */
typedef struct wstate_input {
    uint64_t pid, start; /* the ring segment's owner (shm_hdr): the supervisor that made it */
    uint64_t tail;       /* its published tail now */
} wstate_input;

/* Opens (shm_adopt) the state segment of worker w. Stored input positions are trusted when the
 * input ring has the same owner as when they were stored (a worker restarted by the same
 * supervisor), or, for a ring a new supervisor adopted, when its tail is at or past the last
 * release noted (wstate_note_released; a new ring starts at tail 0). 0 and *out; -EEXIST when
 * a live worker owns it; -errno (logged). */
int wstate_open(const cfg *c, size_t worker, const wstate_input *in, wstate **out);
/* Notes the input ring's tail after a release (cheap: one relaxed store). */
void wstate_note_released(wstate *ws, uint64_t tail);
/* The same layout in private anonymous memory (tests; a worker run by hand). */
int wstate_create_private(const cfg *c, wstate **out);
/* Unmaps; the segment and its contents stay. Accepts NULL. */
void wstate_close(wstate *ws);

/* The region of step `step` of rule `rule` (zeroed when new), its size in *len; NULL when
 * that step has no state. Valid until wstate_close. */
void *wstate_region(wstate *ws, int rule, size_t step, size_t *len);
/* Whether the contents came from a previous worker (adopted and validated). */
bool wstate_adopted(const wstate *ws);
/* Whether stored input positions refer to the current input ring (adopted, same ring). */
bool wstate_positions_valid(const wstate *ws);
/* Replay filter for an add from input position pos (0 = not from an input record: never
 * skipped). Returns true when a previous worker already applied this add. */
bool wstate_replay_skip(wstate_replay *r, const wstate_applied *a, uint64_t pos);
/* The applied mark after an add from pos to a region whose mark was a. */
wstate_applied wstate_applied_next(wstate_applied a, uint64_t pos);

/* A double-buffered record in a region: a generation word, then two copies of len bytes.
 * cur: the published copy; next: the other copy, filled with cur's bytes, to edit then
 * publish (one release store). WSTATE_DB_SIZE(len) bytes of region. */
#define WSTATE_DB_SIZE(len) (64u + 2u * (((len) + 63u) & ~(size_t)63u))
const void *wstate_db_cur(const void *region, size_t len);
void *wstate_db_next(void *region, size_t len);
void wstate_db_publish(void *region);

#endif
