/* spawn: starts one stage process the way the supervisor needs it (DESIGN §1, IPC-LIMITS 6).
 *
 * posix_spawn (vfork + exec in glibc: no copy of the supervisor's page tables, so a restart
 * costs the stage's own start-up and nothing more) of a stage binary found next to the
 * running mqttflow binary (the folder of /proc/self/exe: the build tree), else in
 * ../libexec/mqttflow from there (an installed tree: bin/mqttflow and the stages in
 * libexec/mqttflow); the environment variable MQTTFLOW_STAGE_DIR overrides both, for tests and
 * unusual installs. The child gets:
 *   - the stage command line of common/stage.h,
 *   - a ready pipe's write end, named by MQTTFLOW_READY_FD,
 *   - an empty signal mask and default dispositions (the supervisor blocks the signals it
 *     reads through a signalfd; a stage must not inherit that),
 *   - its own process group, so a terminal's Ctrl-C reaches only the supervisor, which then
 *     stops the stages in pipeline order,
 *   - the supervisor's stdin/stdout/stderr (stage logs go to the supervisor's stderr).
 * After the spawn the child is pinned (sched_setaffinity on its pid) when cpu >= 0, and a
 * pidfd is opened to watch it. Called from the supervisor's one thread.
 */
#ifndef MF_SUPERVISOR_SPAWN_H
#define MF_SUPERVISOR_SPAWN_H

#include <stddef.h>
#include <sys/types.h>

#define SPAWN_MAX_ARGS 4

typedef struct spawn_req {
    const char *binary;               /* file name: "mqttflow-worker" */
    const char *args[SPAWN_MAX_ARGS]; /* after argv[0], NULL-terminated */
    int cpu;                          /* pin to this CPU, -1 = no pinning */
} spawn_req;

typedef struct spawn_child {
    pid_t pid;
    int pidfd;    /* readable when the child has exited; close it after reaping */
    int ready_fd; /* read end of the ready pipe (non-blocking, close-on-exec) */
} spawn_child;

/* The folder stage binaries are taken from, written into buf. 0 or -errno. */
int spawn_stage_dir(char *buf, size_t len);
/* Spawns req. 0 and *out filled (the caller owns both fds), or -errno with nothing left
 * behind (no process, no fd). A pinning failure is logged, not fatal: the stage runs
 * unpinned. */
int spawn_stage(const spawn_req *req, spawn_child *out);
/* Reaps the exited child behind pidfd without blocking: 0 and *wstatus, -EAGAIN when it
 * is still running, or -errno. */
int spawn_reap(int pidfd, int *wstatus);

#endif
