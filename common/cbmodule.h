/* cbmodule: opening one C callback module (a shared object built with mqttflow.h) and checking
 * its callback API version: the single piece of code that `mqttflow check`
 * (config/cfg_callback.c) and the worker (workers/loader.c) both load modules with, so the two
 * accept and refuse the same modules with the same words. Python callbacks are not modules of
 * this kind (common/pyshim.h).
 *
 * A module is opened RTLD_NOW | RTLD_LOCAL: an unresolved symbol fails here and not in the
 * middle of a message, and two modules cannot resolve each other's symbols. Any thread; no
 * state of its own. A failure leaves nothing open and a one-line reason in why, which names
 * the module's path; the caller adds where (a config position, a log component).
 */
#ifndef MF_CBMODULE_H
#define MF_CBMODULE_H

#include <stddef.h>

#include "mqttflow.h"

/* The process does not export the callback API (mf_emit & co.; the CLI): when the only
 * unresolved symbol RTLD_NOW stops at is one of them, bind lazily so the rest can be checked
 * (another unresolved function then only shows when a worker loads the module). */
#define CBMODULE_WITHOUT_API 1u

/* Opens path and checks mf_api_version == MF_API_VERSION. 0 and *handle (close it with
 * cbmodule_close); -ENOENT (dlopen failed) or -EPROTO (no mf_api_version, another version)
 * with why filled. */
int cbmodule_open(const char *path, unsigned flags, void **handle, char *why, size_t len);
/* Function name of an open module as a callback: 0 and *fn, or -ENOENT with why filled. */
int cbmodule_callback(void *handle, const char *path, const char *name, mf_callback *fn, char *why,
                      size_t len);
/* An optional hook of the module (mf_init, mf_fini) as a plain function pointer's bytes:
 * NULL when the module has none. */
void *cbmodule_sym(void *handle, const char *name);
/* Accepts NULL. */
void cbmodule_close(void *handle);

#endif
