/* Test module of the pipeline tests (tests/integration/2x): it_slow takes its time.
 *
 * it_slow spends param "us" microseconds (default 500) per message, sleeping, then emits the
 * message again on param "prefix" + its topic (default "out/"), payload unchanged. It makes
 * a worker slower than the publisher so that records pile up in the rings: a drain on
 * SIGTERM or a restart then has a backlog to carry.
 */
#include <mqttflow.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int it_slow(mf_ctx *ctx, const mf_msg *msgs, size_t n);

int it_slow(mf_ctx *ctx, const mf_msg *msgs, size_t n)
{
    const char *us_s = mf_param(ctx, "us");
    const char *prefix = mf_param(ctx, "prefix");
    long us = us_s ? atol(us_s) : 500;
    if (!prefix)
        prefix = "out/";
    for (size_t i = 0; i < n; i++) {
        struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
        /* a signal (the worker's SIGTERM) cuts a sleep short: finish it, this is a delay */
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
        char topic[512];
        int len = snprintf(topic, sizeof(topic), "%s%s", prefix, msgs[i].topic);
        if (len < 0 || (size_t)len >= sizeof(topic))
            return -ENAMETOOLONG;
        int rc = mf_emit(ctx, topic, msgs[i].payload, msgs[i].payload_len);
        if (rc != 0)
            return rc;
    }
    return 0;
}
