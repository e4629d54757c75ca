/* mqttflow-router CONFIG: reads every ingress ring, matches rules, copies each message to the
 * worker(s) that must run it (see router/route.h). Only wiring here: the skeleton of every
 * stage (config, stats slot, exit codes, signals) is common/stage.h's stage_main. */
#include "exitcode.h"
#include "route.h"
#include "stage.h"

static int on_create(const stage *s, void **app)
{
    route *r = NULL;
    int rc = route_create(s->conf, s->st, s->slot, &r);
    *app = r;
    return rc;
}

static int on_run(void *app)
{
    stage_ready(); /* rings attached, rules compiled: the router can take records */
    return route_run(app);
}

static void on_destroy(void *app)
{
    route_destroy(app);
}

int main(int argc, char **argv)
{
    static const stage_def def = {STATS_ROUTER, on_create, on_run, on_destroy};
    return stage_main(&def, argc, argv);
}
