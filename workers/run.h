/* run: one worker process's state and its loop (DESIGN §1, §5).
 *
 * run_create loads the callback modules and builds every rule's chain (configuration
 * problems); run_attach maps the worker's input ring (router -> worker, as consumer), its
 * output ring (worker -> relay, as producer) and its stats slot (runtime problems, worth a
 * restart). run_loop then takes records from the input ring in batches, runs each record's
 * rule, flushes the outputs and only then releases the batch (at-least-once); records whose
 * processing killed the worker more than runtime.max_attempts times are skipped as dead:
 * logged, counted, and handed to the relay as a REC_DEAD record (original topic, payload,
 * source client, rule; aux = REC_DEAD_AUX of rec.h: REC_DEAD_TIMEOUT when the last worker that
 * ran it was killed by a callback watchdog, else REC_DEAD_CRASHED and the signal that killed
 * it, both read at run_attach from the stats slot, stats.h STATS_W_*), as are records of
 * rules with `on_error: dead_letter` whose callback failed, input records that do not decode
 * and damaged regions of the input ring (workers/deadrec.h makes each such record). On
 * stage_stop_flag it drains the input ring, flushes and returns. Open windows stay in the
 * worker's state segment (wstate.h, window.h), which run_attach adopts (-EEXIST while another
 * worker of the same index lives), so a restarted worker (crash, `mqttflow restart worker N`)
 * closes them at their original deadline; only when the router no longer runs (its stats
 * slot's pid is 0: the whole instance stops, and the supervisor removes the state segments of
 * a clean stop) are they closed early, before the exit, rather than lost. One thread runs
 * everything; a watchdog thread (watchdog.h) only watches for a callback past
 * runtime.callback_timeout_ms. Signals only set stage.h flags.
 */
#ifndef MF_WORKERS_RUN_H
#define MF_WORKERS_RUN_H

#include <stddef.h>

#include "cfg.h"
#include "stats.h"

#define RUN_BATCH   64  /* input records per release */
#define RUN_WAIT_MS 200 /* longest wait, so a missed signal is still seen */

typedef struct run run;

/* Loads modules and builds chains for worker `worker` of c (c outlives the run). 0 and *out;
 * any failure (logged) is a configuration error: -ENOENT, -EPROTO, -ECANCELED, -EINVAL,
 * -ENOMEM. */
int run_create(const cfg *c, size_t worker, run **out);
/* Attaches the rings and the state segment, and takes the stats segment st and the worker's
 * slot in it (stage.h's: borrowed, they outlive the run). 0 or -errno (logged, naming the
 * segment). */
int run_attach(run *r, stats *st, stats_slot *slot);
/* Runs until stage_stop_flag, then drains; 0 (a corrupt region of the input ring is
 * quarantined and dead-lettered, and the loop goes on). */
int run_loop(run *r);
/* Detaches and unloads (mf_fini runs); accepts NULL. */
void run_destroy(run *r);

#endif
