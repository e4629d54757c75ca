/* version: `mqttflow version` (see version.h). */
#include "version.h"

#include <MQTTAsync.h>
#include <dlfcn.h>
#include <libgen.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exitcode.h"
#include "mqttflow.h"

#define PAHO_SONAME "libpaho-mqtt3as.so.1"

/* 1 when the directory of LIB is DIR (both resolved), else 0 */
static int lib_in(const char *lib, const char *dir)
{
    char a[PATH_MAX], b[PATH_MAX], copy[PATH_MAX];
    snprintf(copy, sizeof(copy), "%s", lib);
    return realpath(dirname(copy), a) && realpath(dir, b) && !strcmp(a, b);
}

/* Where the private build would be: beside this binary's directory (the build tree and
 * PREFIX/bin) or in it (binaries installed into the library directory). */
static int is_private(const char *lib)
{
    char exe[PATH_MAX], dir[PATH_MAX + 32];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return 0;
    exe[n] = '\0';
    char *bindir = dirname(exe);
    snprintf(dir, sizeof(dir), "%s/../lib/mqttflow", bindir);
    return lib_in(lib, dir) || lib_in(lib, bindir);
}

int version_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("mqttflow: callback API %d\n", MF_API_VERSION);
    /* dlopen from the executable searches the executable's RUNPATH, as the stages' loader does */
    void *h = dlopen(PAHO_SONAME, RTLD_LAZY | RTLD_LOCAL);
    if (!h) {
        printf("paho.mqtt.c: not loadable: %s\n", dlerror());
        return MF_EXIT_FAILED;
    }
    const char *version = "?";
    MQTTAsync_nameValue *(*info)(void) =
        (MQTTAsync_nameValue * (*)(void)) dlsym(h, "MQTTAsync_getVersionInfo");
    for (MQTTAsync_nameValue *nv = info ? info() : NULL; nv && nv->name; nv++)
        if (!strcmp(nv->name, "Version"))
            version = nv->value;
    struct link_map *lm = NULL;
    const char *path = dlinfo(h, RTLD_DI_LINKMAP, &lm) == 0 && lm ? lm->l_name : "?";
    int priv = is_private(path);
    printf("paho.mqtt.c: %s %s (%s)\n", version, path,
           priv ? "mqttflow's private build"
                : "the system's: Debian's build with heap tracking, slower; see scripts/setup.sh");
    dlclose(h);
    return MF_EXIT_OK;
}
