/* loop_int: what the files of the supervisor's loop share (STYLE 4); not for other modules.
 *
 * loop.c runs the event loop, the stages' life cycle and the phases (start, run, stop);
 * loop_proc.c carries out child.c's actions on the stages' processes and names them;
 * loop_job.c runs a restart job; loop_ctl.c parses control requests and writes the replies;
 * loop_obs.c renders what the supervisor shows. All work on the one struct loop below, from
 * the supervisor's one thread. Calls go one way only, no circle:
 *   loop.c -> loop_ctl.c -> loop_job.c -> loop_proc.c, and loop_ctl.c, loop.c -> loop_obs.c
 *   -> loop_proc.c (loop.c also calls loop_job.c and loop_proc.c directly).
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
#include "httpd.h"
#include "stats.h"
#include "tap.h"
#include "topo.h"

#define COMP          "supervisor"
#define SAMPLE_NS     1000000000ull /* rates of `mqttflow status` cover this interval */
#define MAX_CONNS     16
#define REPLY_TIMEOUT 2000 /* ms a control client gets to take its reply */
/* ms a control client gets to send its request line (the CLI sends it at once); an idle
 * connection is closed after it, and the oldest one still reading gives way when all
 * MAX_CONNS are taken, so idle connections never lock `status` out (PostgreSQL's
 * authentication_timeout plays the same part) */
#define READ_TIMEOUT_NS 3000000000ull
#define N_STOP_GROUPS   4
/* a callback past callback_timeout_ms by this much is killed by the supervisor too */
#define CALLBACK_GRACE_NS 2000000000ull
/* a stop signal this long after the stop began forces it (issue 8 item 7) */
#define FORCE_AFTER_NS 1000000000ull

/* epoll tags: the source in the high half, an index (stage or connection) in the low half */
enum src { SRC_SIGNAL = 1, SRC_TIMER, SRC_LISTEN, SRC_PIDFD, SRC_READY, SRC_CONN, SRC_HTTP };
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
    double cpu_s, cpu_pct; /* of the current process, sampled (loop_obs.c) */
} proc;

enum conn_use { CONN_FREE, CONN_READING, CONN_JOB, CONN_STOP, CONN_TAP };

typedef struct conn {
    ctl_conn c;
    enum conn_use use;
    uint64_t since_ns; /* accepted at (CONN_READING: the read timeout counts from here) */
} conn;

typedef struct job {
    int active;
    size_t conn;  /* the client waiting for the result */
    size_t *list; /* procs to restart, one after the other */
    size_t n, pos;
    int waiting; /* list[pos] was asked to restart; waiting for it to be ready */
    pid_t old_pid;
    int ended;       /* done or failed: the reply waits for loop_job_take */
    char error[320]; /* why it failed, "" = it did not */
    char *text;      /* report so far (open_memstream) */
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
    httpd *http;            /* runtime.metrics.listen, NULL = off */
    uint64_t spool_bytes;   /* under runtime.spool_dir, sampled */
    tap *taps[TAP_N];       /* `mqttflow tap` readers: one per point, NULL = none */
    size_t tap_conn[TAP_N]; /* the reader's control connection, whose close ends the tap */
    uint64_t tap_gen;       /* last generation handed out (stats_tap_gen) */
};

/* ---- loop.c ---- */

/* Enters the stop phase (no-op when already stopping); code becomes the exit code unless an
 * earlier failure set one. */
void loop_begin_shutdown(loop *l, int code);

/* ---- loop_proc.c ---- */

/* Feeds an event to stage i's state machine and carries out the resulting action. */
void loop_dispatch(loop *l, size_t i, enum child_event ev, int wstatus);
/* Sends sig to p through its pidfd (none: nothing); a failure other than ESRCH is logged. */
void loop_send_signal(loop *l, proc *p, int sig);
/* Adds fd to the epoll set with tag. 0 or -errno (logged). */
int loop_watch(loop *l, int fd, uint64_t tag);
/* Removes *fd from the epoll set, closes it and sets it to -1. Accepts -1. */
void loop_close_watched(loop *l, int *fd);
/* "supervisor", "ingress", "router", "worker", "relay": the one table of stage names */
const char *loop_kind_name(enum stats_stage kind);
/* "worker 3", "ingress client1", "router" */
void loop_proc_name(const proc *p, char *buf, size_t len);
const char *loop_phase_name(enum phase ph);

/* ---- loop_job.c ---- */

/* Starts a restart job of the n procs in list for the client on connection j; note (or
 * NULL) opens its report. 0, or -ENOMEM (no job). loop_job_step then takes the first step. */
int loop_job_start(loop *l, size_t j, const size_t *list, size_t n, const char *note);
/* Advances the job (after any change of a stage's state). 1 when it has ended (done or
 * failed) and its reply waits for loop_job_take, 0 while it waits for a stage. */
int loop_job_step(loop *l);
/* Ends the job (with error, unless it failed already; NULL: as it stands) and returns its
 * reply, malloc'ed (NULL on ENOMEM), and in *conn_out the connection that waits for it. */
char *loop_job_take(loop *l, const char *error, size_t *conn_out);

/* ---- loop_obs.c ---- */

/* What `status` prints: the table, Prometheus text, JSON, the per-rule table. */
enum obs_mode { OBS_TABLE, OBS_PROM, OBS_JSON, OBS_RULES };
/* The mode a control request asks for ("status", "status prom", ...), -1 if not a status. */
int loop_obs_mode(const char *request);
/* The status text in mode, malloc'ed; NULL on ENOMEM. */
char *loop_obs_text(loop *l, int mode);
/* Per sample: CPU time of every stage, the spool's bytes. dt = seconds since the last. */
void loop_obs_sample(loop *l, double dt);
/* Starts the HTTP endpoint when runtime.metrics.listen is set. 0 or -errno (logged). */
int loop_obs_start(loop *l);
/* The endpoint's eventfd is readable: renders the pages for the waiting requests. */
void loop_obs_http(loop *l);
/* "tap POINT [RULE]" on connection j: creates the tap, answers its names, keeps j open. */
void loop_obs_tap(loop *l, size_t j, char *args);
/* A tap's connection j is readable: its reader went away (EOF) ends the tap. */
void loop_obs_tap_event(loop *l, size_t j);
/* At exit: removes the taps, stops the HTTP endpoint. */
void loop_obs_stop(loop *l);

/* ---- loop_ctl.c ---- */

/* Accepts every pending connection on the control socket. */
void loop_ctl_accept(loop *l);
/* Closes connections that sent no complete request within READ_TIMEOUT_NS (timer tick). */
void loop_ctl_sweep(loop *l, uint64_t now);
/* Connection j is readable: reads, and handles a complete request. 1 when the request
 * was "stop" (answered; the caller begins the shutdown), else 0. */
int loop_ctl_readable(loop *l, size_t j);
/* Advances the restart job, if any (loop_job_step), and answers its client once it ended. */
void loop_ctl_job_step(loop *l);
/* Ends the restart job with error (NULL: success) and answers its client. */
void loop_ctl_job_finish(loop *l, const char *error);
/* At exit: answers "stopped" to the clients of `mqttflow stop`, closes every connection. */
void loop_ctl_close_all(loop *l);

#endif
