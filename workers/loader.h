/* loader: the callback modules of one worker process (DESIGN §4).
 *
 * At start the worker opens every module named in the config's `callbacks:` once per shared
 * object through common/cbmodule.h (the code and words `mqttflow check` uses: RTLD_NOW |
 * RTLD_LOCAL, a module without mf_api_version == MF_API_VERSION refused), resolves every
 * configured function, and calls each module's optional mf_init once. Every
 * problem is logged (module and function named) before loader_create fails, so one start
 * reports all of them. At stop, mf_fini runs once per module, in reverse load order.
 *
 * One thread; the loader outlives every callback call. A failed create leaves nothing
 * loaded (modules already initialised get their mf_fini).
 */
#ifndef MF_WORKERS_LOADER_H
#define MF_WORKERS_LOADER_H

#include "ctx.h"

typedef struct loader loader;

/* Loads the modules of env->c. 0 and *out; -ENOENT (a module cannot be opened or a function
 * is missing), -EPROTO (API version mismatch or no mf_api_version), -ECANCELED (an mf_init
 * returned non-zero), -ENOMEM. All are configuration problems: the worker must not respawn. */
int loader_create(const ctx_env *env, loader **out);
/* The function of callback index i (cfg.callbacks), or NULL when i is out of range. */
mf_callback loader_fn(const loader *l, int i);
/* Runs mf_fini of each module, closes them; accepts NULL. */
void loader_destroy(loader *l);

#endif
