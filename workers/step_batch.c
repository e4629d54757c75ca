/* step_batch: collects messages and hands them on as one message holding a JSON array of
 * their payloads, when `count` messages are held or `interval` seconds after the first one,
 * whichever comes first. A payload that is JSON is embedded as it is, anything else as a JSON
 * string. The batch message keeps the topic of its last message. Held messages live in a
 * window (window.h), like a sampler's. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chain_int.h"
#include "clock.h"
#include "log.h"

#define COMP "worker"

int step_batch_init(chain_step *s)
{
    const cfg_step *c = s->cfg;
    if (c->batch_count == 0 && !(c->interval > 0)) {
        log_error(COMP, "rule %s, step %zu (batch): needs count, interval or both", s->cr->r->name,
                  s->index);
        return -EINVAL;
    }
    /* without a count, the window's own cap bounds the memory a batch may hold */
    uint32_t max = c->batch_count ? c->batch_count : 100000;
    return window_create((uint64_t)(c->interval * 1e9), max, &s->win);
}

int step_batch_process(chain_step *s, const ctx_origin *o, const mf_msg *m)
{
    int rc = window_add(s->win, m, o, clock_mono_ns());
    if (rc == -ENOSPC) {
        /* an interval-only batch at its cap: close it now and start the next with m */
        step_batch_close(s);
        rc = window_add(s->win, m, o, clock_mono_ns());
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

void step_batch_close(chain_step *s)
{
    const mf_msg *msgs;
    ctx_origin o;
    size_t n = window_msgs(s->win, &msgs, &o);
    json_t *arr = n ? json_array() : NULL;
    char *text = NULL;

    if (n == 0)
        goto out;
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
out:
    free(text);
    json_decref(arr);
    window_reset(s->win);
}
