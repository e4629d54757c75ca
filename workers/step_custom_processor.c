/* step_custom_processor: calls the step's callback once per message; what it emits goes to
 * the next step (nothing emitted = the message stops here). */
#include <errno.h>

#include "chain_int.h"
#include "log.h"

#define COMP "worker"

static int step_custom_processor_process(chain_step *s, const ctx_origin *o, const mf_msg *m)
{
    mf_ctx x;
    ctx_init_call(&x, s->cr->env, s->cr->rule, (int)s->index, s->cb_name, s->cfg->params,
                  s->cfg->n_params, chain_emit_next, s, o);
    chain_note_error(s->cr, ctx_call(&x, s->cb, m, 1));
    return 0;
}

static int init(chain_step *s)
{
    if (s->cb)
        return 0;
    log_error(COMP, "rule %s, chain %s, step %zu (custom_processor): no callback", s->cr->r->name,
              s->cr->env->c->chains[s->cr->r->chain].name, s->index);
    return -EINVAL;
}

const step_ops step_custom_processor_ops = {
    .init = init,
    .process = step_custom_processor_process,
};
