/* Test module: built without mqttflow.h, so it has no mf_api_version and must be refused. */
#include <stddef.h>

int cb(void *ctx, const void *msgs, size_t n);

int cb(void *ctx, const void *msgs, size_t n)
{
    (void)ctx;
    (void)msgs;
    (void)n;
    return 0;
}
