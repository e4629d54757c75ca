/* step_relay: publishes the message on target_client_id (default: the rule's source client)
 * as target_topic (default: the message's topic) with the step's qos/retain (-1: those of
 * the message). The message ends here: steps after a relay receive nothing, so that the end
 * of the chain does not publish it a second time on the source client. */
#include <errno.h>
#include <string.h>

#include "chain_int.h"
#include "log.h"

#define COMP "worker"

static int step_relay_process(chain_step *s, const ctx_origin *o, const mf_msg *m)
{
    const cfg_step *c = s->cfg;
    const cfg_rule *r = s->cr->r;
    int client = c->target_client >= 0   ? c->target_client
                 : r->source_client >= 0 ? r->source_client
                                         : o->client;
    const char *topic = c->target_topic ? c->target_topic : m->topic;
    int qos = c->qos >= 0 ? c->qos : m->qos;
    int retain = c->retain >= 0 ? c->retain : m->retain;

    int rc = ctx_write(s->cr->env, s->cr->rule, (int)s->index, o, client, topic, m->payload,
                       m->payload_len, qos, retain);
    if (rc < 0) {
        log_error(COMP,
                  "rule %s, step %zu (relay): cannot publish on client %s topic \"%s\" "
                  "(%zu bytes): %s",
                  r->name, s->index, chain_client_name(s->cr, client), topic, m->payload_len,
                  strerror(-rc));
        if (s->cr->env->slot)
            stats_add(&s->cr->env->slot->errors, 1);
    }
    return rc;
}

const step_ops step_relay_ops = {
    .process = step_relay_process,
};
