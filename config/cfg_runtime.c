/* cfg_runtime: the `runtime:` and `logging:` sections (process layout, limits, paths). */
#include "cfg_int.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "privdir.h"

static const cfg_enum_name overflows[] = {
    {"block", CFG_OVERFLOW_BLOCK},
    {"drop", CFG_OVERFLOW_DROP},
    {NULL, 0},
};
_Static_assert(sizeof(enum cfg_overflow) == sizeof(int), "CFG_F_ENUM stores an int");
static const cfg_enum_name mqtt_ios[] = {
    {"auto", CFG_MQTT_IO_AUTO},
    {"paho", CFG_MQTT_IO_PAHO},
    {NULL, 0},
};
_Static_assert(sizeof(enum cfg_mqtt_io) == sizeof(int), "CFG_F_ENUM stores an int");

#define F(key, type, field, def, ...)                                                              \
    {                                                                                              \
        key, type, offsetof(cfg_runtime, field), def, __VA_ARGS__                                  \
    }
#define BIG 1e18

static const cfg_field runtime_fields[] = {
    F("instance", CFG_F_STR, instance, "default", 0, 0, 0, NULL),
    F("workers", CFG_F_INT, workers, "2", 0, 1, CFG_MAX_WORKERS, NULL),
    F("cpus", CFG_F_ANY, workers, NULL, 0, 0, 0, NULL),
    F("ring_size", CFG_F_SIZE, ring_size, "4MiB", 0, 65536, 1ull << 30, NULL),
    F("max_payload", CFG_F_SIZE, max_payload, "256KiB", 0, 1, 256ull << 20, NULL),
    F("max_attempts", CFG_F_INT, max_attempts, "3", 0, 1, 1000, NULL),
    F("callback_timeout_ms", CFG_F_INT, callback_timeout_ms, "5000", 0, 0, 3600000, NULL),
    F("overflow", CFG_F_ENUM, overflow, "block", 0, 0, 0, overflows),
    F("spool_dir", CFG_F_PATH, spool_dir, NULL, 0, 0, 0, NULL),
    F("dead_letter", CFG_F_ANY, workers, NULL, 0, 0, 0, NULL),
    F("control_socket", CFG_F_PATH, control_socket, NULL, 0, 0, 0, NULL),
    F("stats_interval", CFG_F_DURATION, stats_interval, "0", 0, 0, 86400, NULL),
    F("spool_max_bytes", CFG_F_SIZE, spool_max_bytes, "1GiB", 0, 1, BIG, NULL),
    F("metrics", CFG_F_ANY, workers, NULL, 0, 0, 0, NULL),
    F("python", CFG_F_ANY, workers, NULL, 0, 0, 0, NULL),
    F("mqtt_io", CFG_F_ENUM, mqtt_io, "auto", 0, 0, 0, mqtt_ios),
    F("relay", CFG_F_ANY, workers, NULL, 0, 0, 0, NULL),
    F("ingress_coalesce_us", CFG_F_INT, ingress_coalesce_us, "500", 0, 0, 100000, NULL),
};

/* runtime.relay: the relay's flow-control knobs (relay/pump.h says what each costs); decoded
 * even when the section is absent so the defaults live here only. */
static const cfg_field relay_fields[] = {
    F("outstanding", CFG_F_INT, relay_outstanding, "256", 0, 1, CFG_RELAY_OUTSTANDING_MAX, NULL),
    F("drain_batch", CFG_F_INT, relay_drain_batch, "128", 0, 1, CFG_RELAY_DRAIN_BATCH_MAX, NULL),
};

static const cfg_field metrics_fields[] = {
    F("listen", CFG_F_STR, metrics_listen, NULL, 0, 0, 0, NULL),
};

/* "HOST:PORT" or "[V6]:PORT" with a port 1..65535; the host is resolved when the supervisor
 * starts (a name that does not resolve then is a start-up error, not a config one). */
static bool listen_ok(const char *s)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || (s[0] == '[' && colon[-1] != ']'))
        return false;
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    return colon[1] != '\0' && *end == '\0' && port >= 1 && port <= 65535;
}

static const cfg_field dead_letter_fields[] = {
    F("dir", CFG_F_PATH, dead_letter_dir, NULL, 0, 0, 0, NULL),
    F("topic", CFG_F_STR, dead_letter_topic, NULL, 0, 0, 0, NULL),
    F("client_id", CFG_F_NAME, dead_letter_client, NULL, 0, 0, 0, NULL),
};

typedef struct cpus {
    int ingress, router, relay, supervisor;
} cpus;
static const cfg_field cpu_fields[] = {
    {"ingress", CFG_F_INT, offsetof(cpus, ingress), NULL, 0, 0, 4095, NULL},
    {"router", CFG_F_INT, offsetof(cpus, router), NULL, 0, 0, 4095, NULL},
    {"relay", CFG_F_INT, offsetof(cpus, relay), NULL, 0, 0, 4095, NULL},
    {"supervisor", CFG_F_INT, offsetof(cpus, supervisor), NULL, 0, 0, 4095, NULL},
    {"workers", CFG_F_ANY, 0, NULL, 0, 0, 0, NULL},
};

static void load_cpus(cfg_ctx *x, cfg_runtime *rt, const cfg_node *m)
{
    cpus cp = {-1, -1, -1, -1};
    size_t old = cfg_path_key(x, "cpus");
    if (!cfg_schema_decode(x, m, cpu_fields, CFG_NFIELDS(cpu_fields), &cp, false))
        goto out;
    rt->cpu_ingress = cp.ingress;
    rt->cpu_router = cp.router;
    rt->cpu_relay = cp.relay;
    rt->cpu_supervisor = cp.supervisor;
    const cfg_node *w = cfg_node_get(m, "workers");
    if (!w)
        goto out;
    size_t o2 = cfg_path_key(x, "workers");
    size_t n = w->type == CFG_NODE_SEQ ? w->n : 1;
    if (w->type == CFG_NODE_MAP || n == 0 || n > CFG_MAX_WORKERS) {
        cfg_err(x, w, "expected a CPU number or a list of 1..%d CPU numbers", CFG_MAX_WORKERS);
    } else if (!(rt->cpu_workers = calloc(n, sizeof(int)))) {
        cfg_err(x, w, "out of memory");
    } else {
        for (size_t i = 0; i < n; i++) {
            const cfg_node *item = w->type == CFG_NODE_SEQ ? w->items[i] : w;
            char *end = NULL;
            long v = item->type == CFG_NODE_SCALAR ? strtol(item->str, &end, 10) : -1;
            if (!end || end == item->str || *end || v < 0 || v > 4095) {
                size_t o3 = w->type == CFG_NODE_SEQ ? cfg_path_index(x, i) : x->plen;
                cfg_err(x, item, "expected a CPU number 0..4095");
                cfg_path_pop(x, o3);
                continue;
            }
            rt->cpu_workers[rt->n_cpu_workers++] = (int)v;
        }
    }
    cfg_path_pop(x, o2);
out:
    cfg_path_pop(x, old);
}

static bool instance_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 32)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
            return false;
    return true;
}

static char *default_path(cfg_ctx *x, const cfg_node *m, const char *instance, const char *leaf)
{
    char base[PATH_MAX], *p;
    int rc = privdir_default_state(instance, base, sizeof(base));
    if (rc) {
        cfg_err(x, m, "no default for %s: %s (set it)", leaf, strerror(-rc));
        return NULL;
    }
    if (asprintf(&p, "%s/%s", base, leaf) < 0) {
        cfg_err(x, m, "out of memory");
        return NULL;
    }
    return p;
}

/* A spool or dead-letter folder: the checks privdir_open makes at run time (a directory of
 * our own, no planted links, no one else can write it), so `check` refuses what `run` would.
 * Skipped for status/stop (CFG_LOAD_CONTROL): the operator may not be the service's user. */
static void check_dir(cfg_ctx *x, const cfg_node *m, const char *key, const char *dir)
{
    char why[PATH_MAX + 256];
    if (!dir || (x->flags & CFG_LOAD_CONTROL) || privdir_check(dir, why, sizeof(why)) == 0)
        return;
    const cfg_node *v = cfg_node_get(m, key);
    size_t o2 = cfg_path_key(x, key);
    cfg_err(x, v ? v : m, "%s", why);
    cfg_path_pop(x, o2);
}

/* Records left under the defaults of earlier versions (/var/tmp/mqttflow/<instance>/...) are
 * named at every check and start until moved: a world-writable parent is not a place to move
 * them from automatically (what is there may not be ours), and a silent orphan loses them. */
static void warn_old_default(cfg_ctx *x, const cfg_node *m, const char *instance, const char *leaf,
                             const char *now)
{
    char old[PATH_MAX];
    snprintf(old, sizeof(old), "/var/tmp/mqttflow/%s/%s", instance, leaf);
    DIR *d = opendir(old);
    if (!d)
        return;
    bool used = false;
    for (struct dirent *e; !used && (e = readdir(d));)
        used = strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    if (used)
        cfg_warn(x, m,
                 "%s holds %s of an earlier version (the old default folder); stop the "
                 "instance, check the files are yours, then move them: mv %s/* %s/",
                 old, !strcmp(leaf, "dead") ? "dead letters" : "spooled records", old, now);
}

/* ring_size must be a power of two, and a record must fit the ring several times over. */
static void check_ring(cfg_ctx *x, const cfg_node *m, cfg_runtime *rt)
{
    const cfg_node *v;
    if (rt->ring_size & (rt->ring_size - 1)) {
        cfg_err_key(x, m, "ring_size", "%zu is not a power of two (try %zu)", rt->ring_size,
                    (size_t)1 << (64 - __builtin_clzll(rt->ring_size)));
    } else if (rt->max_payload > rt->ring_size / 4) {
        /* a record must fit a ring several times over or one message stalls the pipeline
         * (ring.h: records <= capacity / 4). A default that does not fit a small ring shrinks
         * with it; a value the user wrote is an error. */
        if ((v = cfg_node_get(m, "max_payload"))) {
            size_t o2 = cfg_path_key(x, "max_payload");
            cfg_err(x, v, "%zu bytes is more than a quarter of ring_size (%zu)", rt->max_payload,
                    rt->ring_size);
            cfg_path_pop(x, o2);
        } else {
            rt->max_payload = rt->ring_size / 4;
        }
    }
}

/* runtime.dead_letter: where dead letters are also published, if anywhere. */
static void load_dead_letter(cfg_ctx *x, cfg_runtime *rt, const cfg_node *v)
{
    size_t o2 = cfg_path_key(x, "dead_letter");
    if (cfg_schema_decode(x, v, dead_letter_fields, CFG_NFIELDS(dead_letter_fields), rt, false)) {
        rt->dead_letter_client = cfg_resolve_client(x, v, "client_id");
        const cfg_node *t = cfg_node_get(v, "topic");
        if (rt->dead_letter_topic && !cfg_topic_name_is_valid(rt->dead_letter_topic)) {
            size_t o3 = cfg_path_key(x, "topic");
            cfg_err(x, t, "\"%s\" is not a valid topic name (no + or # when publishing)",
                    rt->dead_letter_topic);
            cfg_path_pop(x, o3);
        }
        if (rt->dead_letter_topic && rt->dead_letter_client < 0 && !cfg_node_get(v, "client_id"))
            cfg_err(x, v, "a dead_letter topic needs client_id (the client to publish on)");
    }
    cfg_path_pop(x, o2);
}

/* runtime.metrics: the Prometheus listener. */
static void load_metrics(cfg_ctx *x, cfg_runtime *rt, const cfg_node *v)
{
    size_t o2 = cfg_path_key(x, "metrics");
    if (cfg_schema_decode(x, v, metrics_fields, CFG_NFIELDS(metrics_fields), rt, false) &&
        rt->metrics_listen && !listen_ok(rt->metrics_listen)) {
        cfg_err_key(x, v, "listen",
                    "\"%s\" is not HOST:PORT (e.g. \"127.0.0.1:9464\", \"[::1]:9464\")",
                    rt->metrics_listen);
    }
    cfg_path_pop(x, o2);
}

/* spool_dir and the dead-letter folder: defaults per instance, and room below them. */
static void load_dirs(cfg_ctx *x, const cfg_node *m, cfg_runtime *rt)
{
    if (!rt->spool_dir && (rt->spool_dir = default_path(x, m, rt->instance, "spool")) &&
        !(x->flags & CFG_LOAD_CONTROL))
        warn_old_default(x, m, rt->instance, "spool", rt->spool_dir);
    if (!rt->dead_letter_dir && (rt->dead_letter_dir = default_path(x, m, rt->instance, "dead")) &&
        !(x->flags & CFG_LOAD_CONTROL))
        warn_old_default(x, m, rt->instance, "dead", rt->dead_letter_dir);
    check_dir(x, m, "spool_dir", rt->spool_dir);
    if (rt->spool_dir && strlen(rt->spool_dir) > PATH_MAX - NAME_MAX - 2) {
        /* the relay adds /<client folder> (up to NAME_MAX) below it */
        const cfg_node *sd = cfg_node_get(m, "spool_dir");
        size_t o2 = cfg_path_key(x, "spool_dir");
        cfg_err(x, sd ? sd : m, "the path is %zu bytes, more than %d", strlen(rt->spool_dir),
                PATH_MAX - NAME_MAX - 2);
        cfg_path_pop(x, o2);
    }
    const cfg_node *dl = cfg_node_get(m, "dead_letter");
    if (dl && dl->type == CFG_NODE_MAP) {
        size_t o2 = cfg_path_key(x, "dead_letter");
        check_dir(x, dl, "dir", rt->dead_letter_dir);
        cfg_path_pop(x, o2);
    } else {
        check_dir(x, m, "dead_letter", rt->dead_letter_dir);
    }
}

/* control_socket: a default per instance, and a path a Unix socket can bind. */
static void load_control_socket(cfg_ctx *x, const cfg_node *m, cfg_runtime *rt)
{
    if (!rt->control_socket) {
        char dir[PATH_MAX];
        int rc = privdir_default_runtime(dir, sizeof(dir));
        if (rc < 0)
            cfg_err(x, m, "no default for control_socket: %s (set it)", strerror(-rc));
        else if (asprintf(&rt->control_socket, "%s/mqttflow-%s.sock", dir, rt->instance) < 0)
            rt->control_socket = NULL;
        if (rc == 0 && !rt->control_socket)
            cfg_err(x, m, "out of memory");
    }
    /* sockaddr_un holds 108 bytes with the NUL: a longer path cannot be bound, and `run`
     * found out only after creating its segments */
    if (rt->control_socket && strlen(rt->control_socket) > CFG_SOCKET_PATH_MAX) {
        const cfg_node *cs = cfg_node_get(m, "control_socket");
        const char *how = cs ? "" : " (the default under $XDG_RUNTIME_DIR; set control_socket)";
        size_t o2 = cfg_path_key(x, "control_socket");
        cfg_err(x, cs ? cs : m,
                "the path is %zu bytes, more than the %d a Unix socket path can hold%s",
                strlen(rt->control_socket), CFG_SOCKET_PATH_MAX, how);
        cfg_path_pop(x, o2);
    }
}

void cfg_runtime_load(cfg_ctx *x, const cfg_node *m)
{
    cfg_runtime *rt = &x->c->runtime;
    rt->cpu_ingress = rt->cpu_router = rt->cpu_relay = rt->cpu_supervisor = -1;
    rt->dead_letter_client = -1;
    size_t old = cfg_path_key(x, "runtime");
    /* an absent section still gets every default: decode an empty mapping */
    cfg_node empty = {.type = CFG_NODE_MAP, .pos = {1, 1}};
    if (!m)
        m = &empty;
    if (!cfg_schema_decode(x, m, runtime_fields, CFG_NFIELDS(runtime_fields), rt, false))
        goto out;
    const cfg_node *v;
    if (!instance_ok(rt->instance)) {
        cfg_err_key(x, m, "instance",
                    "\"%s\" is not a valid instance name (1 to 32 of A-Z a-z 0-9 _ -)",
                    rt->instance);
    }
    check_ring(x, m, rt);
    if ((v = cfg_node_get(m, "cpus")))
        load_cpus(x, rt, v);
    if ((v = cfg_node_get(m, "python")))
        cfg_python_load(x, rt, v);
    if ((v = cfg_node_get(m, "dead_letter")))
        load_dead_letter(x, rt, v);
    {
        const cfg_node *r = cfg_node_get(m, "relay");
        size_t o2 = cfg_path_key(x, "relay");
        cfg_schema_decode(x, r ? r : &empty, relay_fields, CFG_NFIELDS(relay_fields), rt, false);
        cfg_path_pop(x, o2);
    }
    if ((v = cfg_node_get(m, "metrics")))
        load_metrics(x, rt, v);
    load_dirs(x, m, rt);
    load_control_socket(x, m, rt);
out:
    cfg_path_pop(x, old);
}

void cfg_runtime_fini(cfg_runtime *rt)
{
    free(rt->instance);
    free(rt->cpu_workers);
    free(rt->spool_dir);
    free(rt->dead_letter_dir);
    free(rt->dead_letter_topic);
    free(rt->control_socket);
    free(rt->metrics_listen);
    cfg_python_fini(rt);
}

/* ---- logging ---- */

static void add_level(cfg_ctx *x, const cfg_node *k, const cfg_node *v)
{
    cfg_logging *lg = &x->c->logging;
    size_t old = cfg_path_key(x, k->str);
    if (v->type != CFG_NODE_SCALAR || log_parse_level(v->str) < 0) {
        cfg_err(x, v, "expected DEBUG, INFO, WARNING or ERROR, got %s%s%s",
                v->type == CFG_NODE_SCALAR ? "\"" : "",
                v->type == CFG_NODE_SCALAR ? v->str : cfg_node_kind(v),
                v->type == CFG_NODE_SCALAR ? "\"" : "");
        goto out;
    }
    cfg_param *nl = realloc(lg->levels, (lg->n_levels + 1) * sizeof(*nl));
    if (!nl) {
        cfg_err(x, v, "out of memory");
        goto out;
    }
    lg->levels = nl;
    cfg_param *p = &lg->levels[lg->n_levels++];
    p->key = strdup(k->str);
    p->value = strdup(v->str);
    if (!p->key || !p->value)
        cfg_err(x, v, "out of memory");
out:
    cfg_path_pop(x, old);
}

/* Components may be named directly under logging: (the Python framework's style) as well
 * as under levels:. */
static const cfg_field logging_keys[] = {
    {"default_level", CFG_F_ANY, 0, NULL, 0, 0, 0, NULL},
    {"level", CFG_F_ANY, 0, NULL, 0, 0, 0, NULL},
    {"levels", CFG_F_ANY, 0, NULL, 0, 0, 0, NULL},
    {"ingress", CFG_F_ANY, 0, NULL, 0, 0, 0, NULL},
    {"router", CFG_F_ANY, 0, NULL, 0, 0, 0, NULL},
    {"worker", CFG_F_ANY, 0, NULL, 0, 0, 0, NULL},
    {"workers", CFG_F_ANY, 0, NULL, 0, 0, 0, NULL},
    {"relay", CFG_F_ANY, 0, NULL, 0, 0, 0, NULL},
    {"supervisor", CFG_F_ANY, 0, NULL, 0, 0, 0, NULL},
    {"config", CFG_F_ANY, 0, NULL, 0, 0, 0, NULL},
    {"callbacks", CFG_F_ANY, 0, NULL, 0, 0, 0, NULL},
};
void cfg_logging_load(cfg_ctx *x, const cfg_node *m)
{
    cfg_logging *lg = &x->c->logging;
    lg->default_level = MF_LOG_INFO;
    if (!m)
        return;
    size_t old = cfg_path_key(x, "logging");
    if (!cfg_schema_decode(x, m, logging_keys, CFG_NFIELDS(logging_keys), lg, false))
        goto out;
    for (size_t i = 0; i + 1 < m->n; i += 2) {
        const cfg_node *k = m->items[i], *v = m->items[i + 1];
        if (cfg_node_is_null(v))
            continue;
        if (!strcmp(k->str, "default_level") || !strcmp(k->str, "level")) {
            size_t o2 = cfg_path_key(x, k->str);
            int lvl = v->type == CFG_NODE_SCALAR ? log_parse_level(v->str) : -1;
            if (lvl < 0)
                cfg_err(x, v, "expected DEBUG, INFO, WARNING or ERROR, got %s%s%s",
                        v->type == CFG_NODE_SCALAR ? "\"" : "",
                        v->type == CFG_NODE_SCALAR ? v->str : cfg_node_kind(v),
                        v->type == CFG_NODE_SCALAR ? "\"" : "");
            else
                lg->default_level = lvl;
            cfg_path_pop(x, o2);
        } else if (!strcmp(k->str, "levels")) {
            size_t o2 = cfg_path_key(x, "levels");
            if (v->type != CFG_NODE_MAP)
                cfg_err(x, v, "expected a mapping of component -> level, got %s", cfg_node_kind(v));
            else
                for (size_t j = 0; j + 1 < v->n; j += 2)
                    if (!cfg_node_is_null(v->items[j + 1]))
                        add_level(x, v->items[j], v->items[j + 1]);
            cfg_path_pop(x, o2);
        } else if (cfg_schema_has(logging_keys, CFG_NFIELDS(logging_keys), k->str)) {
            add_level(x, k, v); /* a component named directly; unknown keys are reported */
        }
    }
out:
    cfg_path_pop(x, old);
}

void cfg_logging_fini(cfg_logging *lg)
{
    for (size_t i = 0; i < lg->n_levels; i++) {
        free(lg->levels[i].key);
        free(lg->levels[i].value);
    }
    free(lg->levels);
}
