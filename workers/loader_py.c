#include "loader_py.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "pyshim.h"
#include "stage.h"

#define COMP "worker"

/* The host side of the shim. The shim holds no pointer to our config, so client_known needs
 * it here: one worker process, one config. */
static const cfg *py_cfg;
static const pyshim_api *py_api;

static void host_log(mf_ctx *x, int level, const char *text)
{
    mf_log(x, level, "%s", text);
}

static void host_describe(mf_ctx *x, pyshim_call *out)
{
    const cfg *c = x->env->c;
    out->rule = ctx_rule_name(x->env, x->rule);
    out->callback = x->callback ? x->callback : "?";
    out->params = x->params;
    out->n_params = x->n_params;
    out->window = 0;
    if (x->rule >= 0 && (size_t)x->rule < c->n_rules && x->step >= 0) {
        int ch = c->rules[x->rule].chain;
        if (ch >= 0 && (size_t)ch < c->n_chains && (size_t)x->step < c->chains[ch].n_steps)
            out->window = c->chains[ch].steps[x->step].kind == CFG_STEP_SAMPLER;
    }
}

static int host_client_known(const char *client_id)
{
    return py_cfg && cfg_client_index(py_cfg, client_id) >= 0;
}

static const pyshim_host host = {
    .emit = mf_emit,
    .publish = mf_publish,
    .param = mf_param,
    .log = host_log,
    .describe = host_describe,
    .client_known = host_client_known,
};

/* Logs a Python problem: the one-line reason, then the traceback line by line; the reason
 * also goes to the supervisor for `mqttflow status`. */
static void fail(const char *what, const pyshim_err *e)
{
    char line[1800];
    if (e->file[0] && e->line > 0)
        snprintf(line, sizeof(line), "%s: %s:%d:%d: %s", what, e->file, e->line, e->col, e->msg);
    else
        snprintf(line, sizeof(line), "%s: %s", what, e->msg);
    log_error(COMP, "%s", line);
    char tb[sizeof(e->traceback)];
    memcpy(tb, e->traceback, sizeof(tb));
    tb[sizeof(tb) - 1] = '\0';
    for (char *l = tb, *nl; l && *l; l = nl ? nl + 1 : NULL) {
        if ((nl = strchr(l, '\n')))
            *nl = '\0';
        log_error(COMP, "  %s", l);
    }
    stage_fail_note(line);
}

int loader_py_create(const ctx_env *env, mf_callback *fns)
{
    const cfg *c = env->c;
    char why[600];
    pyshim_err e;
    int rc = 0;

    if (pyshim_open(&py_api, why, sizeof(why)) < 0) {
        log_error(COMP, "Python callbacks: %s", why);
        stage_fail_note(why);
        return -ENOENT;
    }
    py_cfg = c;
    if ((rc = py_api->start(&host, c->runtime.python_venv, c->runtime.python_path,
                            c->runtime.n_python_path, &e)) < 0) {
        fail("starting Python", &e);
        return -ENOENT;
    }
    for (size_t i = 0; i < c->n_callbacks; i++) {
        const cfg_callback *cb = &c->callbacks[i];
        if (!cb->python)
            continue;
        if (py_api->resolve(cb->module, cb->function, (int)i, &fns[i], &e) < 0) {
            char what[400];
            snprintf(what, sizeof(what), "callback %s (module %s, function %s)", cb->name,
                     cb->module, cb->function);
            fail(what, &e);
            return -ENOENT;
        }
    }
    if (py_api->init(&e) < 0) {
        fail("Python init()", &e);
        return -ECANCELED;
    }
    return 0;
}

void loader_py_destroy(void)
{
    if (py_api)
        py_api->fini();
}
