/* step_sampler: a tumbling window of `duration` seconds per rule; when it closes, its
 * callback runs once with every message the window holds, and what the callback emits goes
 * to the next step. A window that received nothing does not call the callback (n == 0 would
 * only wake every sampler of every idle rule for nothing). Without a callback (it is optional
 * in the config) the sampler samples: the window's last message goes on, the others are
 * dropped (not counted: thinning out is the point). See window.h for the state: it lives in
 * the worker's state segment and survives a crash or a restart of the worker. A close emits,
 * flushes the output, and only then empties the window, so a worker that dies in the close
 * closes it again after its restart (counted against runtime.max_attempts). */
#include <errno.h>
#include <string.h>

#include "chain_int.h"
#include "clock.h"
#include "log.h"

#define COMP "worker"

static int step_sampler_init(chain_step *s)
{
    double d = s->cfg->duration;
    if (!(d > 0) || d > 1e9) {
        log_error(COMP,
                  "rule %s, step %zu (sampler): duration %g is not a positive number of "
                  "seconds",
                  s->cr->r->name, s->index, d);
        return -EINVAL;
    }
    uint32_t max = s->cfg->max_messages ? s->cfg->max_messages : 10000;
    return window_create(s->region, s->region_len, (uint64_t)(d * 1e9), max, chain_replay(s->cr),
                         s->label, &s->win);
}

static void step_sampler_fini(chain_step *s)
{
    window_destroy(s->win);
    s->win = NULL;
}

static int step_sampler_process(chain_step *s, const ctx_origin *o, const mf_msg *m)
{
    int rc = window_add(s->win, m, o, clock_mono_ns());
    if (rc == 1)
        return 0; /* added by the previous worker before it died */
    if (rc == -ENOSPC) {
        /* logged once per window, counted every time */
        if (s->cr->env->slot)
            stats_add(&s->cr->env->slot->dropped, 1);
        uint64_t drops = window_drops(s->win);
        if ((drops & (drops - 1)) == 0)
            log_warn(COMP,
                     "rule %s, step %zu (sampler): window full (%u messages), %llu "
                     "messages dropped so far",
                     s->cr->r->name, s->index, (unsigned)s->cfg->max_messages,
                     (unsigned long long)drops);
        return 0;
    }
    if (rc < 0) {
        log_error(COMP, "rule %s, step %zu (sampler): cannot keep a message: %s", s->cr->r->name,
                  s->index, strerror(-rc));
        if (s->cr->env->slot)
            stats_add(&s->cr->env->slot->errors, 1);
    }
    return rc;
}

static void step_sampler_close(chain_step *s)
{
    const mf_msg *msgs;
    ctx_origin o;
    if (window_count(s->win) == 0 || !chain_window_close_begin(s))
        return;
    size_t n = window_msgs(s->win, &msgs, &o);
    if (n == 0) {
        log_error(COMP, "%s: out of memory closing a window of %zu messages: retried", s->label,
                  window_count(s->win));
        chain_count_error(s->cr);
        return;
    }
    if (!s->cb) {
        chain_feed(s->cr, s->index + 1, &o, &msgs[n - 1]);
    } else {
        mf_ctx x;
        ctx_init_call(&x, s->cr->env, s->cr->rule, (int)s->index, s->cb_name, s->cfg->params,
                      s->cfg->n_params, chain_emit_next, s, &o);
        chain_note_error(s->cr, ctx_call(&x, s->cb, msgs, n));
    }
    chain_flush(s->cr); /* the output is out before the window forgets its messages */
    window_reset(s->win);
}

static size_t state_size(const cfg_step *c)
{
    return window_region_size(c->max_messages ? c->max_messages : 10000);
}

static uint64_t deadline(const chain_step *s)
{
    return window_deadline(s->win);
}

static bool holds(const chain_step *s)
{
    return window_count(s->win) > 0;
}

const step_ops step_sampler_ops = {
    .state_size = state_size,
    .init = step_sampler_init,
    .process = step_sampler_process,
    .deadline = deadline,
    .holds = holds,
    .close = step_sampler_close,
    .fini = step_sampler_fini,
};
