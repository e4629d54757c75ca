/* version: `mqttflow version` (and `mqttflow --version`): the callback API version and which
 * paho.mqtt.c the stages load, from where.
 *
 * The stage binaries sit beside this one and carry the same rpath ($ORIGIN/../lib/mqttflow,
 * then $ORIGIN), so the library this process finds through dlopen is the one they load:
 * mqttflow's private build (scripts/paho.sh, README.md "paho.mqtt.c") or, without it, the
 * system's. Nothing here links paho; a missing library is reported, not fatal to the rest.
 * Called from main only.
 */
#ifndef MF_SUPERVISOR_VERSION_H
#define MF_SUPERVISOR_VERSION_H

/* Prints the versions to stdout. argv[0] is the subcommand's name. Returns 0, or 1 when no
 * paho library can be loaded (the stages could not start either). */
int version_main(int argc, char **argv);

#endif
