/* step_custom_processor: calls the step's callback once per message; what it emits goes to
 * the next step (nothing emitted = the message stops here). */
#include "chain_int.h"

int step_custom_processor_process(chain_step *s, const ctx_origin *o, const mf_msg *m)
{
    mf_ctx x;
    ctx_init_call(&x, s->cr->env, s->cr->rule, (int)s->index, s->cb_name, s->cfg->params,
                  s->cfg->n_params, chain_emit_next, s, o);
    chain_note_error(s->cr, ctx_call(&x, s->cb, m, 1));
    return 0;
}
