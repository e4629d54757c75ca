/* stage_main: the skeleton every stage binary runs (stage.h). A file of its own beside
 * stage.c, so that a test that only needs the stop flag does not link the config loader. */
#include "stage.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exitcode.h"
#include "log.h"
#include "names.h"
#include "shm.h"

static size_t ingress_count(const cfg *c)
{
    return cfg_ingress_count(c);
}

static size_t worker_count(const cfg *c)
{
    return (size_t)c->runtime.workers;
}

static int cpu_ingress(const cfg *c, size_t i)
{
    (void)i;
    return c->runtime.cpu_ingress;
}

static int cpu_router(const cfg *c, size_t i)
{
    (void)i;
    return c->runtime.cpu_router;
}

static int cpu_worker(const cfg *c, size_t i)
{
    return c->runtime.n_cpu_workers ? c->runtime.cpu_workers[i % c->runtime.n_cpu_workers] : -1;
}

static int cpu_relay(const cfg *c, size_t i)
{
    (void)i;
    return c->runtime.cpu_relay;
}

/* An ingress's lines are named after its client, as the supervisor names it */
static void name_ingress(const cfg *c, size_t i, char *buf, size_t len)
{
    snprintf(buf, len, "ingress %.48s", c->clients[cfg_ingress_client(c, i)].client_id);
}

/* One row per stage kind (stats.h enum stats_stage). */
static const struct {
    const char *name;              /* process name and log component */
    const char *index_arg;         /* the second argument's name; NULL: none */
    const char *index_of;          /* what the index counts, for the error */
    size_t (*count)(const cfg *c); /* indexes below this are valid */
    int (*cpu)(const cfg *c, size_t idx);
    /* the process name once the config is loaded; NULL: keep "name [index]" */
    void (*rename)(const cfg *c, size_t idx, char *buf, size_t len);
} kinds[] = {
    [STATS_INGRESS] = {"ingress", "INGRESS_INDEX", "client(s) with topics", ingress_count,
                       cpu_ingress, name_ingress},
    [STATS_ROUTER] = {"router", NULL, NULL, NULL, cpu_router, NULL},
    [STATS_WORKER] = {"worker", "WORKER_INDEX", "worker(s) (runtime.workers)", worker_count,
                      cpu_worker, NULL},
    [STATS_RELAY] = {"relay", NULL, NULL, NULL, cpu_relay, NULL},
};

int stage_exit_code(int rc)
{
    return rc == -EINVAL ? MF_EXIT_CONFIG : MF_EXIT_FAILED;
}

static void apply_logging(const cfg *c)
{
    log_set_default(c->logging.default_level);
    for (size_t i = 0; i < c->logging.n_levels; i++) {
        const char *comp = c->logging.levels[i].key;
        int lv = log_parse_level(c->logging.levels[i].value);
        if (lv < 0)
            continue;
        log_set_level(comp, lv);
        /* the worker's component is "worker"; "workers" (the config's section) means it too */
        if (strcmp(comp, "workers") == 0)
            log_set_level("worker", lv);
    }
}

static int load_config(const char *comp, const char *path, cfg **out)
{
    cfg_diag diag = {0};
    int rc = cfg_load(path, 0, out, &diag);
    for (size_t i = 0; i < diag.n_errors; i++)
        log_error(comp, "%s", diag.errors[i]);
    cfg_diag_fini(&diag);
    if (rc == 0)
        return 0;
    log_error(comp, "cannot load %s: %s", path, strerror(-rc));
    /* stage.h: a shortage may pass; anything else a respawn meets again */
    return rc == -ENOMEM || rc == -EMFILE || rc == -ENFILE ? MF_EXIT_FAILED : MF_EXIT_CONFIG;
}

/* The stage's slot of the instance's stats segment; MF_EXIT_FAILED when there is none. */
static int attach_stats(const char *comp, enum stats_stage kind, stage *s)
{
    char name[SHM_NAME_MAX];
    int rc = names_stats(name, sizeof(name), s->conf->runtime.instance);
    if (rc == 0)
        rc = stats_attach(name, &s->st);
    if (rc < 0) {
        log_error(comp, "stats_attach(%s): %s", name, strerror(-rc));
        return MF_EXIT_FAILED;
    }
    size_t idx = stats_slot_index(kind, s->index, cfg_ingress_count(s->conf));
    s->slot = stats_slot_at(s->st, idx);
    if (!s->slot) {
        log_error(comp, "stats segment %s has %zu slots, %s %zu needs slot %zu", name,
                  stats_slot_count(s->st), comp, s->index, idx);
        return MF_EXIT_FAILED;
    }
    stats_set(&s->slot->pid, (uint64_t)getpid());
    return 0;
}

/* The index argument: a number below the kind's count in the config. */
static int parse_index(const char *comp, const char *arg, size_t count, const char *what,
                       size_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(arg, &end, 10);
    if (errno || end == arg || *end || arg[0] == '-' || v >= count) {
        log_error(comp, "%s index \"%s\": the config has %zu %s", comp, arg, count, what);
        return MF_EXIT_CONFIG;
    }
    *out = (size_t)v;
    return 0;
}

int stage_main(const stage_def *d, int argc, char **argv)
{
    const char *comp = kinds[d->kind].name;
    int indexed = kinds[d->kind].index_arg != NULL;
    stage s = {0};
    cfg *conf = NULL;
    void *app = NULL;
    char pname[64];
    int code, rc;

    if (argc != 2 + indexed) {
        fprintf(stderr, "usage: %s CONFIG%s%s\n", argv[0], indexed ? " " : "",
                indexed ? kinds[d->kind].index_arg : "");
        return MF_EXIT_CONFIG;
    }
    snprintf(pname, sizeof(pname), "%s%s%.20s", comp, indexed ? " " : "", indexed ? argv[2] : "");
    if ((rc = stage_init(pname)) < 0) {
        log_error(comp, "stage_init: %s", strerror(-rc));
        return MF_EXIT_FAILED;
    }
    if ((code = load_config(comp, argv[1], &conf)) != 0)
        return code;
    s.conf = conf;
    apply_logging(conf);
    if (indexed && (code = parse_index(comp, argv[2], kinds[d->kind].count(conf),
                                       kinds[d->kind].index_of, &s.index)) != 0)
        goto out;
    if (kinds[d->kind].rename) {
        kinds[d->kind].rename(conf, s.index, pname, sizeof(pname));
        log_init(pname); /* no thread runs yet */
    }
    if ((code = attach_stats(comp, d->kind, &s)) != 0)
        goto out;
    /* before create: the threads it starts (the MQTT library's, the watchdog) inherit it */
    stage_pin(kinds[d->kind].cpu(conf, s.index));
    if ((rc = d->create(&s, &app)) < 0) {
        code = stage_exit_code(rc);
        goto out;
    }
    code = d->run(app) == 0 ? MF_EXIT_OK : MF_EXIT_FAILED;
out:
    d->destroy(app);
    if (s.slot)
        stats_set(&s.slot->pid, 0);
    stats_detach(s.st);
    cfg_destroy(conf);
    return code;
}
