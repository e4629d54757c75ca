/* Test module: abort_on calls abort() when the payload contains "ABORT"; otherwise it echoes
 * the message (topic = param "topic" or the message's). */
#include <mqttflow.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>

int abort_on(mf_ctx *ctx, const mf_msg *msgs, size_t n);

static int echo1(mf_ctx *ctx, const mf_msg *m)
{
    const char *topic = mf_param(ctx, "topic");
    return mf_emit(ctx, topic ? topic : m->topic, m->payload, m->payload_len);
}

int abort_on(mf_ctx *ctx, const mf_msg *msgs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strstr(msgs[i].payload, "ABORT")) {
            signal(SIGABRT, SIG_DFL);
            abort();
        }
        int rc = echo1(ctx, &msgs[i]);
        if (rc)
            return rc;
    }
    return 0;
}
