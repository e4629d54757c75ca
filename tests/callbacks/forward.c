/* Test and bench module: the C forwarding callback that the Python one is measured against.
 *   forward  emits each message with the prefix param "in_prefix" (default "in/") of its topic
 *            replaced by param "out_prefix" (default "out/"); payload unchanged. A topic
 *            without the prefix gets out_prefix put in front.
 */
#include <mqttflow.h>

#include <string.h>

int forward(mf_ctx *ctx, const mf_msg *msgs, size_t n);

int forward(mf_ctx *ctx, const mf_msg *msgs, size_t n)
{
    const char *in = mf_param(ctx, "in_prefix"), *out = mf_param(ctx, "out_prefix");
    if (!in)
        in = "in/";
    if (!out)
        out = "out/";
    size_t il = strlen(in), ol = strlen(out);
    for (size_t i = 0; i < n; i++) {
        const char *rest = msgs[i].topic;
        if (strncmp(rest, in, il) == 0)
            rest += il;
        /* two copies, not snprintf: a forwarding callback should not pay for formatting */
        char topic[1024];
        size_t rl = strlen(rest);
        if (ol + rl >= sizeof(topic))
            return -1;
        mempcpy(mempcpy(topic, out, ol), rest, rl + 1); /* mempcpy: see echo.c */
        int rc = mf_emit(ctx, topic, msgs[i].payload, msgs[i].payload_len);
        if (rc != 0)
            return rc;
    }
    return 0;
}
