/* mqttflow-ingress CONFIG INGRESS_INDEX: one MQTT client's subscriptions -> its ingress ring.
 *
 * Wiring only (STYLE 13): the ingress is ingress/ingress_loop.h; the skeleton of every stage
 * (config, stats slot, exit codes, signals) is common/stage.h's stage_main.
 */
#include "ingress_loop.h"
#include "stage.h"

static int on_create(const stage *s, void **app)
{
    ingress_loop *l = NULL;
    int rc = ingress_loop_create(s->conf, s->index, s->slot, &l);
    *app = l;
    return rc;
}

static int on_run(void *app)
{
    return ingress_loop_run(app); /* reports ready itself, once subscribed */
}

static void on_destroy(void *app)
{
    ingress_loop_destroy(app);
}

int main(int argc, char **argv)
{
    static const stage_def def = {STATS_INGRESS, on_create, on_run, on_destroy};
    return stage_main(&def, argc, argv);
}
