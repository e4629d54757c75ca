/* temperature_processing: the Python framework's sampling chain callbacks as a mqttflow module.
 *
 * handle_temperature_sample (sampler step): called once per window with every message of the
 * window; emits {"count":n,"avg":x,"min":..,"max":..} of the temperatures it could read (a
 * number payload or JSON "temperature"/"temp") on "sensors/temperature/sample". A window with
 * no readable temperature emits nothing.
 * handle_processed_temperature (custom_processor step): adds "processed_at" (ns since the
 * epoch, the message's received time) to a JSON object payload, and passes anything else on
 * unchanged.
 *
 * Build: cc -shared -fPIC -I<mqttflow>/common -o temperature_processing.so \
 *            temperature_processing.c
 */
#include <mqttflow.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example_number.h"

int handle_temperature_sample(mf_ctx *ctx, const mf_msg *msgs, size_t n);
int handle_processed_temperature(mf_ctx *ctx, const mf_msg *msgs, size_t n);

static int read_temperature(const char *text, double *out)
{
    static const char *const keys[] = {"temperature", "temp", NULL};
    return read_number(text, keys, out);
}

int handle_temperature_sample(mf_ctx *ctx, const mf_msg *msgs, size_t n)
{
    size_t count = 0;
    double sum = 0, min = 0, max = 0;

    for (size_t i = 0; i < n; i++) {
        double t;
        if (read_temperature(msgs[i].payload, &t) < 0)
            continue;
        if (count == 0 || t < min)
            min = t;
        if (count == 0 || t > max)
            max = t;
        sum += t;
        count++;
    }
    if (count == 0) {
        mf_log(ctx, MF_LOG_INFO, "window of %zu messages held no temperature", n);
        return 0;
    }
    char out[192];
    int len = snprintf(out, sizeof(out), "{\"count\":%zu,\"avg\":%.3f,\"min\":%g,\"max\":%g}",
                       count, sum / (double)count, min, max);
    mf_log(ctx, MF_LOG_DEBUG, "sample: %s", out);
    return mf_emit(ctx, "sensors/temperature/sample", out, (size_t)len);
}

int handle_processed_temperature(mf_ctx *ctx, const mf_msg *msgs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const mf_msg *m = &msgs[i];
        const char *p = m->payload;
        size_t len = m->payload_len;
        /* a JSON object: insert the field before its closing brace */
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\n' || p[len - 1] == '\r'))
            len--;
        if (len < 2 || p[0] != '{' || p[len - 1] != '}') {
            int rc = mf_emit(ctx, m->topic, m->payload, m->payload_len);
            if (rc != 0)
                return rc;
            continue;
        }
        char field[64];
        int fl = snprintf(field, sizeof(field), "%s\"processed_at\":%llu", len > 2 ? "," : "",
                          (unsigned long long)m->received_ns);
        char *buf = malloc(len + (size_t)fl + 1);
        if (!buf)
            return -1;
        memcpy(buf, p, len - 1);
        memcpy(buf + len - 1, field, (size_t)fl);
        buf[len - 1 + (size_t)fl] = '}';
        int rc = mf_emit(ctx, m->topic, buf, len + (size_t)fl);
        free(buf);
        if (rc != 0)
            return rc;
    }
    return 0;
}
