/* mqttflow-relay CONFIG: the relay stage (DESIGN §1, §5). Wires modules only: runs the pump
 * (relay/pump.h: it attaches every worker's output ring) until SIGTERM and the drain. The
 * skeleton of every stage (config, stats slot, exit codes, signals) is common/stage.h's
 * stage_main. */
#include <errno.h>
#include <string.h>

#include "exitcode.h"
#include "log.h"
#include "pump.h"
#include "stage.h"

static void on_destroy(void *app)
{
    pump_destroy(app);
}

static int on_create(const stage *s, void **app)
{
    pump *p = NULL;
    int rc = pump_create(s->conf, s->slot, &p);
    if (rc != 0) {
        log_error("relay", "cannot set up the relay: %s", strerror(-rc));
        return rc;
    }
    pump_watch_taps(p, s->st);
    *app = p;
    return 0;
}

static int on_run(void *app)
{
    return pump_run(app) == MF_EXIT_OK ? 0 : -EIO; /* the pump reports ready itself */
}

int main(int argc, char **argv)
{
    static const stage_def def = {STATS_RELAY, on_create, on_run, on_destroy};
    return stage_main(&def, argc, argv);
}
