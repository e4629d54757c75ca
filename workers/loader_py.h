/* loader_py: the Python callbacks of one worker process (DESIGN §4 "Python callbacks").
 *
 * Called by the loader only when the config names a Python callback: loads
 * mqttflow-python.so (common/pyshim.h), starts this worker's own interpreter with
 * runtime.python's venv and path, imports each module once, resolves each function or task
 * class to an mf_callback, and runs the modules' init(). From then on a Python callback is an
 * ordinary mf_callback: chains, windows, ctx_call, the watchdog and the crash/retry/dead
 * letter path treat it exactly as a C one.
 *
 * An import that fails (a syntax error, an exception at the module's top level, a missing
 * function) or an init() that raises is logged with its traceback and fails loader_create;
 * the worker then exits with MF_EXIT_CONFIG (not respawned, no crash loop) and the one-line
 * reason reaches `mqttflow status` (stage_fail_note). One thread.
 */
#ifndef MF_WORKERS_LOADER_PY_H
#define MF_WORKERS_LOADER_PY_H

#include "ctx.h"

/* Resolves every Python callback of env->c into fns[i]. 0; -ENOENT (the shim cannot be
 * loaded, an import or a function failed), -ECANCELED (an init() failed), all logged. */
int loader_py_create(const ctx_env *env, mf_callback *fns);
/* Runs the modules' fini(); accepts a worker that started no Python. */
void loader_py_destroy(void);

#endif
