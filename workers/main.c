/* mqttflow-worker CONFIG WORKER_INDEX: runs the callbacks and chains of the rules the router
 * gives this worker (see workers/run.h). Only wiring here: the skeleton of every stage
 * (config, stats slot, exit codes, signals) is common/stage.h's stage_main. */
#include <errno.h>

#include "log.h"
#include "run.h"
#include "stage.h"

static int on_create(const stage *s, void **app)
{
    run *r = NULL;
    int rc = run_create(s->conf, s->index, &r);
    *app = r;
    if (rc < 0)
        return -EINVAL; /* run.h: every failure of run_create is a configuration error */
    rc = run_attach(r, s->st, s->slot);
    /* segments are a runtime matter: never "configuration error" (stage_exit_code) */
    return rc == -EINVAL ? -EPROTO : rc;
}

static int on_run(void *app)
{
    stage_ready(); /* modules loaded, rings attached */
    log_info("worker", "worker running");
    int rc = run_loop(app);
    log_info("worker", "worker stopped");
    return rc;
}

static void on_destroy(void *app)
{
    run_destroy(app);
}

int main(int argc, char **argv)
{
    static const stage_def def = {STATS_WORKER, on_create, on_run, on_destroy};
    return stage_main(&def, argc, argv);
}
