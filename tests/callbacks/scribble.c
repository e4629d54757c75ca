/* Test module: scribble writes 256 bytes past the end of its (const) payload when the payload
 * contains "SCRIBBLE" (a callback with a buffer overrun, issue 8 item 4), then echoes the
 * message like every other one (topic = param "topic" or the message's). The SIGSEGV handler
 * is reset first (as in segv_every.c). */
#include <mqttflow.h>

#include <signal.h>
#include <string.h>

int scribble(mf_ctx *ctx, const mf_msg *msgs, size_t n);

int scribble(mf_ctx *ctx, const mf_msg *msgs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strstr(msgs[i].payload, "SCRIBBLE")) {
            /* the default action, so that a sanitizer's handler does not report the fault
             * as its own finding: the worker dies of SIGSEGV as it would in production */
            signal(SIGSEGV, SIG_DFL);
            /* the bug under test: casting const away and writing past the end */
            volatile char *p = (volatile char *)msgs[i].payload + msgs[i].payload_len;
            for (size_t k = 0; k < 256; k++)
                p[k] = (char)0xA5;
        }
        const char *topic = mf_param(ctx, "topic");
        int rc = mf_emit(ctx, topic ? topic : msgs[i].topic, msgs[i].payload, msgs[i].payload_len);
        if (rc)
            return rc;
    }
    return 0;
}
