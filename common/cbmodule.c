#include "cbmodule.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

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

void *cbmodule_sym(void *handle, const char *name)
{
    dlerror();
    return dlsym(handle, name);
}

int cbmodule_open(const char *path, unsigned flags, void **handle, char *why, size_t len)
{
    *handle = NULL;
    dlerror();
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    const char *e = h ? NULL : dlerror();
    if (!h && (flags & CBMODULE_WITHOUT_API) && e && needs_worker_api(e)) {
        h = dlopen(path, RTLD_LAZY | RTLD_LOCAL);
        e = h ? NULL : dlerror();
    }
    if (!h) {
        e = e ? e : "unknown dlopen error";
        size_t n = strlen(path);
        /* glibc's text starts with the path already: say it once */
        if (!strncmp(e, path, n) && !strncmp(e + n, ": ", 2))
            e += n + 2;
        snprintf(why, len, "cannot load callback module %s: %s", path, e);
        return -ENOENT;
    }
    const int *ver = cbmodule_sym(h, "mf_api_version");
    if (!ver || *ver != MF_API_VERSION) {
        if (!ver)
            snprintf(why, len,
                     "%s does not export mf_api_version (build it with #include \"mqttflow.h\")",
                     path);
        else
            snprintf(why, len,
                     "%s was built for callback API version %d, this mqttflow implements "
                     "version %d (rebuild it against this mqttflow.h)",
                     path, *ver, MF_API_VERSION);
        dlclose(h);
        return -EPROTO;
    }
    *handle = h;
    return 0;
}

int cbmodule_callback(void *handle, const char *path, const char *name, mf_callback *fn, char *why,
                      size_t len)
{
    void *p = cbmodule_sym(handle, name);
    if (!p) {
        snprintf(why, len, "function \"%s\" not found in %s", name, path);
        return -ENOENT;
    }
    /* dlsym returns a void *; converting it to a function pointer is what POSIX guarantees
     * works, done through memcpy so that -Wpedantic builds stay quiet too */
    memcpy(fn, &p, sizeof(*fn));
    return 0;
}

void cbmodule_close(void *handle)
{
    if (handle)
        dlclose(handle);
}
