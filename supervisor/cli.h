/* cli: the subcommands of the `mqttflow` binary (DESIGN §6).
 *
 *   mqttflow check CONFIG                     validate (dlopens every callback), exit 0 or 2
 *   mqttflow run CONFIG                       the supervisor, in the foreground
 *   mqttflow status [--prom] [CONFIG | -c CONFIG | -i INSTANCE | -s SOCKET]
 *   mqttflow restart [-c CONFIG | -i INSTANCE | -s SOCKET] worker N | workers | router |
 *                    relay | ingress CLIENT_ID | ingresses
 *   mqttflow stop [CONFIG | -c CONFIG | -i INSTANCE | -s SOCKET]
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

int cli_check(int argc, char **argv);
int cli_run(int argc, char **argv);
int cli_status(int argc, char **argv);
int cli_restart(int argc, char **argv);
int cli_stop(int argc, char **argv);
int cli_tap(int argc, char **argv); /* `mqttflow tap` (tap_cli.h) */
void cli_usage(FILE *f);

#endif
