/* Test module: claims callback API version 999. It declares the version stamp itself instead
 * of including mqttflow.h (whose weak definition would say MF_API_VERSION); its callback is
 * no_version.c's. */
extern const int mf_api_version;
const int mf_api_version = 999;

#include "no_version.c"
