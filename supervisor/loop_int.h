/* loop_int: what the files of the supervisor's loop share (STYLE 4); not for other modules.
 *
 * loop.c runs the event loop, the stages' life cycle and the phases (start, run, stop);
 * loop_ctl.c answers the control socket (status, restart jobs, stop). Both work on the one
 * struct loop below, from the supervisor's one thread.
 */
#ifndef MF_SUPERVISOR_LOOP_INT_H
#define MF_SUPERVISOR_LOOP_INT_H

#include "loop.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "child.h"
#include "ctl.h"
#include "stats.h"
#include "topo.h"

#define COMP          "supervisor"
#define SAMPLE_NS     1000000000ull /* rates of `mqttflow status` cover this interval */
#define MAX_CONNS     16
#define REPLY_TIMEOUT 2000 /* ms a control client gets to take its reply */
#define N_STOP_GROUPS 4
/* a callback past callback_timeout_ms by this much is killed by the supervisor too */
#define CALLBACK_GRACE_NS 2000000000ull
/* a stop signal this long after the stop began forces it (issue 8 item 7) */
#define FORCE_AFTER_NS 1000000000ull

/* epoll tags: the source in the high half, an index (stage or connection) in the low half */
enum src { SRC_SIGNAL = 1, SRC_TIMER, SRC_LISTEN, SRC_PIDFD, SRC_READY, SRC_CONN };
#define TAG(src, i) (((uint64_t)(src) << 32) | (uint64_t)(i))
#define TAG_SRC(t)  ((enum src)((t) >> 32))
#define TAG_IDX(t)  ((size_t)((t)&0xffffffffu))

enum phase { PH_STARTUP, PH_RUNNING, PH_SHUTDOWN, PH_DONE };

typedef struct proc {
    child ch;
    enum stats_stage kind;
    size_t idx;  /* within its kind */
    size_t slot; /* stats slot */
    int group;   /* stop group: 0 ingress, 1 router, 2 workers, 3 relay */
    char id[64]; /* ingress: client id; worker: index; else "" */
    char idx_arg[16];
    const char *binary;
    int cpu;
    int pidfd, ready_fd;
    uint64_t spawned_ns;
    uint64_t prev_in, prev_out;
    double in_rate, out_rate;
} proc;

enum conn_use { CONN_FREE, CONN_READING, CONN_JOB, CONN_STOP };

typedef struct conn {
    ctl_conn c;
    enum conn_use use;
} conn;

typedef struct job {
    int active;
    size_t conn;  /* the client waiting for the result */
    size_t *list; /* procs to restart, one after the other */
    size_t n, pos;
    int waiting; /* list[pos] was asked to restart; waiting for it to be ready */
    pid_t old_pid;
    char *text; /* report so far (open_memstream) */
    size_t text_len;
    FILE *out;
} job;

struct loop {
    const cfg *c;
    char cfg_path[PATH_MAX];
    char sock_path[PATH_MAX];
    topo *topo;
    stats *st;
    int epfd, sigfd, timerfd, lfd;
    proc *procs;
    size_t n_procs, n_ingress, n_workers;
    size_t *start_order;
    size_t start_pos;
    enum phase phase;
    int stop_group;
    int exit_code;
    int kill_all; /* a second stop signal: SIGKILL whatever is left */
    /* monotonic time the stop began: a stop signal within FORCE_AFTER_NS of it is the same
     * request delivered twice (timeout(1), an init system forwarding SIGTERM), not a person
     * pressing Ctrl-C again */
    uint64_t stop_began_ns;
    uint64_t born_ns, last_sample_ns, next_sample_ns;
    double sample_s;
    uint64_t next_stats_log_ns;
    conn conns[MAX_CONNS];
    job job;
};

/* ---- loop.c ---- */

/* Feeds an event to stage i's state machine and carries out the resulting action. */
void loop_dispatch(loop *l, size_t i, enum child_event ev, int wstatus);
/* Enters the stop phase (no-op when already stopping); code becomes the exit code unless an
 * earlier failure set one. */
void loop_begin_shutdown(loop *l, int code);
/* Adds fd to the epoll set with tag. 0 or -errno (logged). */
int loop_watch(loop *l, int fd, uint64_t tag);
/* Removes *fd from the epoll set, closes it and sets it to -1. Accepts -1. */
void loop_close_watched(loop *l, int *fd);
/* "worker 3", "ingress client1", "router" */
void loop_proc_name(const proc *p, char *buf, size_t len);
const char *loop_phase_name(enum phase ph);

/* ---- loop_ctl.c ---- */

/* Accepts every pending connection on the control socket. */
void loop_ctl_accept(loop *l);
/* Connection j is readable: reads, and handles a complete request. */
void loop_ctl_readable(loop *l, size_t j);
/* Advances the restart job, if any (after any change of a stage's state). */
void loop_ctl_job_step(loop *l);
/* Ends the restart job with error (NULL: success) and answers its client. */
void loop_ctl_job_finish(loop *l, const char *error);
/* At exit: answers "stopped" to the clients of `mqttflow stop`, closes every connection. */
void loop_ctl_close_all(loop *l);

#endif
