#include "loader.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cbmodule.h"
#include "loader_py.h"
#include "log.h"

#define COMP "worker"

typedef struct module {
    const char *path; /* cfg's string */
    void *handle;
    bool inited; /* mf_init ran and succeeded: mf_fini is owed */
} module;

struct loader {
    const ctx_env *env;
    bool python; /* loader_py started: its fini() is owed */
    module *mods;
    size_t n_mods;
    mf_callback *fns; /* per cfg callback index */
    size_t n_fns;
};

mf_callback loader_fn(const loader *l, int i)
{
    if (!l || i < 0 || (size_t)i >= l->n_fns)
        return NULL;
    return l->fns[i];
}

static int open_module(module *m)
{
    char why[1024];
    int rc = cbmodule_open(m->path, 0, &m->handle, why, sizeof(why));
    if (rc < 0)
        log_error(COMP, "callback module refused: %s", why);
    return rc;
}

static void fini_modules(loader *l)
{
    for (size_t i = l->n_mods; i-- > 0;) {
        module *m = &l->mods[i];
        if (m->handle && m->inited) {
            mf_fini_fn fini;
            void *p = cbmodule_sym(m->handle, "mf_fini");
            if (p) {
                memcpy(&fini, &p, sizeof(fini));
                mf_ctx x;
                ctx_init_module(&x, l->env, m->path);
                x.callback = "mf_fini";
                fini(&x);
            }
        }
        m->inited = false;
    }
}

void loader_destroy(loader *l)
{
    if (!l)
        return;
    fini_modules(l);
    if (l->python)
        loader_py_destroy();
    /* closed after every mf_fini, since a module may call into another one it links to */
    for (size_t i = l->n_mods; i-- > 0;)
        cbmodule_close(l->mods[i].handle);
    free(l->mods);
    free(l->fns);
    free(l);
}

static module *find_module(loader *l, const char *path)
{
    for (size_t i = 0; i < l->n_mods; i++)
        if (strcmp(l->mods[i].path, path) == 0)
            return &l->mods[i];
    return NULL;
}

int loader_create(const ctx_env *env, loader **out)
{
    const cfg *c = env->c;
    int rc = 0;
    loader *l = calloc(1, sizeof(*l));

    *out = NULL;
    if (!l)
        return -ENOMEM;
    l->env = env;
    l->n_fns = c->n_callbacks;
    l->fns = calloc(c->n_callbacks ? c->n_callbacks : 1, sizeof(*l->fns));
    l->mods = calloc(c->n_callbacks ? c->n_callbacks : 1, sizeof(*l->mods));
    if (!l->fns || !l->mods) {
        rc = -ENOMEM;
        goto fail;
    }

    /* open each module once; keep going after a failure so every problem is reported */
    bool any_python = false;
    for (size_t i = 0; i < c->n_callbacks; i++) {
        const cfg_callback *cb = &c->callbacks[i];
        any_python |= cb->python != 0;
        if (cb->python || find_module(l, cb->module))
            continue;
        module *m = &l->mods[l->n_mods++];
        m->path = cb->module;
        int r = open_module(m);
        if (r < 0 && rc == 0)
            rc = r;
    }

    for (size_t i = 0; i < c->n_callbacks; i++) {
        const cfg_callback *cb = &c->callbacks[i];
        module *m = cb->python ? NULL : find_module(l, cb->module);
        if (!m || !m->handle)
            continue;
        char why[1024];
        if (cbmodule_callback(m->handle, cb->module, cb->function, &l->fns[i], why, sizeof(why)) <
            0) {
            log_error(COMP, "callback %s: %s", cb->name, why);
            if (rc == 0)
                rc = -ENOENT;
        }
    }
    if (rc < 0)
        goto fail;
    /* Python last: its interpreter starts only when the C modules are sound; it exists in this
     * process only when the config names a Python callback (loader_py.h) */
    if (any_python) {
        l->python = true;
        if ((rc = loader_py_create(env, l->fns)) < 0)
            goto fail;
    }

    for (size_t i = 0; i < l->n_mods; i++) {
        module *m = &l->mods[i];
        void *p = cbmodule_sym(m->handle, "mf_init");
        if (!p) {
            m->inited = true; /* no hook: mf_fini (if any) is still owed */
            continue;
        }
        mf_init_fn init;
        memcpy(&init, &p, sizeof(init));
        mf_ctx x;
        ctx_init_module(&x, env, m->path);
        int r = init(&x);
        if (r != 0) {
            log_error(COMP, "callback module %s: mf_init returned %d, refusing to start", m->path,
                      r);
            rc = -ECANCELED;
            goto fail;
        }
        m->inited = true;
    }
    *out = l;
    return 0;

fail:
    loader_destroy(l);
    return rc;
}
