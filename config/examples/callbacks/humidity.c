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

#include "example_number.h"

int analyze_humidity(mf_ctx *ctx, const mf_msg *msgs, size_t n);

int analyze_humidity(mf_ctx *ctx, const mf_msg *msgs, size_t n)
{
    static const char *const keys[] = {"humidity", NULL};
    for (size_t i = 0; i < n; i++) {
        double h;
        if (read_number(msgs[i].payload, keys, &h) < 0) {
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
