/* step_batch: collects messages and hands them on as one message holding a JSON array of
 * their payloads, when `count` messages are held or `interval` seconds after the first one,
 * whichever comes first. A payload that is JSON is embedded as it is, anything else as a JSON
 * string. The batch message keeps the topic of its last message. Held messages live in a
 * window (window.h), like a sampler's, in the worker's state segment: a pending batch survives
 * a crash or restart of the worker, and its close flushes the output before it empties it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chain_int.h"
#include "clock.h"
#include "log.h"

#define COMP "worker"

static void step_batch_close(chain_step *s);

static int step_batch_init(chain_step *s)
{
    const cfg_step *c = s->cfg;
    if (c->batch_count == 0 && !(c->interval > 0)) {
        log_error(COMP, "rule %s, step %zu (batch): needs count, interval or both", s->cr->r->name,
                  s->index);
        return -EINVAL;
    }
    /* without a count, the window's own cap bounds the memory a batch may hold */
    uint32_t max = c->batch_count ? c->batch_count : 100000;
    return window_create(s->region, s->region_len, (uint64_t)(c->interval * 1e9), max,
                         chain_replay(s->cr), s->label, &s->win);
}

static int step_batch_process(chain_step *s, const ctx_origin *o, const mf_msg *m)
{
    int rc = window_add(s->win, m, o, clock_mono_ns());
    if (rc == 1)
        return 0; /* added by the previous worker before it died */
    if (rc == -ENOSPC && window_count(s->win) > 0) {
        /* a batch at its cap (count or bytes): close it now and start the next with m */
        step_batch_close(s);
        rc = window_add(s->win, m, o, clock_mono_ns());
    }
    if (rc == -ENOSPC) {
        log_error(COMP, "%s: a message of %zu bytes does not fit a batch: dropped", s->label,
                  m->payload_len);
        chain_count_drop(s->cr);
        return 0;
    }
    if (rc < 0) {
        log_error(COMP, "rule %s, step %zu (batch): cannot keep a message: %s", s->cr->r->name,
                  s->index, strerror(-rc));
        chain_count_error(s->cr);
        return rc;
    }
    if (s->cfg->batch_count && window_count(s->win) >= s->cfg->batch_count)
        step_batch_close(s);
    return 0;
}

static void step_batch_close(chain_step *s)
{
    const mf_msg *msgs;
    ctx_origin o;
    if (window_count(s->win) == 0 || !chain_window_close_begin(s))
        return;
    size_t n = window_msgs(s->win, &msgs, &o);
    json_t *arr = n ? json_array() : NULL;
    char *text = NULL;

    if (n == 0) {
        log_error(COMP, "%s: out of memory closing a batch: retried", s->label);
        chain_count_error(s->cr);
        return;
    }
    for (size_t i = 0; arr && i < n; i++) {
        json_t *v = json_loadb(msgs[i].payload, msgs[i].payload_len, JSON_DECODE_ANY, NULL);
        if (!v)
            v = json_stringn(msgs[i].payload, msgs[i].payload_len);
        if (!v || json_array_append_new(arr, v) < 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    text = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
    if (!text) {
        log_error(COMP,
                  "rule %s, step %zu (batch): cannot build the batch of %zu messages "
                  "(out of memory, or a payload that is not UTF-8 text)",
                  s->cr->r->name, s->index, n);
        chain_count_error(s->cr);
        goto out;
    }
    mf_msg out = msgs[n - 1];
    out.payload = text;
    out.payload_len = strlen(text);
    out.qos = o.qos;
    out.retain = 0;
    chain_feed(s->cr, s->index + 1, &o, &out);
    chain_flush(s->cr); /* the output is out before the batch forgets its messages */
out:
    free(text);
    json_decref(arr);
    window_reset(s->win);
}

static size_t state_size(const cfg_step *c)
{
    return window_region_size(c->batch_count ? c->batch_count : 100000);
}

static uint64_t deadline(const chain_step *s)
{
    /* a batch left full by a worker that died closing it: close it at the next tick */
    if (s->cfg->batch_count && window_count(s->win) >= s->cfg->batch_count)
        return 0;
    return window_deadline(s->win);
}

static bool holds(const chain_step *s)
{
    return window_count(s->win) > 0;
}

static void fini(chain_step *s)
{
    window_destroy(s->win);
    s->win = NULL;
}

const step_ops step_batch_ops = {
    .state_size = state_size,
    .init = step_batch_init,
    .process = step_batch_process,
    .deadline = deadline,
    .holds = holds,
    .close = step_batch_close,
    .fini = fini,
};
