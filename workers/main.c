/* mqttflow-worker CONFIG WORKER_INDEX: runs the callbacks and chains of the rules the router
 * gives this worker (see workers/run.h). Only wiring here. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "exitcode.h"
#include "log.h"
#include "run.h"
#include "stage.h"

static void set_log_levels(const cfg *c)
{
    log_set_default(c->logging.default_level);
    /* components of this process: "worker" (alias "workers") and "callbacks" (mf_log) */
    for (size_t i = 0; i < c->logging.n_levels; i++) {
        const char *comp = c->logging.levels[i].key;
        int lvl = log_parse_level(c->logging.levels[i].value);
        if (lvl < 0)
            continue;
        log_set_level(strcmp(comp, "workers") == 0 ? "worker" : comp, lvl);
    }
}

int main(int argc, char **argv)
{
    char pname[32];
    char *end;
    cfg *c = NULL;
    cfg_diag diag = {0};
    run *r = NULL;
    int code = MF_EXIT_FAILED;

    if (argc != 3) {
        fprintf(stderr, "usage: mqttflow-worker CONFIG WORKER_INDEX\n");
        return MF_EXIT_CONFIG;
    }
    errno = 0;
    unsigned long w = strtoul(argv[2], &end, 10);
    if (errno || end == argv[2] || *end || w >= CFG_MAX_WORKERS) {
        fprintf(stderr, "mqttflow-worker: bad worker index \"%s\"\n", argv[2]);
        return MF_EXIT_CONFIG;
    }
    snprintf(pname, sizeof(pname), "worker %lu", w);
    if (stage_init(pname) < 0)
        return MF_EXIT_FAILED;

    int rc = cfg_load(argv[1], 0, &c, &diag);
    for (size_t i = 0; i < diag.n_errors; i++)
        log_error("worker", "%s", diag.errors[i]);
    cfg_diag_fini(&diag);
    if (rc < 0) {
        log_error("worker", "cannot load %s: %s", argv[1], strerror(-rc));
        return MF_EXIT_CONFIG;
    }
    set_log_levels(c);
    if (w >= (unsigned long)c->runtime.workers) {
        log_error("worker", "worker index %lu but runtime.workers is %d", w, c->runtime.workers);
        code = MF_EXIT_CONFIG;
        goto out;
    }
    if (run_create(c, w, &r) < 0) {
        code = MF_EXIT_CONFIG; /* modules or chains: respawning would fail the same way */
        goto out;
    }
    if (run_attach(r) < 0)
        goto out;
    if (c->runtime.n_cpu_workers)
        stage_pin(c->runtime.cpu_workers[w % c->runtime.n_cpu_workers]);
    stage_ready();
    log_info("worker", "worker %lu running", w);
    if (run_loop(r) == 0)
        code = MF_EXIT_OK;
    log_info("worker", "worker %lu stopped", w);
out:
    run_destroy(r);
    cfg_destroy(c);
    return code;
}
