/* Test module: small well-behaved callbacks.
 *   echo      emits each message again: topic = param "topic" if set, else param "prefix" +
 *             the message's topic; payload unchanged
 *   join      emits one message on "joined" (or param "topic"): "<n>:<p1>,<p2>,..." of the
 *             payloads it got (sampler windows)
 *   fail      returns 7 (param "rc" overrides) without emitting
 *   emit_many emits on "many" until mf_emit refuses, then publishes the count and the error
 *             on client param "client" topic "many/count" as "<count> <rc>"
 *   bad_emit  returns what mf_emit of the invalid topic "a/+/b" returns (expected -EINVAL)
 *   publish   mf_publish to client param "client" (any string), topic "pub", qos 1, retain 1;
 *             returns what mf_publish returned
 */
#include <mqttflow.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int echo(mf_ctx *ctx, const mf_msg *msgs, size_t n);
int join(mf_ctx *ctx, const mf_msg *msgs, size_t n);
int fail(mf_ctx *ctx, const mf_msg *msgs, size_t n);
int emit_many(mf_ctx *ctx, const mf_msg *msgs, size_t n);
int bad_emit(mf_ctx *ctx, const mf_msg *msgs, size_t n);
int publish(mf_ctx *ctx, const mf_msg *msgs, size_t n);

int echo(mf_ctx *ctx, const mf_msg *msgs, size_t n)
{
    const char *topic = mf_param(ctx, "topic");
    const char *prefix = mf_param(ctx, "prefix");
    size_t pl = prefix ? strlen(prefix) : 0;
    for (size_t i = 0; i < n; i++) {
        char buf[1024];
        const char *t = topic;
        if (!t) {
            /* two copies, not snprintf (a third of this callback's cost in bench_pipeline);
             * snprintf only for what does not fit, to cut it the same way */
            size_t tl = strlen(msgs[i].topic);
            if (pl + tl < sizeof(buf)) {
                /* mempcpy, not memcpy: gcc inlines a memcpy whose size it can bound as a
                 * rep movsq, whose start-up costs more than the call for a few bytes */
                mempcpy(mempcpy(buf, prefix ? prefix : "", pl), msgs[i].topic, tl + 1);
            } else {
                snprintf(buf, sizeof(buf), "%s%s", prefix ? prefix : "", msgs[i].topic);
            }
            t = buf;
        }
        int rc = mf_emit(ctx, t, msgs[i].payload, msgs[i].payload_len);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int join(mf_ctx *ctx, const mf_msg *msgs, size_t n)
{
    const char *topic = mf_param(ctx, "topic");
    size_t cap = 32;
    for (size_t i = 0; i < n; i++)
        cap += msgs[i].payload_len + 1;
    char *buf = malloc(cap);
    if (!buf)
        return -1;
    size_t len = (size_t)snprintf(buf, cap, "%zu:", n);
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf[len++] = ',';
        memcpy(buf + len, msgs[i].payload, msgs[i].payload_len);
        len += msgs[i].payload_len;
    }
    int rc = mf_emit(ctx, topic ? topic : "joined", buf, len);
    free(buf);
    return rc;
}

int fail(mf_ctx *ctx, const mf_msg *msgs, size_t n)
{
    (void)msgs;
    (void)n;
    const char *rc = mf_param(ctx, "rc");
    return rc ? atoi(rc) : 7;
}

int emit_many(mf_ctx *ctx, const mf_msg *msgs, size_t n)
{
    (void)msgs;
    (void)n;
    int rc;
    long count = 0;
    while ((rc = mf_emit(ctx, "many", "x", 1)) == 0 && count < 1000000)
        count++;
    const char *client = mf_param(ctx, "client");
    char out[64];
    int len = snprintf(out, sizeof(out), "%ld %d", count, rc);
    int prc = mf_publish(ctx, client ? client : "c1", "many/count", out, (size_t)len, 0, 0);
    return prc == 0 ? 0 : prc;
}

int bad_emit(mf_ctx *ctx, const mf_msg *msgs, size_t n)
{
    (void)msgs;
    (void)n;
    return mf_emit(ctx, "a/+/b", "x", 1);
}

int publish(mf_ctx *ctx, const mf_msg *msgs, size_t n)
{
    const char *client = mf_param(ctx, "client");
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = mf_publish(ctx, client ? client : "c1", "pub", msgs[i].payload, msgs[i].payload_len, 1,
                        1);
    return rc;
}
