/* cfg_python: `runtime.python: {venv: DIR, path: [DIR, ...]}` and, for `mqttflow check`,
 * importing every Python callback module the way a worker will (common/pyshim.h).
 *
 * The check runs after runtime is loaded (venv and path decide what imports). Importing runs
 * each module's top level in this process, as a worker's start does; a module is imported
 * once per process (a second config checked by the same process adds its venv and path and
 * sees the modules the first one imported; the CLI checks one). Errors are reported at the Python
 * file's position: "cb.py:3:5: SyntaxError: invalid syntax"; a missing function at line 1 of the
 * module, with the YAML position in the message.
 */
#include "cfg_int.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "pyshim.h"

static const cfg_field python_fields[] = {
    {"venv", CFG_F_PATH, offsetof(cfg_runtime, python_venv), NULL, 0, 0, 0, NULL},
    {"path", CFG_F_ANY, 0, NULL, 0, 0, 0, NULL},
};

void cfg_python_load(cfg_ctx *x, cfg_runtime *rt, const cfg_node *m)
{
    size_t old = cfg_path_key(x, "python");
    if (!cfg_schema_decode(x, m, python_fields, CFG_NFIELDS(python_fields), rt, false))
        goto out;
    struct stat st;
    if (rt->python_venv && (stat(rt->python_venv, &st) < 0 || !S_ISDIR(st.st_mode))) {
        cfg_err_key(x, m, "venv", "%s is not a folder (a virtual environment)", rt->python_venv);
    }
    const cfg_node *p = cfg_node_get(m, "path");
    if (!p)
        goto out;
    size_t o2 = cfg_path_key(x, "path");
    size_t n = p->type == CFG_NODE_SEQ ? p->n : 1;
    if (p->type == CFG_NODE_MAP || n > 64) {
        cfg_err(x, p, "expected a folder or a list of at most 64 folders");
    } else if (!(rt->python_path = calloc(n ? n : 1, sizeof(char *)))) {
        cfg_err(x, p, "out of memory");
    } else {
        for (size_t i = 0; i < n; i++) {
            const cfg_node *item = p->type == CFG_NODE_SEQ ? p->items[i] : p;
            size_t o3 = p->type == CFG_NODE_SEQ ? cfg_path_index(x, i) : x->plen;
            char *abs = item->type == CFG_NODE_SCALAR && item->len
                            ? cfg_schema_abspath(x->dir, item->str)
                            : NULL;
            if (!abs)
                cfg_err(x, item, "expected a folder name");
            else if (stat(abs, &st) < 0 || !S_ISDIR(st.st_mode))
                cfg_err(x, item, "%s is not a folder", abs);
            if (abs)
                rt->python_path[rt->n_python_path++] = abs;
            cfg_path_pop(x, o3);
        }
    }
    cfg_path_pop(x, o2);
out:
    cfg_path_pop(x, old);
}

void cfg_python_fini(cfg_runtime *rt)
{
    free(rt->python_venv);
    for (size_t i = 0; i < rt->n_python_path; i++)
        free(rt->python_path[i]);
    free(rt->python_path);
    rt->python_venv = NULL;
    rt->python_path = NULL;
    rt->n_python_path = 0;
}

static void check_log(mf_ctx *ctx, int level, const char *text)
{
    (void)ctx;
    log_msg(level, "callbacks", "%s", text);
}

/* A Python problem at its own file's position, or at the YAML node when it has none. */
static void report(cfg_ctx *x, const cfg_node *at, const pyshim_err *e, const char *what)
{
    if (e->file[0] && e->line > 0) {
        cfg_pos pos = {.line = e->line, .col = e->col > 0 ? e->col : 1};
        cfg_diag_add(x->d, false, e->file, pos, NULL, "%s (%s%s%s:%d:%d)", e->msg, what,
                     *what ? ", " : "", x->name, at ? at->pos.line : 0, at ? at->pos.col : 0);
        x->errors++;
    } else {
        cfg_err(x, at, "%s", e->msg); /* the path being decoded says what */
    }
}

void cfg_python_check(cfg_ctx *x, const cfg_node *root)
{
    static const pyshim_host host = {.log = check_log};
    const cfg *c = x->c;
    const cfg_node *map = cfg_node_get(root, "callbacks");
    size_t n_py = 0;

    for (size_t i = 0; i < c->n_callbacks; i++)
        n_py += c->callbacks[i].python != 0;
    if (!n_py || !map || map->type != CFG_NODE_MAP)
        return;
    const pyshim_api *api;
    char why[600];
    pyshim_err e;
    if (pyshim_open(&api, why, sizeof(why)) < 0) {
        cfg_err(x, map, "%zu Python callbacks, but %s", n_py, why);
        return;
    }
    if (api->start(&host, c->runtime.python_venv, c->runtime.python_path, c->runtime.n_python_path,
                   &e) < 0) {
        const cfg_node *rt = cfg_node_get(root, "runtime");
        size_t o2 = cfg_path_key(x, "runtime");
        size_t o3 = cfg_path_key(x, "python");
        report(x, rt ? cfg_node_get(rt, "python") : map, &e, "starting Python");
        cfg_path_pop(x, o3);
        cfg_path_pop(x, o2);
        return;
    }
    size_t old = cfg_path_key(x, "callbacks");
    for (size_t i = 0; i < c->n_callbacks && 2 * i + 1 < map->n; i++) {
        const cfg_callback *cb = &c->callbacks[i];
        if (!cb->python || !cb->module || !cb->function)
            continue;
        const cfg_node *v = map->items[2 * i + 1];
        mf_callback fn;
        size_t o2 = cfg_path_key(x, cb->name);
        if (api->resolve(cb->module, cb->function, (int)i, &fn, &e) < 0) {
            char what[300];
            snprintf(what, sizeof(what), "callbacks.%s", cb->name);
            report(x, cfg_node_get(v, e.line == 1 && e.col == 1 ? "function" : "module"), &e, what);
        }
        cfg_path_pop(x, o2);
    }
    cfg_path_pop(x, old);
}
