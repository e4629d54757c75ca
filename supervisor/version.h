/* version: `mqttflow version` (and `mqttflow --version`): the callback API version and which
 * paho.mqtt.c the stages load, from where.
 *
 * The stage binaries sit beside this one and carry the same rpath ($ORIGIN/../lib/mqttflow,
 * then $ORIGIN), and this binary links paho too (for this alone), so the library the loader
 * gave this process is the one it gives them: mqttflow's private build (scripts/paho.sh,
 * README.md "paho.mqtt.c") or, without it, the system's. Called from main only.
 */
#ifndef MF_SUPERVISOR_VERSION_H
#define MF_SUPERVISOR_VERSION_H

/* Prints the versions to stdout. argv[0] is the subcommand's name. Cannot fail: returns 0. */
int version_main(int argc, char **argv);

#endif
