/* mqttflow-relay CONFIG: the relay stage (DESIGN §1, §5). Wires modules only: attaches every
 * worker's output ring as consumer, then runs the pump (relay/pump.h) until SIGTERM and the
 * drain. The skeleton of every stage (config, stats slot, exit codes, signals) is
 * common/stage.h's stage_main. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "exitcode.h"
#include "log.h"
#include "names.h"
#include "pump.h"
#include "ring.h"
#include "shm.h"
#include "stage.h"

typedef struct relay {
    ring **rings; /* worker w's output ring, consumer */
    size_t n_rings;
    pump *p;
} relay;

static void on_destroy(void *app)
{
    relay *rl = app;
    if (!rl)
        return;
    pump_destroy(rl->p);
    for (size_t i = 0; i < rl->n_rings; i++)
        ring_detach(rl->rings[i]);
    free(rl->rings);
    free(rl);
}

static int on_create(const stage *s, void **app)
{
    const cfg *c = s->conf;
    char name[SHM_NAME_MAX];
    int rc = -ENOMEM;
    relay *rl = calloc(1, sizeof(*rl));
    if (!rl || !(rl->rings = calloc((size_t)c->runtime.workers, sizeof(*rl->rings))))
        goto fail;
    for (; rl->n_rings < (size_t)c->runtime.workers; rl->n_rings++) {
        if ((rc = names_worker_out(name, sizeof(name), c->runtime.instance, rl->n_rings)) != 0 ||
            (rc = ring_attach(name, RING_CONSUMER, &rl->rings[rl->n_rings])) != 0) {
            log_error("relay", "ring_attach(%s, consumer): %s", name, strerror(-rc));
            goto fail;
        }
    }
    if ((rc = pump_create(c, rl->rings, rl->n_rings, s->slot, &rl->p)) != 0) {
        log_error("relay", "cannot set up the relay: %s", strerror(-rc));
        goto fail;
    }
    pump_watch_taps(rl->p, s->st);
    *app = rl;
    return 0;
fail:
    on_destroy(rl);
    return rc;
}

static int on_run(void *app)
{
    relay *rl = app;
    return pump_run(rl->p) == MF_EXIT_OK ? 0 : -EIO; /* the pump reports ready itself */
}

int main(int argc, char **argv)
{
    static const stage_def def = {STATS_RELAY, on_create, on_run, on_destroy};
    return stage_main(&def, argc, argv);
}
