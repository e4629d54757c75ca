/* mqttflow-relay CONFIG: the relay stage (DESIGN §1, §5). Wires modules only: loads the
 * config, attaches every worker's output ring as consumer and the stats segment, then runs
 * the pump (relay/pump.h) until SIGTERM and the drain. Exit codes: common/exitcode.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "exitcode.h"
#include "log.h"
#include "names.h"
#include "pump.h"
#include "ring.h"
#include "shm.h"
#include "stage.h"
#include "stats.h"

#define COMP "relay"

static void apply_logging(const cfg *c)
{
    log_set_default(c->logging.default_level);
    for (size_t i = 0; i < c->logging.n_levels; i++) {
        int lv = log_parse_level(c->logging.levels[i].value);
        if (lv >= 0)
            log_set_level(c->logging.levels[i].key, lv);
    }
}

int main(int argc, char **argv)
{
    int code = MF_EXIT_FAILED, rc;
    cfg *c = NULL;
    cfg_diag diag = {0};
    stats *st = NULL;
    stats_slot *slot = NULL;
    ring **rings = NULL;
    size_t n_rings = 0;
    pump *p = NULL;
    char name[SHM_NAME_MAX];

    if (argc != 2) {
        fprintf(stderr, "usage: %s CONFIG\n", argv[0]);
        return MF_EXIT_CONFIG;
    }
    if ((rc = stage_init("relay")) != 0) {
        log_error(COMP, "stage_init: %s", strerror(-rc));
        return MF_EXIT_FAILED;
    }
    rc = cfg_load(argv[1], 0, &c, &diag);
    if (rc) {
        for (size_t i = 0; i < diag.n_errors; i++)
            log_error(COMP, "%s", diag.errors[i]);
        log_error(COMP, "cannot load %s: %s", argv[1], strerror(-rc));
        cfg_diag_fini(&diag);
        return rc == -EINVAL ? MF_EXIT_CONFIG : MF_EXIT_FAILED;
    }
    cfg_diag_fini(&diag);
    apply_logging(c);

    if ((rc = names_stats(name, sizeof(name), c->runtime.instance)) != 0 ||
        (rc = stats_attach(name, &st)) != 0) {
        log_error(COMP, "stats_attach(%s): %s", name, strerror(-rc));
        goto out;
    }
    size_t idx = stats_slot_index(STATS_RELAY, 0, cfg_ingress_count(c));
    if (idx >= stats_slot_count(st)) {
        log_error(COMP, "stats segment %s has %zu slots, the relay's is %zu", name,
                  stats_slot_count(st), idx);
        goto out;
    }
    slot = stats_slot_at(st, idx);
    stats_set(&slot->pid, (uint64_t)getpid());

    rings = calloc((size_t)c->runtime.workers, sizeof(*rings));
    if (!rings) {
        log_error(COMP, "out of memory");
        goto out;
    }
    for (; n_rings < (size_t)c->runtime.workers; n_rings++) {
        if ((rc = names_worker_out(name, sizeof(name), c->runtime.instance, n_rings)) != 0 ||
            (rc = ring_attach(name, RING_CONSUMER, &rings[n_rings])) != 0) {
            log_error(COMP, "ring_attach(%s, consumer): %s", name, strerror(-rc));
            goto out;
        }
    }
    stage_pin(c->runtime.cpu_relay);

    if ((rc = pump_create(c, rings, n_rings, slot, &p)) != 0) {
        log_error(COMP, "cannot set up the relay: %s", strerror(-rc));
        code = rc == -EINVAL ? MF_EXIT_CONFIG : MF_EXIT_FAILED;
        goto out;
    }
    pump_watch_taps(p, st);
    code = pump_run(p);

out:
    pump_destroy(p);
    for (size_t i = 0; i < n_rings; i++)
        ring_detach(rings[i]);
    free(rings);
    if (slot)
        stats_set(&slot->pid, 0);
    stats_detach(st);
    cfg_destroy(c);
    return code;
}
