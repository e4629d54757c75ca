/* cli: the subcommands of the `mqttflow` binary (DESIGN §6).
 *
 *   mqttflow check CONFIG                     validate (dlopens every callback), exit 0 or 2
 *   mqttflow run CONFIG                       the supervisor, in the foreground
 *   mqttflow status [--prom] [CONFIG | -c CONFIG | -i INSTANCE | -s SOCKET]
 *   mqttflow restart [-c CONFIG | -i INSTANCE | -s SOCKET] worker N | workers | router |
 *                    relay | ingress CLIENT_ID | ingresses
 *   mqttflow stop [CONFIG | -c CONFIG | -i INSTANCE | -s SOCKET]
 *   mqttflow try CONFIG (--topic T --payload P [--client C] | --file F)   (try.h)
 *   mqttflow help [COMMAND] | --help | --version
 *
 * status, restart and stop talk to a running supervisor through its control socket (ctl.h);
 * without any option they use the one instance running with a default socket path (or
 * "default" when none runs, and ask to choose when several do). Each function takes the
 * subcommand's argv (argv[0] is the subcommand's name) and returns the process exit code: 0, 1
 * (failed, or the instance is not running), 2 (usage or configuration error). Called from main
 * only.
 */
#ifndef MF_SUPERVISOR_CLI_H
#define MF_SUPERVISOR_CLI_H

#include <stdio.h>

#include "cfg.h"

int cli_check(int argc, char **argv);
int cli_run(int argc, char **argv);
int cli_status(int argc, char **argv);
int cli_restart(int argc, char **argv);
int cli_stop(int argc, char **argv);
int cli_tap(int argc, char **argv); /* `mqttflow tap` (tap_cli.h) */
void cli_usage(FILE *f);
/* Loads path, printing every error (and, with warnings set, every warning) to stderr.
 * NULL when it did not load. */
cfg *cli_load_config(const char *path, unsigned flags, int warnings);
/* The config's logging: section (default and per-component levels) for this process. */
void cli_setup_logging(const cfg *c, const char *process);
/* Dispatches argv[1] to its command (the one table of cli.c); the process exit code. */
int cli_main(int argc, char **argv);

#endif
