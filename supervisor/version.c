/* version: `mqttflow --version` (see version.h). */
#include "version.h"

#include <MQTTAsync.h>
#include <dlfcn.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <yaml.h>

#include "mqttflow.h"

#ifndef MF_VERSION
#define MF_VERSION "unknown"
#endif
/* liburing before 2.4 cannot say its version: the Makefile passes what pkg-config said at
 * build time */
#ifndef MF_URING_BUILD_VERSION
#define MF_URING_BUILD_VERSION "unknown"
#endif
/* the soname the relay links (liburing-dev's liburing.so points at it) */
#define URING_SONAME "liburing.so.2"

const char *version_string(void)
{
    return MF_VERSION;
}

static const char *paho_field(const MQTTAsync_nameValue *nv, const char *name)
{
    for (; nv && nv->name; nv++)
        if (!strcmp(nv->name, name))
            return nv->value;
    return NULL;
}

static void print_uring(FILE *f)
{
    /* The functions exist from liburing 2.4; looked up in the installed library so that a
     * newer one than the build's is reported as what runs. */
    void *h = dlopen(URING_SONAME, RTLD_LAZY | RTLD_LOCAL);
    int (*major)(void) = h ? (int (*)(void))dlsym(h, "io_uring_major_version") : NULL;
    int (*minor)(void) = h ? (int (*)(void))dlsym(h, "io_uring_minor_version") : NULL;
    if (major && minor)
        fprintf(f, "liburing %d.%d\n", major(), minor());
    else
        fprintf(f, "liburing %s (built with; the installed library does not report its own)\n",
                MF_URING_BUILD_VERSION);
    if (h)
        dlclose(h);
}

/* 1 when the directory of LIB is DIR (both resolved), else 0 */
static int lib_in(const char *lib, const char *dir)
{
    char a[PATH_MAX], b[PATH_MAX], copy[PATH_MAX];
    snprintf(copy, sizeof(copy), "%s", lib);
    return realpath(dirname(copy), a) && realpath(dir, b) && !strcmp(a, b);
}

/* Where mqttflow's private paho build would be (scripts/paho.sh, README "paho.mqtt.c"): beside
 * this binary's directory (the build tree and PREFIX/bin) or in it. */
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

/* Which paho this process loaded, from where. Linked, not dlopen'ed: the loader resolves it
 * for this binary exactly as for the stages, which carry the same rpath (a dlopen under ASan
 * searches the interceptor's RUNPATH, not ours). */
static void print_paho_origin(FILE *f)
{
    Dl_info di;
    const char *path =
        dladdr((void *)MQTTAsync_getVersionInfo, &di) && di.dli_fname ? di.dli_fname : "?";
    int priv = is_private(path);
    fprintf(f, "paho.mqtt.c loaded from: %s (%s)\n", path,
            priv ? "mqttflow's private build"
                 : "the system's: Debian's build with heap tracking, slower; see scripts/setup.sh");
    if (!priv)
        return;
    char copy[PATH_MAX], info[PATH_MAX + 32], line[512];
    snprintf(copy, sizeof(copy), "%s", path);
    snprintf(info, sizeof(info), "%s/paho.BUILD-INFO", dirname(copy));
    FILE *bi = fopen(info, "re");
    if (!bi)
        return;
    if (fgets(line, sizeof(line), bi))
        fprintf(f, "paho.mqtt.c built from: %s", line);
    fclose(bi);
}

void version_print(FILE *f)
{
    fprintf(f, "mqttflow %s\n", MF_VERSION);
    fprintf(f, "callback API (MF_API_VERSION) %d\n", MF_API_VERSION);
    MQTTAsync_nameValue *nv = MQTTAsync_getVersionInfo();
    const char *pv = paho_field(nv, "Version");
    const char *ssl = paho_field(nv, "OpenSSL version");
    fprintf(f, "paho.mqtt.c %s%s%s\n", pv ? pv : "unknown", ssl ? ", " : "", ssl ? ssl : "");
    print_paho_origin(f);
    fprintf(f, "libyaml %s\n", yaml_get_version_string());
    print_uring(f);
}
