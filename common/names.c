#include "names.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>

static int fmt(char *buf, size_t len, const char *f, ...) __attribute__((format(printf, 3, 4)));

static int fmt(char *buf, size_t len, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(buf, len, f, ap);
    va_end(ap);
    return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

int names_ingress_ring(char *buf, size_t len, const char *instance, size_t ingress)
{
    return fmt(buf, len, "mqttflow.%s.in%zu", instance, ingress);
}

int names_worker_in(char *buf, size_t len, const char *instance, size_t worker)
{
    return fmt(buf, len, "mqttflow.%s.w%zu.in", instance, worker);
}

int names_worker_out(char *buf, size_t len, const char *instance, size_t worker)
{
    return fmt(buf, len, "mqttflow.%s.w%zu.out", instance, worker);
}

int names_stats(char *buf, size_t len, const char *instance)
{
    return fmt(buf, len, "mqttflow.%s.stats", instance);
}

int names_worker_state(char *buf, size_t len, const char *instance, size_t worker)
{
    return fmt(buf, len, "mqttflow.%s.w%zu.state", instance, worker);
}

int names_tap(char *buf, size_t len, const char *instance, const char *point)
{
    return fmt(buf, len, "mqttflow.%s.tap.%s", instance, point);
}

int names_client_dir(char *buf, size_t len, const char *client_id)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)client_id; *p; p++) {
        bool safe = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' ||
                    (*p == '.' && p != (const unsigned char *)client_id);
        size_t need = safe ? 1 : 3;
        if (n + need >= len || n + need > NAME_MAX)
            return -ENAMETOOLONG;
        if (safe) {
            buf[n++] = (char)*p;
        } else {
            buf[n++] = '%';
            buf[n++] = hex[*p >> 4];
            buf[n++] = hex[*p & 15];
        }
    }
    if (n == 0) { /* an empty id: a name that no id maps to otherwise */
        if (len < 2)
            return -ENAMETOOLONG;
        buf[n++] = '%';
    }
    buf[n] = 0;
    return 0;
}
