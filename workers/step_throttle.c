/* step_throttle: lets at most `rate` messages per second through, in bursts of at most
 * max(1, rate) (a token bucket), or, with `interval` only, one message per interval. Messages
 * over the limit are dropped and counted in stats `dropped`. State: the bucket, per rule and
 * step, in process memory. */
#include <errno.h>
#include <stdlib.h>

#include "chain_int.h"
#include "clock.h"
#include "log.h"

#define COMP "worker"

typedef struct bucket {
    double rate;  /* tokens per second */
    double burst; /* bucket size */
    double tokens;
    uint64_t last_ns;
} bucket;

int step_throttle_init(chain_step *s)
{
    const cfg_step *c = s->cfg;
    double rate = c->rate > 0 ? c->rate : c->interval > 0 ? 1.0 / c->interval : 0;
    if (!(rate > 0)) {
        log_error(COMP, "rule %s, step %zu (throttle): needs rate or interval", s->cr->r->name,
                  s->index);
        return -EINVAL;
    }
    bucket *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    b->rate = rate;
    b->burst = rate > 1 ? rate : 1;
    b->tokens = b->burst;
    b->last_ns = clock_mono_ns();
    s->state = b;
    return 0;
}

void step_throttle_fini(chain_step *s)
{
    if (s->cfg && s->cfg->kind == CFG_STEP_THROTTLE) {
        free(s->state);
        s->state = NULL;
    }
}

int step_throttle_process(chain_step *s, const ctx_origin *o, const mf_msg *m)
{
    bucket *b = s->state;
    uint64_t now = clock_mono_ns();
    b->tokens += (double)(now - b->last_ns) * 1e-9 * b->rate;
    if (b->tokens > b->burst)
        b->tokens = b->burst;
    b->last_ns = now;
    if (b->tokens < 1.0) {
        chain_count_drop(s->cr);
        return 0;
    }
    b->tokens -= 1.0;
    return chain_feed(s->cr, s->index + 1, o, m);
}
