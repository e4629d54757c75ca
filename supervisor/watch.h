/* watch: `mqttflow status --watch`, the status table refreshed in place like top.
 *
 * Asks the control socket for the table once per WATCH_PERIOD_MS and redraws the screen
 * (the terminal's alternate screen when stdout is one, so the shell's screen comes back
 * afterwards). q quits, and so do Ctrl-C and SIGTERM; the terminal's mode is restored on every
 * way out. The supervisor computes the rates and CPU% over its own sampling interval, so the
 * numbers do not depend on how often anyone watches. Run by the CLI process; not reentrant
 * (it owns the terminal and SIGINT/SIGTERM while it runs).
 */
#ifndef MF_SUPERVISOR_WATCH_H
#define MF_SUPERVISOR_WATCH_H

#define WATCH_PERIOD_MS 1000

/* Runs until quit. An instance that stops answering is shown as such and watched on (it may
 * come back). Returns an exit code (MF_EXIT_OK on quit). */
int watch_run(const char *sock, int timeout_ms);

#endif
