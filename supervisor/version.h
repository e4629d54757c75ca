/* version: what `mqttflow --version` prints: mqttflow's own version, the callback API version
 * (MF_API_VERSION of mqttflow.h) and the versions of the libraries it runs with, each as far
 * as the library can tell at run time (paho: MQTTAsync_getVersionInfo; libyaml:
 * yaml_get_version_string; liburing: io_uring_major/minor_version when the installed library
 * has them (liburing >= 2.4), else the version of the development files it was built with).
 */
#ifndef MF_SUPERVISOR_VERSION_H
#define MF_SUPERVISOR_VERSION_H

#include <stdio.h>

/* mqttflow's version ("0.1.0"; the VERSION file, given by the Makefile). */
const char *version_string(void);
/* Writes the version lines to f. */
void version_print(FILE *f);

#endif
