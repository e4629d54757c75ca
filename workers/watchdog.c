#include "watchdog.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#include "atom.h"
#include "clock.h"
#include "log.h"
#include "stats.h"

#define COMP "worker"

struct watchdog {
    const ctx_env *env;
    uint64_t timeout_ns;
    uint64_t slack_ns; /* the coarse clock's lag: busy_since_ns may be this much early */
    int tick_ms;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop; /* under mu */
};

static void *watch(void *arg)
{
    watchdog *w = arg;
    stats_slot *slot = w->env->slot;

    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += (long)w->tick_ms * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
        if (w->stop)
            break;
        uint64_t since = stats_get(&slot->busy_since_ns);
        uint64_t now = clock_mono_ns();
        /* since may be up to slack_ns before the callback really started (ctx_call reads
         * the coarse clock): with the slack added, a callback is never killed before it ran
         * for the full timeout */
        if (since == 0 || now < since || now - since <= w->timeout_ns + w->slack_ns)
            continue;
        const ctx_busy *b = w->env->busy;
        int rule = b ? atom_load_relaxed(&b->rule) : -1;
        const char *cb = b ? atom_load_relaxed(&b->callback) : NULL;
        log_error(COMP,
                  "rule %s: callback %s has run for %llu ms, past runtime.callback_timeout_ms "
                  "(%llu): killing this worker (its message is retried, then dead-lettered)",
                  ctx_rule_name(w->env, rule), cb ? cb : "?",
                  (unsigned long long)((now - since) / 1000000),
                  (unsigned long long)(w->timeout_ns / 1000000));
        /* the successor names the timeout in the message's dead letter (stats.h STATS_W_*);
         * the store is done before the kill syscall, so it is in the segment when we die */
        stats_set(&slot->extra[STATS_W_TIMEOUT_NS], now);
        kill(getpid(), SIGKILL);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int watchdog_start(const ctx_env *env, int timeout_ms, watchdog **out)
{
    *out = NULL;
    if (timeout_ms <= 0 || !env->slot)
        return 0;
    watchdog *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->env = env;
    w->timeout_ns = (uint64_t)timeout_ms * 1000000ull;
    w->slack_ns = clock_mono_coarse_res_ns();
    w->tick_ms = timeout_ms / 4 < WATCHDOG_TICK_MS ? (timeout_ms / 4 ? timeout_ms / 4 : 1)
                                                   : WATCHDOG_TICK_MS;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&w->mu, NULL);

    /* the thread inherits this mask: every signal stays with the main thread */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&w->thread, NULL, watch, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return -rc;
    }
    *out = w;
    return 0;
}

void watchdog_stop(watchdog *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
