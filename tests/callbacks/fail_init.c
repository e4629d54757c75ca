/* Test module: mf_init refuses (returns -1), so a worker naming it must not start. */
#include <mqttflow.h>

int mf_init(mf_ctx *ctx);
int never_called(mf_ctx *ctx, const mf_msg *msgs, size_t n);

int mf_init(mf_ctx *ctx)
{
    mf_log(ctx, MF_LOG_ERROR, "fail_init: refusing on purpose");
    return -1;
}

int never_called(mf_ctx *ctx, const mf_msg *msgs, size_t n)
{
    (void)ctx;
    (void)msgs;
    (void)n;
    return 0;
}
