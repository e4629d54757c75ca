/* step_filter: passes a message on only when its `condition` (common/expr.h) holds. The
 * condition is compiled once when the worker starts. */
#include <errno.h>

#include "chain_int.h"
#include "log.h"

#define COMP "worker"

static int step_filter_init(chain_step *s)
{
    char err[256];
    size_t off = 0;

    if (!s->cfg->condition) {
        log_error(COMP, "rule %s, step %zu (filter): no condition", s->cr->r->name, s->index);
        return -EINVAL;
    }
    int rc = expr_compile(s->cfg->condition, &s->cond, err, sizeof(err), &off);
    if (rc < 0) {
        log_error(COMP, "rule %s, step %zu (filter): condition at offset %zu: %s", s->cr->r->name,
                  s->index, off, rc == -EINVAL ? err : "out of memory");
        return rc;
    }
    return 0;
}

static void step_filter_fini(chain_step *s)
{
    expr_destroy(s->cond);
    s->cond = NULL;
}

static int step_filter_process(chain_step *s, const ctx_origin *o, const mf_msg *m)
{
    if (!expr_eval(s->cond, m->topic, m->payload, m->payload_len))
        return 0;
    return chain_feed(s->cr, s->index + 1, o, m);
}

const step_ops step_filter_ops = {
    .init = step_filter_init,
    .process = step_filter_process,
    .fini = step_filter_fini,
};
