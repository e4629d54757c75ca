/* Test module: segv_every dies of SIGSEGV when the payload contains "CRASH", or when its
 * "seq" field (JSON "seq": N, or a payload that is just N) is a multiple of param "every"
 * (default: never); otherwise it echoes the message (topic = param "topic" or the message's).
 * The SIGSEGV handler is reset first so that a sanitizer's handler cannot turn the death into
 * an exit status: tests assert that waitpid reports SIGSEGV. */
#include <mqttflow.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>

int segv_every(mf_ctx *ctx, const mf_msg *msgs, size_t n);

static int echo1(mf_ctx *ctx, const mf_msg *m)
{
    const char *topic = mf_param(ctx, "topic");
    return mf_emit(ctx, topic ? topic : m->topic, m->payload, m->payload_len);
}

static long seq_of(const char *p)
{
    const char *s = strstr(p, "\"seq\"");
    if (s) {
        s = strchr(s, ':');
        return s ? strtol(s + 1, NULL, 10) : -1;
    }
    char *end;
    long v = strtol(p, &end, 10);
    return end != p ? v : -1;
}

int segv_every(mf_ctx *ctx, const mf_msg *msgs, size_t n)
{
    const char *every_s = mf_param(ctx, "every");
    long every = every_s ? atol(every_s) : 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = msgs[i].payload;
        long seq = seq_of(p);
        if (strstr(p, "CRASH") || (every > 0 && seq >= 0 && seq % every == 0)) {
            signal(SIGSEGV, SIG_DFL);
            raise(SIGSEGV);
        }
        int rc = echo1(ctx, &msgs[i]);
        if (rc)
            return rc;
    }
    return 0;
}
