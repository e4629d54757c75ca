/* step_throttle: lets at most `rate` messages per second through, in bursts of at most
 * max(1, rate) (a token bucket), or, with `interval` only, one message per interval. Messages
 * over the limit are dropped and counted in stats `dropped`. State: the bucket, per rule and
 * step, a double-buffered record in the step's region of the worker's state segment
 * (wstate.h), so a restarted worker keeps the rate instead of granting a fresh burst. Records
 * re-read after a crash take tokens again (a throttle drops by design; replays are rare). */
#include <errno.h>
#include <stdlib.h>

#include "chain_int.h"
#include "clock.h"
#include "log.h"

#define COMP "worker"

typedef struct bucket {
    double tokens;
    uint64_t last_ns; /* 0 in a new region */
} bucket;

typedef struct throttle {
    void *region;
    double rate;  /* tokens per second */
    double burst; /* bucket size */
} throttle;

static size_t step_throttle_state_size(const cfg_step *c)
{
    (void)c;
    return WSTATE_DB_SIZE(sizeof(bucket));
}

static int step_throttle_init(chain_step *s)
{
    const cfg_step *c = s->cfg;
    double rate = c->rate > 0 ? c->rate : c->interval > 0 ? 1.0 / c->interval : 0;
    if (!(rate > 0)) {
        log_error(COMP, "rule %s, step %zu (throttle): needs rate or interval", s->cr->r->name,
                  s->index);
        return -EINVAL;
    }
    if (!s->region || s->region_len < sizeof(bucket))
        return -EINVAL; /* our bug: the plan gave it no region */
    throttle *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->region = s->region;
    t->rate = rate;
    t->burst = rate > 1 ? rate : 1;
    const bucket *b = wstate_db_cur(t->region, sizeof(bucket));
    uint64_t now = clock_mono_ns();
    if (b->last_ns == 0 || b->last_ns > now || !(b->tokens >= 0) || b->tokens > t->burst) {
        /* new, or not a bucket of this configuration: a full one */
        bucket *n = wstate_db_next(t->region, sizeof(bucket));
        n->tokens = t->burst;
        n->last_ns = now;
        wstate_db_publish(t->region);
    }
    s->state = t;
    return 0;
}

static void step_throttle_fini(chain_step *s)
{
    free(s->state);
    s->state = NULL;
}

static int step_throttle_process(chain_step *s, const ctx_origin *o, const mf_msg *m)
{
    throttle *t = s->state;
    bucket *b = wstate_db_next(t->region, sizeof(bucket));
    uint64_t now = clock_mono_ns();
    if (now > b->last_ns)
        b->tokens += (double)(now - b->last_ns) * 1e-9 * t->rate;
    if (b->tokens > t->burst)
        b->tokens = t->burst;
    b->last_ns = now;
    int pass = b->tokens >= 1.0;
    if (pass)
        b->tokens -= 1.0;
    wstate_db_publish(t->region);
    if (!pass) {
        chain_count_drop(s->cr);
        return 0;
    }
    return chain_feed(s->cr, s->index + 1, o, m);
}

const step_ops step_throttle_ops = {
    .state_size = step_throttle_state_size,
    .init = step_throttle_init,
    .process = step_throttle_process,
    .fini = step_throttle_fini,
};
