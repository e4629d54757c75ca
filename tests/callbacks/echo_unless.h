/* echo_unless: the shape of the fault modules abort_on and hang_on (header-only, included by
 * each): every message is echoed (topic = param "topic" or the message's) unless its payload
 * contains a trigger word, when the module's fault runs instead. */
#ifndef MF_TESTCB_ECHO_UNLESS_H
#define MF_TESTCB_ECHO_UNLESS_H

#include <mqttflow.h>

#include <string.h>

static int echo_unless(mf_ctx *ctx, const mf_msg *msgs, size_t n, const char *word,
                       void (*fault)(void))
{
    for (size_t i = 0; i < n; i++) {
        if (strstr(msgs[i].payload, word))
            fault();
        const char *topic = mf_param(ctx, "topic");
        int rc = mf_emit(ctx, topic ? topic : msgs[i].topic, msgs[i].payload, msgs[i].payload_len);
        if (rc)
            return rc;
    }
    return 0;
}

#endif
