/* Test module: hang_on loops forever when the payload contains "HANG" (the supervisor's
 * callback timeout must kill the worker); otherwise it echoes the message (topic = param
 * "topic" or the message's). */
#include <mqttflow.h>

#include <string.h>

int hang_on(mf_ctx *ctx, const mf_msg *msgs, size_t n);

static int echo1(mf_ctx *ctx, const mf_msg *m)
{
    const char *topic = mf_param(ctx, "topic");
    return mf_emit(ctx, topic ? topic : m->topic, m->payload, m->payload_len);
}

int hang_on(mf_ctx *ctx, const mf_msg *msgs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strstr(msgs[i].payload, "HANG")) {
            volatile int forever = 1;
            while (forever)
                ;
        }
        int rc = echo1(ctx, &msgs[i]);
        if (rc)
            return rc;
    }
    return 0;
}
