/* Test module: abort_on calls abort() when the payload contains "ABORT"; otherwise it echoes
 * the message (topic = param "topic" or the message's). */
#include <signal.h>
#include <stdlib.h>

#include "echo_unless.h"

int abort_on(mf_ctx *ctx, const mf_msg *msgs, size_t n);

static void die(void)
{
    signal(SIGABRT, SIG_DFL);
    abort();
}

int abort_on(mf_ctx *ctx, const mf_msg *msgs, size_t n)
{
    return echo_unless(ctx, msgs, n, "ABORT", die);
}
