/* Test module: hang_on loops forever when the payload contains "HANG" (the supervisor's
 * callback timeout must kill the worker); otherwise it echoes the message (topic = param
 * "topic" or the message's). */
#include "echo_unless.h"

int hang_on(mf_ctx *ctx, const mf_msg *msgs, size_t n);

static void hang(void)
{
    volatile int forever = 1;
    while (forever)
        ;
}

int hang_on(mf_ctx *ctx, const mf_msg *msgs, size_t n)
{
    return echo_unless(ctx, msgs, n, "HANG", hang);
}
