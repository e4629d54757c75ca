/* pyshim: the boundary between mqttflow and its Python support (DESIGN §4 "Python callbacks").
 *
 * Python callbacks run through embedded CPython, but no mqttflow executable links libpython:
 * the interpreter lives in a small shared object, mqttflow-python.so (workers/python/), which
 * links libpython3 and is dlopen'ed only by a process whose config has a Python callback. A
 * C-only deployment never maps libpython and pays nothing for it.
 *
 * The shim has no undefined mqttflow symbols: everything it needs from its host comes through
 * pyshim_host (a worker passes mf_emit & co.; `mqttflow check` passes stubs), so the same file
 * serves the worker and the CLI. Both sides agree on PYSHIM_ABI; a shim of another ABI is
 * refused by name.
 *
 * Where the shim is found: $MQTTFLOW_PYTHON_SHIM (a file), else mqttflow-python.so in the
 * folder of the running executable (build/bin, or an install's bin), else
 * ../lib/mqttflow/mqttflow-python.so beside it.
 *
 * One interpreter per process, started once; one thread (the shim holds the GIL from start
 * to exit: a worker runs one callback at a time, so there is nothing to release it for).
 */
#ifndef MF_PYSHIM_H
#define MF_PYSHIM_H

#include <stddef.h>

#include "cfg.h"
#include "mqttflow.h"

#define PYSHIM_ABI  1
#define PYSHIM_FILE "mqttflow-python.so"

/* Where a Python problem is: the Python file's position when there is one (a syntax error, the
 * innermost frame of the traceback in the user's file), else file "" and line 0. */
typedef struct pyshim_err {
    char file[512];
    int line, col;
    char msg[1024];       /* one line: "SyntaxError: invalid syntax", "no function ..." */
    char traceback[3072]; /* the formatted traceback, "" when there is none */
} pyshim_err;

/* What a running callback is, for its logs and its arguments. */
typedef struct pyshim_call {
    const char *rule;        /* rule name */
    const char *callback;    /* callback name of the config */
    int window;              /* a sampler window: the function gets a list of messages */
    const cfg_param *params; /* the step's config (task_config of a task class), may be 0 */
    size_t n_params;
} pyshim_call;

/* The host's side. Any function may be NULL (check): then the Python call raises. */
typedef struct pyshim_host {
    int (*emit)(mf_ctx *x, const char *topic, const void *payload, size_t len);
    int (*publish)(mf_ctx *x, const char *client_id, const char *topic, const void *payload,
                   size_t len, int qos, int retain);
    const char *(*param)(mf_ctx *x, const char *key);
    /* level MF_LOG_*; x NULL outside a callback (module import, init, fini) */
    void (*log)(mf_ctx *x, int level, const char *text);
    void (*describe)(mf_ctx *x, pyshim_call *out);
    int (*client_known)(const char *client_id); /* 1 when a client of that id is configured */
} pyshim_host;

typedef struct pyshim_api {
    int abi; /* PYSHIM_ABI */
    /* Starts the interpreter: venv (NULL = none) puts its site-packages on sys.path, path[]
     * comes first on sys.path. Python's own signal handlers are not installed and no
     * bytecode is written (an edited module is always read afresh). 0, or -errno with e
     * filled. One interpreter per process: a second start (a process that checked the config,
     * then loads it) keeps it, takes the new host and adds the venv and path. */
    int (*start)(const pyshim_host *h, const char *venv, char *const *path, size_t n_path,
                 pyshim_err *e);
    /* Imports module (a .py path or a dotted name; once per process) and resolves function
     * (a function, or a task class with process()) for callback index i < CFG_MAX_CALLBACKS.
     * 0 and *fn (an mf_callback that runs it); or -ENOENT (import failed, no such function)
     * / -EINVAL (not callable) with e filled. */
    int (*resolve)(const char *module, const char *function, int i, mf_callback *fn, pyshim_err *e);
    /* Calls the module-level init() of every imported module that has one, once. 0, or
     * -ECANCELED with e filled (init raised or returned other than None/0). */
    int (*init)(pyshim_err *e);
    /* Calls fini() of each module that had init() run (or has no init), in reverse import
     * order; logs what raises. Cannot fail. */
    void (*fini)(void);
} pyshim_api;

/* Loads the shim (once per process; later calls return the same table). 0 and *out, or
 * -ENOENT / -EPROTO with a one-line reason in err (the dlopen error, an ABI mismatch). */
int pyshim_open(const pyshim_api **out, char *err, size_t errlen);

/* Whether a callback's `module:` names Python: a *.py path, or a dotted module name (only
 * identifier characters and dots, no '/', not ending in .so). */
int pyshim_is_python(const char *module);

#endif
