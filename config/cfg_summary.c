/* cfg_summary: what `mqttflow check` prints after a successful load, so a user can see at a
 * glance what the file means (which broker, which subscriptions, which rule runs what). */
#include "cfg_int.h"

static const char *mode_name(enum cfg_exec_mode m)
{
    return m == CFG_EXEC_PARALLEL    ? "parallel"
           : m == CFG_EXEC_PER_TOPIC ? "per_topic"
                                     : "sequential";
}

void cfg_print_summary(const cfg *c, FILE *f)
{
    const cfg_runtime *rt = &c->runtime;
    fprintf(f, "%s: instance \"%s\", %d worker%s, ring %zu KiB, max payload %zu KiB\n", c->path,
            rt->instance, rt->workers, rt->workers == 1 ? "" : "s", rt->ring_size >> 10,
            rt->max_payload >> 10);
    fprintf(f, "clients (%zu):\n", c->n_clients);
    for (size_t i = 0; i < c->n_clients; i++) {
        const cfg_client *cl = &c->clients[i];
        fprintf(f, "  %s -> %s (MQTT %s%s)", cl->client_id, cl->uri,
                cl->mqtt_version == 5 ? "5" : "3.1.1", cl->tls.enabled ? ", TLS" : "");
        if (!cl->n_topics)
            fprintf(f, ", publish only");
        for (size_t t = 0; t < cl->n_topics; t++)
            fprintf(f, "%s%s%s%s%s (qos %d)", t ? ", " : "; subscribes ",
                    cl->shared_group ? "$share/" : "", cl->shared_group ? cl->shared_group : "",
                    cl->shared_group ? "/" : "", cl->topics[t].name, cl->topics[t].qos);
        fputc('\n', f);
    }
    fprintf(f, "callbacks (%zu):\n", c->n_callbacks);
    for (size_t i = 0; i < c->n_callbacks; i++)
        fprintf(f, "  %s = %s:%s\n", c->callbacks[i].name, c->callbacks[i].module,
                c->callbacks[i].function);
    fprintf(f, "rules (%zu):\n", c->n_rules);
    for (size_t i = 0; i < c->n_rules; i++) {
        const cfg_rule *r = &c->rules[i];
        fprintf(f, "  %s: %s from %s -> %s %s [%s%s]\n", r->name, r->topic ? r->topic : "#",
                r->source_client >= 0 ? c->clients[r->source_client].client_id : "any client",
                r->callback >= 0 ? "callback" : "chain",
                r->callback >= 0 ? c->callbacks[r->callback].name
                                 : (r->chain >= 0 ? c->chains[r->chain].name : "?"),
                mode_name(r->exec_mode),
                r->on_error == CFG_ON_ERROR_DEAD_LETTER ? ", errors dead-lettered" : "");
    }
    fprintf(f, "chains (%zu):\n", c->n_chains);
    for (size_t i = 0; i < c->n_chains; i++) {
        const cfg_chain *ch = &c->chains[i];
        fprintf(f, "  %s%s:", ch->name, ch->stateful ? " (stateful)" : "");
        for (size_t s = 0; s < ch->n_steps; s++) {
            const cfg_step *st = &ch->steps[s];
            fprintf(f, "%s%s", s ? " -> " : " ", cfg_step_kind_name(st->kind));
            if (st->callback >= 0)
                fprintf(f, "(%s)", c->callbacks[st->callback].name);
            else if (st->kind == CFG_STEP_RELAY)
                fprintf(f, "(%s%s%s)",
                        st->target_client >= 0 ? c->clients[st->target_client].client_id
                                               : "source client",
                        st->target_topic ? " " : "", st->target_topic ? st->target_topic : "");
        }
        fputc('\n', f);
    }
}
