/* cfg_callback: the `callbacks:` section (name -> shared object + function) and, for
 * `mqttflow check`, loading each module the way a worker will. */
#include "cfg_int.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cbmodule.h"
#include "mqttflow.h"
#include "pyshim.h"

static const cfg_field callback_fields[] = {
    {"module", CFG_F_PATH, offsetof(cfg_callback, module), NULL, CFG_REQUIRED, 0, 0, NULL},
    {"function", CFG_F_STR, offsetof(cfg_callback, function), NULL, CFG_REQUIRED, 0, 0, NULL},
};

/* Loads the module the way a worker will (common/cbmodule.h, the same code and words); the
 * CLI does not export the callback API, hence CBMODULE_WITHOUT_API. */
static void check_module(cfg_ctx *x, const cfg_callback *cb, const cfg_node *m)
{
    char why[1024];
    void *h;
    mf_callback fn;
    const char *key = "module";
    if (cbmodule_open(cb->module, CBMODULE_WITHOUT_API, &h, why, sizeof(why)) == 0) {
        key = "function";
        if (cbmodule_callback(h, cb->module, cb->function, &fn, why, sizeof(why)) == 0)
            key = NULL;
        cbmodule_close(h);
    }
    if (key) {
        size_t old = cfg_path_key(x, key);
        cfg_err(x, cfg_node_get(m, key), "%s", why);
        cfg_path_pop(x, old);
    }
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
    c->callbacks = cfg_entries_alloc(x, map, map->n / 2, CFG_MAX_CALLBACKS, "callbacks",
                                     sizeof(*c->callbacks));
    if (!c->callbacks)
        goto out;
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
            cfg_err_key(x, v, "function", "must not be empty");
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
                cfg_err_key(x, v, "module", "module file %s %s", cb->module,
                            sr == -ENOENT ? "does not exist"
                            : sr < 0      ? strerror(-sr)
                                          : "is not a regular file");
            } else if ((x->flags & CFG_LOAD_CHECK_MODULES) && cb->function && !cb->python) {
                check_module(x, cb, v);
            }
        }
        cfg_path_pop(x, o2);
    }
out:
    cfg_path_pop(x, old);
}
