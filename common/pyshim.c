#include "pyshim.h"

#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int pyshim_is_python(const char *module)
{
    if (!module || !*module)
        return 0;
    size_t n = strlen(module);
    if (n > 3 && strcmp(module + n - 3, ".py") == 0)
        return 1;
    if (strchr(module, '/') || (n > 3 && strcmp(module + n - 3, ".so") == 0))
        return 0;
    /* a dotted name: identifiers separated by single dots ("libx.so.1" has "1": not one) */
    int at_start = 1;
    for (const char *p = module; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '.') {
            if (at_start)
                return 0;
            at_start = 1;
        } else if (isalpha(ch) || ch == '_' || (!at_start && isdigit(ch))) {
            at_start = 0;
        } else {
            return 0;
        }
    }
    return !at_start;
}

/* The candidate files, most specific first. */
static int candidate(int k, char *buf, size_t len)
{
    const char *env = getenv("MQTTFLOW_PYTHON_SHIM");
    if (k == 0)
        return env && *env ? snprintf(buf, len, "%s", env) : 0;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return 0;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return 0;
    *slash = '\0';
    if (k == 1)
        return snprintf(buf, len, "%s/%s", exe, PYSHIM_FILE);
    if (k == 2)
        return snprintf(buf, len, "%s/../lib/mqttflow/%s", exe, PYSHIM_FILE);
    if (k == 3) /* a stage installed in PREFIX/libexec/mqttflow (make install) */
        return snprintf(buf, len, "%s/../../lib/mqttflow/%s", exe, PYSHIM_FILE);
    return -1;
}

int pyshim_open(const pyshim_api **out, char *err, size_t errlen)
{
    /* one per process, kept for its life: the interpreter cannot be unloaded anyway */
    static const pyshim_api *api;
    static void *handle;

    if (api) {
        *out = api;
        return 0;
    }
    char path[PATH_MAX + 64], first_err[512] = "";
    for (int k = 0; !handle; k++) {
        int r = candidate(k, path, sizeof(path));
        if (r < 0)
            break;
        if (r == 0 || (size_t)r >= sizeof(path) || (k > 0 && access(path, R_OK) != 0))
            continue;
        /* RTLD_GLOBAL: C extension modules (ctypes, json's speedups) that Python imports later
         * resolve libpython's symbols from the global scope */
        handle = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
        if (!handle && !first_err[0]) {
            const char *e = dlerror();
            snprintf(first_err, sizeof(first_err), "%.400s", e ? e : "dlopen failed");
        }
    }
    if (!handle) {
        snprintf(err, errlen, "cannot load the Python support %s: %s", PYSHIM_FILE,
                 first_err[0] ? first_err
                              : "not found beside the executable (set MQTTFLOW_PYTHON_SHIM)");
        return -ENOENT;
    }
    const pyshim_api *a = dlsym(handle, "pyshim_api_v1");
    if (!a || a->abi != PYSHIM_ABI) {
        snprintf(err, errlen, "%s has ABI %d, this mqttflow needs %d: reinstall it", path,
                 a ? a->abi : -1, PYSHIM_ABI);
        dlclose(handle);
        handle = NULL;
        return -EPROTO;
    }
    api = a;
    *out = api;
    return 0;
}
