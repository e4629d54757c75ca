/* version: `mqttflow --version` (see version.h). */
#include "version.h"

#include <MQTTAsync.h>
#include <dlfcn.h>
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

void version_print(FILE *f)
{
    fprintf(f, "mqttflow %s\n", MF_VERSION);
    fprintf(f, "callback API (MF_API_VERSION) %d\n", MF_API_VERSION);
    MQTTAsync_nameValue *nv = MQTTAsync_getVersionInfo();
    const char *pv = paho_field(nv, "Version");
    const char *ssl = paho_field(nv, "OpenSSL version");
    fprintf(f, "paho.mqtt.c %s%s%s\n", pv ? pv : "unknown", ssl ? ", " : "", ssl ? ssl : "");
    fprintf(f, "libyaml %s\n", yaml_get_version_string());
    print_uring(f);
}
