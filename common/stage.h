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
 * Each main.c is a stage_def (below) handed to stage_main, the one skeleton of every stage
 * (common/stage_main.c): parse the command line, stage_init, load the config (cfg_load
 * without module checks) and apply its log levels, attach the stats segment the supervisor
 * created and take the stage's slot (its pid), pin the CPU, then the stage's own create, run
 * (which calls stage_ready, loops until stage_stop_flag and drains) and destroy, then clear
 * the slot's pid, detach and exit with a code of exitcode.h.
 *
 * Signals: stage_init's handlers only set the flags; each stage's own event loop (route_run,
 * run_loop, pump_run, ingress_loop_run) reads stage_stop_flag every turn, and its waits
 * (futex, poll, io_uring) return early on the signal (no SA_RESTART) or end within their
 * bounded timeout (at most 200 ms), so a signal that lands just before a wait is late by that
 * much at most.
 *
 * Exit codes, the same for every stage (the supervisor's child.c: MF_EXIT_CONFIG is "a
 * configuration error, not restarted", anything else but 0 is restarted with backoff until the
 * restart intensity gives up):
 *   - a wrong command line (argument count, an index that is not a number or beyond the
 *     config's clients with topics / runtime.workers): MF_EXIT_CONFIG. The supervisor built
 *     it from the config; a respawn gets the same one.
 *   - cfg_load fails: MF_EXIT_CONFIG, whether the file is wrong (-EINVAL) or cannot be read
 *     (the supervisor read it moments before: it was changed, moved or made unreadable, and a
 *     respawn reads it the same way), except -ENOMEM, -EMFILE, -ENFILE (a shortage that may
 *     pass): MF_EXIT_FAILED.
 *   - no stats segment, or one without this stage's slot: MF_EXIT_FAILED, in every stage.
 *     The supervisor creates it before any stage and reads the slot to supervise (pid,
 *     heartbeat, a worker's busy_since_ns for the callback backstop, the worker's death
 *     fields); a stage running without it would be one it cannot watch. Only a stage started
 *     by hand meets this, and its rings are missing too. (The router and the worker used to
 *     count into a private slot and go on; the ingress and the relay failed.)
 *   - the stage's create fails: stage_exit_code(rc): -EINVAL (by each module's contract, "this
 *     configuration cannot work": a rule that does not compile, a client the MQTT library
 *     refuses, a callback module that does not load) is MF_EXIT_CONFIG, anything else
 *     (a ring missing, out of memory) MF_EXIT_FAILED.
 *   - run returns 0: MF_EXIT_OK; < 0: MF_EXIT_FAILED.
 *   - stage_init fails (the parent is gone, sigaction): MF_EXIT_FAILED.
 */
#ifndef MF_STAGE_H
#define MF_STAGE_H

#include <signal.h>
#include <stddef.h>

#include "cfg.h"
#include "stats.h"

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

/* What stage_main hands a stage's create: valid until its destroy has returned. */
typedef struct stage {
    const cfg *conf;
    size_t index;     /* ingress or worker index; 0 for the router and the relay */
    stats *st;        /* the instance's stats segment (other slots, taps, per-rule counters) */
    stats_slot *slot; /* this stage's slot: its pid is set; the stage writes its counters */
} stage;

/* One stage binary: its kind (the stats slot, the command line, the process and log
 * component name, the CPU to pin) and its three steps. */
typedef struct stage_def {
    enum stats_stage kind;
    /* Builds the stage: 0 and *app, or -errno (logged; mapped by stage_exit_code). */
    int (*create)(const stage *s, void **app);
    /* Reports ready (stage_ready), runs until stage_stop_flag, drains: 0 or -errno. */
    int (*run)(void *app);
    void (*destroy)(void *app); /* accepts NULL */
} stage_def;

/* The whole life of the stage process (see above); returns its exit code (exitcode.h). */
int stage_main(const stage_def *d, int argc, char **argv);
/* The exit code of a failed create: MF_EXIT_CONFIG for -EINVAL, else MF_EXIT_FAILED. */
int stage_exit_code(int rc);

#endif
