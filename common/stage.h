/* stage: what every stage process does the same way at start and stop.
 *
 *  - stage_init: names the process in logs, dies with its parent (PR_SET_PDEATHSIG SIGKILL,
 *    then checks the parent did not already die), installs SIGTERM/SIGINT/SIGHUP handlers
 *    that only set stage_stop_flag (without SA_RESTART, so blocking waits return -EINTR), and
 *    ignores SIGPIPE.
 *  - stage_pin: pins the process to one CPU (sched_setaffinity), cpu < 0 = leave alone.
 *  - stage_ready: tells the supervisor that the stage is attached and connected by writing
 *    "ready\n" to the fd named by the environment variable MQTTFLOW_READY_FD and closing it
 *    (STYLE 17). Without that variable (run by hand) it does nothing.
 *
 * Stage command lines (the supervisor's contract with the stage binaries):
 *   mqttflow-ingress CONFIG INGRESS_INDEX     (the i-th client that has topics)
 *   mqttflow-router  CONFIG
 *   mqttflow-worker  CONFIG WORKER_INDEX
 *   mqttflow-relay   CONFIG
 * Each loads the config itself (cfg_load without module checks), attaches the segments the
 * supervisor created, calls stage_ready, runs until stage_stop_flag, drains and exits with a
 * code of exitcode.h.
 */
#ifndef MF_STAGE_H
#define MF_STAGE_H

#include <signal.h>

extern volatile sig_atomic_t stage_stop_flag; /* set by SIGTERM/SIGINT */
extern volatile sig_atomic_t stage_hup_flag;  /* set by SIGHUP */

/* 0 or -errno (prctl/sigaction failures); -ESRCH when the parent is already gone. */
int stage_init(const char *process_name);
int stage_pin(int cpu);
/* 0, or -errno when the notification fd could not be written. */
int stage_ready(void);
/* Instead of ready: tells the supervisor in one line why this stage is about to exit (a
 * Python import error), shown by `mqttflow status` beside the exit. Control characters are
 * replaced; the line is cut at 190 bytes. Closes the fd like stage_ready; best effort. */
void stage_fail_note(const char *text);

#endif
