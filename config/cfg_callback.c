/* cfg_callback: the `callbacks:` section (name -> shared object + function) and, for
 * `mqttflow check`, loading each module the way a worker will. */
#include "cfg_int.h"

#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mqttflow.h"
#include "pyshim.h"

static const cfg_field callback_fields[] = {
    {"module", CFG_F_PATH, offsetof(cfg_callback, module), NULL, CFG_REQUIRED, 0, 0, NULL},
    {"function", CFG_F_STR, offsetof(cfg_callback, function), NULL, CFG_REQUIRED, 0, 0, NULL},
};

/* Whether dlopen failed only because of a function of the callback API (common/mqttflow.h). */
static bool needs_worker_api(const char *err)
{
    static const char *const api[] = {"mf_emit", "mf_publish", "mf_log", "mf_param"};
    const char *u = strstr(err, "undefined symbol: ");
    if (!u)
        return false;
    u += strlen("undefined symbol: ");
    for (size_t i = 0; i < sizeof(api) / sizeof(api[0]); i++) {
        size_t n = strlen(api[i]);
        if (!strncmp(u, api[i], n) && (u[n] == 0 || u[n] == ' ' || u[n] == ','))
            return true;
    }
    return false;
}

/* dlopen with RTLD_LOCAL so that checking several modules cannot make one resolve symbols of
 * another (the worker loads them the same way); RTLD_NOW so that an unresolved symbol shows
 * up here and not in the middle of a message. */
static void check_module(cfg_ctx *x, const cfg_callback *cb, const cfg_node *m)
{
    const cfg_node *mod = cfg_node_get(m, "module"), *fn = cfg_node_get(m, "function");
    size_t old = cfg_path_key(x, "module");
    dlerror();
    void *h = dlopen(cb->module, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        if (e && needs_worker_api(e)) {
            /* The module calls mf_emit & co., which the worker executable exports and this
             * process (the CLI) does not: the first one stops RTLD_NOW. Binding lazily lets
             * the rest be checked; the cost is that another unresolved function would only
             * show up when the worker loads the module (it uses RTLD_NOW and refuses it). */
            h = dlopen(cb->module, RTLD_LAZY | RTLD_LOCAL);
            e = h ? NULL : dlerror();
        }
        if (!h) {
            cfg_err(x, mod, "cannot load module: %s", e ? e : "unknown dlopen error");
            cfg_path_pop(x, old);
            return;
        }
    }
    const int *ver = dlsym(h, "mf_api_version");
    if (!ver)
        cfg_err(x, mod, "%s does not export mf_api_version (build it with #include \"mqttflow.h\")",
                cb->module);
    else if (*ver != MF_API_VERSION)
        cfg_err(x, mod, "%s was built for callback API version %d, this mqttflow has %d",
                cb->module, *ver, MF_API_VERSION);
    cfg_path_pop(x, old);
    if (!dlsym(h, cb->function)) {
        old = cfg_path_key(x, "function");
        cfg_err(x, fn, "function \"%s\" not found in %s", cb->function, cb->module);
        cfg_path_pop(x, old);
    }
    dlclose(h);
}

void cfg_callbacks_load(cfg_ctx *x, const cfg_node *map)
{
    cfg *c = x->c;
    size_t old = cfg_path_key(x, "callbacks");
    if (map->type != CFG_NODE_MAP) {
        cfg_err(x, map, "expected a mapping of name -> {module, function}, got %s",
                cfg_node_kind(map));
        goto out;
    }
    if (map->n / 2 > CFG_MAX_CALLBACKS) {
        cfg_err(x, map, "%zu callbacks, more than the limit of %d", map->n / 2, CFG_MAX_CALLBACKS);
        goto out;
    }
    c->callbacks = calloc(map->n / 2 + 1, sizeof(*c->callbacks));
    if (!c->callbacks) {
        cfg_err(x, map, "out of memory");
        goto out;
    }
    for (size_t i = 0; i + 1 < map->n; i += 2) {
        const cfg_node *k = map->items[i], *v = map->items[i + 1];
        cfg_callback *cb = &c->callbacks[c->n_callbacks++];
        cb->pos = k->pos;
        size_t o2 = cfg_path_key(x, k->str);
        if (!(cb->name = strdup(k->str))) {
            cfg_err(x, k, "out of memory");
            cfg_path_pop(x, o2);
            continue;
        }
        bool ok = cfg_schema_decode(x, v, callback_fields, CFG_NFIELDS(callback_fields), cb, false);
        if (ok && cb->function && !*cb->function) {
            size_t o3 = cfg_path_key(x, "function");
            cfg_err(x, cfg_node_get(v, "function"), "must not be empty");
            cfg_path_pop(x, o3);
            ok = false;
        }
        const cfg_node *mn = cfg_node_get(v, "module");
        if (ok && cb->module && mn && pyshim_is_python(mn->str)) {
            /* Python (common/pyshim.h): a dotted name is kept as written (it is imported, not
             * opened); imports are checked by cfg_python_check once runtime.python is known */
            cb->python = 1;
            size_t ml = strlen(mn->str);
            if (ml < 3 || strcmp(mn->str + ml - 3, ".py") != 0) {
                free(cb->module);
                if (!(cb->module = strdup(mn->str)))
                    cfg_err(x, mn, "out of memory");
                cfg_path_pop(x, o2);
                continue;
            }
        }
        if (ok && cb->module && !(x->flags & CFG_LOAD_CONTROL)) {
            struct stat st;
            int sr = stat(cb->module, &st) < 0 ? -errno : 0;
            if (sr < 0 || !S_ISREG(st.st_mode)) {
                size_t o3 = cfg_path_key(x, "module");
                cfg_err(x, cfg_node_get(v, "module"), "module file %s %s", cb->module,
                        sr == -ENOENT ? "does not exist"
                        : sr < 0      ? strerror(-sr)
                                      : "is not a regular file");
                cfg_path_pop(x, o3);
            } else if ((x->flags & CFG_LOAD_CHECK_MODULES) && cb->function && !cb->python) {
                check_module(x, cb, v);
            }
        }
        cfg_path_pop(x, o2);
    }
out:
    cfg_path_pop(x, old);
}
