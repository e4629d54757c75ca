/* tap_cli: the reader of `mqttflow tap` (the stages' side is common/tap.h).
 *
 * Sends "tap POINT [RULE]" on the instance's control socket and keeps that connection open:
 * its close is how the supervisor learns the reader is gone (exit, Ctrl-C, kill -9) and
 * removes the tap. The answer names the tap segment and the client and rule names. Then it
 * prints one line per message copied into the segment, polling it every TAP_CLI_POLL_MS
 * when it is empty (the stages never wake a reader: that would cost them a syscall), and a
 * "# dropped" line whenever the stage had to drop copies because this reader fell behind.
 * Ends on SIGINT/SIGTERM, a closed stdout, or when the supervisor closes the connection
 * (the instance stopped); a summary goes to stderr. Runs in the CLI process.
 */
#ifndef MF_SUPERVISOR_TAP_CLI_H
#define MF_SUPERVISOR_TAP_CLI_H

#define TAP_CLI_POLL_MS 10

/* point: enum tap_point; rule: a rule name or NULL; filter: an MQTT topic filter the topics
 * must match, or NULL. Returns an exit code: MF_EXIT_OK when ended by a signal or the
 * instance's stop, MF_EXIT_FAILED when the instance cannot be tapped (message on stderr). */
int tap_cli_run(const char *sock, int point, const char *rule, const char *filter);

#endif
