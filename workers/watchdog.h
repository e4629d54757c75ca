/* watchdog: ends a worker whose callback runs past runtime.callback_timeout_ms (DESIGN §5).
 *
 * A thread of the worker process wakes every WATCHDOG_TICK_MS (or a quarter of the timeout if
 * shorter) and reads the worker's stats slot busy_since_ns, which ctx_call sets around every
 * callback. That mark is read from the coarse clock (ctx_call: per callback it costs 5 ns, the
 * fine clock 22), so it may be up to one coarse tick (clock_mono_coarse_res_ns, 1-10 ms) before
 * the callback's real start; the watchdog adds that tick to the timeout, so a callback is never
 * killed before it ran for the full timeout, and at the latest timeout + tick + one watchdog
 * tick after its start. Past that it logs the rule and callback, marks the timeout in the slot
 * (extra[STATS_W_TIMEOUT_NS], for the successor's dead letters) and kills the process with SIGKILL:
 * a callback stuck in a loop cannot be interrupted safely any other way. The record it was
 * running is then retried by the restarted worker and dead-lettered after max_attempts, like
 * a crash. The supervisor watches the same field; whichever acts first, the outcome is the
 * same. Why a thread and not a timer signal per callback: arming a timer costs two syscalls
 * per message, reading a word costs nothing on the hot path.
 *
 * The thread blocks every signal, so SIGTERM still interrupts the main thread's waits.
 * watchdog_start/stop are called from the main thread only.
 */
#ifndef MF_WORKERS_WATCHDOG_H
#define MF_WORKERS_WATCHDOG_H

#include "ctx.h"

#define WATCHDOG_TICK_MS 100

typedef struct watchdog watchdog;

/* Starts watching env->slot (env outlives the watchdog) with timeout_ms > 0; timeout_ms 0
 * starts nothing and returns 0 with *out NULL. 0, -ENOMEM or -errno of pthread_create. */
int watchdog_start(const ctx_env *env, int timeout_ms, watchdog **out);
/* Stops and joins the thread; accepts NULL. */
void watchdog_stop(watchdog *w);

#endif
