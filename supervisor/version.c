/* version: `mqttflow version` (see version.h). */
#include "version.h"

#include <MQTTAsync.h>
#include <dlfcn.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exitcode.h"
#include "mqttflow.h"

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

/* the stamp scripts/paho.sh wrote and make staged beside the library: source and options */
static void print_build_info(const char *lib)
{
    char copy[PATH_MAX], info[PATH_MAX + 32], line[512];
    snprintf(copy, sizeof(copy), "%s", lib);
    snprintf(info, sizeof(info), "%s/paho.BUILD-INFO", dirname(copy));
    FILE *f = fopen(info, "r");
    if (!f)
        return;
    if (fgets(line, sizeof(line), f))
        printf("paho.mqtt.c built from: %s", line);
    fclose(f);
}

int version_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("mqttflow: callback API %d\n", MF_API_VERSION);
    /* Linked, not dlopen'ed: the loader resolves it for this binary exactly as for the stages
     * (a dlopen under ASan searches the interceptor's RUNPATH, not ours). The function
     * pointer comes from the GOT (-fPIC), so it is the library's own address. */
    const char *version = "?";
    for (MQTTAsync_nameValue *nv = MQTTAsync_getVersionInfo(); nv && nv->name; nv++)
        if (!strcmp(nv->name, "Version"))
            version = nv->value;
    Dl_info di;
    const char *path =
        dladdr((void *)MQTTAsync_getVersionInfo, &di) && di.dli_fname ? di.dli_fname : "?";
    int priv = is_private(path);
    printf("paho.mqtt.c: %s %s (%s)\n", version, path,
           priv ? "mqttflow's private build"
                : "the system's: Debian's build with heap tracking, slower; see scripts/setup.sh");
    if (priv)
        print_build_info(path);
    return MF_EXIT_OK;
}
