/* humidity: the Python framework's humidity analysis as a mqttflow module.
 *
 * analyze_humidity: the payload is a number ("45") or a JSON object with "humidity". It is
 * classified dry (< 30), comfortable (30..60) or humid (> 60), and a JSON analysis is emitted
 * on "analysis/humidity" (published on the rule's source client). A payload without a
 * humidity is logged and ignored.
 *
 * Build: cc -shared -fPIC -I<mqttflow>/common -o humidity.so humidity.c
 */
#include <mqttflow.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int analyze_humidity(mf_ctx *ctx, const mf_msg *msgs, size_t n);

static int read_humidity(const char *text, double *out)
{
    char *end;
    double v = strtod(text, &end);
    if (end != text) {
        while (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t')
            end++;
        if (*end == '\0') {
            *out = v;
            return 0;
        }
    }
    const char *p = strstr(text, "\"humidity\"");
    if (!p)
        return -1;
    p += strlen("\"humidity\"");
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    if (*p != ':')
        return -1;
    p++;
    v = strtod(p, &end);
    if (end == p)
        return -1;
    *out = v;
    return 0;
}

int analyze_humidity(mf_ctx *ctx, const mf_msg *msgs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double h;
        if (read_humidity(msgs[i].payload, &h) < 0) {
            mf_log(ctx, MF_LOG_WARNING, "no humidity in message on %s", msgs[i].topic);
            continue;
        }
        const char *cls = h < 30 ? "dry" : h > 60 ? "humid" : "comfortable";
        char out[160];
        int len = snprintf(out, sizeof(out), "{\"humidity\":%g,\"class\":\"%s\"}", h, cls);
        mf_log(ctx, MF_LOG_DEBUG, "humidity %g: %s", h, cls);
        int rc = mf_emit(ctx, "analysis/humidity", out, (size_t)len);
        if (rc != 0)
            return rc;
    }
    return 0;
}
