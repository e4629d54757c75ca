/* mqttflow-router CONFIG: reads every ingress ring, matches rules, copies each message to the
 * worker(s) that must run it (see router/route.h). Only wiring here. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cfg.h"
#include "exitcode.h"
#include "log.h"
#include "route.h"
#include "stage.h"

static void set_log_levels(const cfg *c)
{
    log_set_default(c->logging.default_level);
    for (size_t i = 0; i < c->logging.n_levels; i++) {
        int lvl = log_parse_level(c->logging.levels[i].value);
        if (lvl >= 0)
            log_set_level(c->logging.levels[i].key, lvl);
    }
}

int main(int argc, char **argv)
{
    cfg *c = NULL;
    cfg_diag diag = {0};
    route *r = NULL;
    int code = MF_EXIT_FAILED, rc;

    if (argc != 2) {
        fprintf(stderr, "usage: mqttflow-router CONFIG\n");
        return MF_EXIT_CONFIG;
    }
    if (stage_init("router") < 0)
        return MF_EXIT_FAILED;
    rc = cfg_load(argv[1], 0, &c, &diag);
    for (size_t i = 0; i < diag.n_errors; i++)
        log_error("router", "%s", diag.errors[i]);
    cfg_diag_fini(&diag);
    if (rc < 0) {
        log_error("router", "cannot load %s: %s", argv[1], strerror(-rc));
        return MF_EXIT_CONFIG;
    }
    set_log_levels(c);
    rc = route_create(c, &r);
    if (rc < 0) {
        /* a rule that does not compile fails the same way on every respawn */
        code = rc == -EINVAL ? MF_EXIT_CONFIG : MF_EXIT_FAILED;
        goto out;
    }
    stage_pin(c->runtime.cpu_router);
    stage_ready();
    if (route_run(r) == 0)
        code = MF_EXIT_OK;
out:
    route_destroy(r);
    cfg_destroy(c);
    return code;
}
