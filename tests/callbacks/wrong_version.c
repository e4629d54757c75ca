/* Test module: claims callback API version 999. It declares the version stamp itself instead
 * of including mqttflow.h (whose weak definition would say MF_API_VERSION). */
#include <stddef.h>

extern const int mf_api_version;
const int mf_api_version = 999;

int cb(void *ctx, const void *msgs, size_t n);

int cb(void *ctx, const void *msgs, size_t n)
{
    (void)ctx;
    (void)msgs;
    (void)n;
    return 0;
}
