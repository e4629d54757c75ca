/* temperature_alerts: the Python framework's alert callback as a mqttflow module.
 *
 * alert_if_high: the payload is a number ("31.5") or a JSON object with "temperature" or
 * "temp". Above the threshold (the step's `threshold` parameter when run as a chain step,
 * else 30) it emits a JSON alert on "alerts/temperature" (published on the rule's source
 * client) and logs it. A payload without a temperature is logged and ignored (returning an
 * error would count every malformed sensor reading as a callback failure).
 *
 * Build: cc -shared -fPIC -I<mqttflow>/common -o temperature_alerts.so temperature_alerts.c
 */
#include <mqttflow.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example_number.h"

int alert_if_high(mf_ctx *ctx, const mf_msg *msgs, size_t n);

int alert_if_high(mf_ctx *ctx, const mf_msg *msgs, size_t n)
{
    static const char *const keys[] = {"temperature", "temp", NULL};
    const char *ts = mf_param(ctx, "threshold");
    double threshold = ts ? strtod(ts, NULL) : 30.0;

    for (size_t i = 0; i < n; i++) {
        const mf_msg *m = &msgs[i];
        double t;
        /* the payload is always followed by a NUL, so it can be read as a string */
        if (read_number(m->payload, keys, &t) < 0) {
            mf_log(ctx, MF_LOG_WARNING, "no temperature in message on %s", m->topic);
            continue;
        }
        if (t <= threshold)
            continue;
        char alert[256];
        int len = snprintf(alert, sizeof(alert),
                           "{\"alert\":\"high_temperature\",\"temperature\":%g,\"threshold\":%g,"
                           "\"topic\":\"%.80s\",\"client_id\":\"%.64s\"}",
                           t, threshold, m->topic, m->client_id);
        if (len < 0 || (size_t)len >= sizeof(alert))
            len = (int)strlen(alert);
        mf_log(ctx, MF_LOG_WARNING, "high temperature %g > %g on %s", t, threshold, m->topic);
        int rc = mf_emit(ctx, "alerts/temperature", alert, (size_t)len);
        if (rc != 0)
            return rc;
    }
    return 0;
}
