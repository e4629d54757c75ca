/* child: the life of one supervised stage process as a state-by-event table (DESIGN §1).
 *
 * The supervisor keeps one child per stage (each ingress, the router, each worker, the relay).
 * This module decides, it never acts: child_event maps (state, event) to a new state and
 * returns the one action the event loop must carry out (spawn, SIGTERM, SIGKILL). Keeping the
 * decisions pure makes the restart policy testable without processes or clocks:
 *
 *   - a stage that dies on its own is respawned after a backoff of 100 ms, doubling up to 5 s;
 *     the backoff starts again at 100 ms once a stage has stayed up for CHILD_STABLE_NS;
 *   - restart intensity: more than CHILD_MAX_RESTARTS restarts within CHILD_WINDOW_NS puts
 *     the child in FAILED, with the reason kept for `mqttflow status`. It is tried again
 *     after CHILD_COOLDOWN_NS: a worker that a burst of poison messages crash-looped must not
 *     stay down for good, since the router would then block on its full input ring and stall
 *     every rule (the poison records are dead-lettered after max_attempts meanwhile);
 *   - a worker that died running a record (in a callback: the loop sets in_record before the
 *     EXIT) is respawned after CHILD_BACKOFF_MIN_NS without doubling the backoff, and counted
 *     against its own, larger limit (more than CHILD_MAX_RECORD_RESTARTS within the window:
 *     FAILED with a cool-down as above). The record is to blame, not the stage: the ring's
 *     attempt count dead-letters it after runtime.max_attempts, so a poison message costs
 *     max_attempts quick restarts and the worker is at full rate again within about 100 ms.
 *     The limit still bounds a callback that crashes on every message (at most one spawn
 *     every 100 ms until then: a few % of a CPU);
 *   - exit code 2 (MF_EXIT_CONFIG) and 127 (MF_EXIT_EXEC) are never respawned: FAILED at once;
 *   - a requested restart (CHILD_EV_RESTART) respawns at once, without backoff, and does not
 *     count against the intensity limit;
 *   - a stop (CHILD_EV_STOP) ends in STOPPED, whatever the exit status.
 *
 * Why a public struct instead of an opaque type (STYLE 5): the supervisor keeps its children
 * in one array that the event loop, the status formatter and the tests all read; the fields
 * are written only by this module's functions. Single-threaded (the supervisor's loop).
 */
#ifndef MF_SUPERVISOR_CHILD_H
#define MF_SUPERVISOR_CHILD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CHILD_BACKOFF_MIN_NS      100000000ull   /* 100 ms */
#define CHILD_BACKOFF_MAX_NS      5000000000ull  /* 5 s */
#define CHILD_STABLE_NS           10000000000ull /* up this long: the backoff starts over */
#define CHILD_MAX_RESTARTS        5              /* more than this many within the window: failed */
#define CHILD_WINDOW_NS           10000000000ull /* 10 s */
#define CHILD_MAX_RECORD_RESTARTS 30             /* deaths running a record: more in the window */
#define CHILD_COOLDOWN_NS         30000000000ull /* FAILED by intensity: tried again after this */
#define CHILD_READY_TIMEOUT_NS    30000000000ull /* spawn -> ready, else SIGKILL */
#define CHILD_STOP_TIMEOUT_NS     10000000000ull /* SIGTERM -> exit, else SIGKILL */
#define CHILD_REASON_MAX          400

enum child_state {
    CHILD_IDLE,     /* never started */
    CHILD_STARTING, /* spawned, waiting for its ready notification */
    CHILD_RUNNING,  /* ready */
    CHILD_STOPPING, /* SIGTERM sent (stop or requested restart), waiting for the exit */
    CHILD_BACKOFF,  /* died; respawn when the deadline passes */
    CHILD_FAILED,   /* not respawned (reason says why): exit 2/127 until a requested restart,
                       a crash loop until its cool-down is over */
    CHILD_STOPPED,  /* exited after a stop */
    CHILD_N_STATES
};

enum child_event {
    CHILD_EV_START,   /* start it (supervisor start-up) */
    CHILD_EV_READY,   /* its ready fd said "ready" */
    CHILD_EV_EXIT,    /* it exited (wait status given) or the spawn failed */
    CHILD_EV_TIMER,   /* its deadline passed */
    CHILD_EV_RESTART, /* `mqttflow restart ...` */
    CHILD_EV_STOP,    /* shutdown */
    CHILD_N_EVENTS
};

enum child_action {
    CHILD_ACT_NONE,
    CHILD_ACT_SPAWN, /* spawn now, then call child_spawned (or CHILD_EV_EXIT on failure) */
    CHILD_ACT_TERM,  /* send SIGTERM */
    CHILD_ACT_KILL,  /* send SIGKILL */
};

typedef struct child {
    enum child_state state;
    pid_t pid;            /* current process, 0 when none */
    uint64_t deadline_ns; /* CLOCK_MONOTONIC; meaningful in STARTING/STOPPING/BACKOFF */
    uint64_t started_ns;  /* spawn time of the current process */
    uint64_t backoff_ns;  /* the next automatic restart's delay */
    uint64_t restarts;    /* every respawn, requested or not (shown by status) */
    uint64_t recent[CHILD_MAX_RESTARTS + 1]; /* times of the last automatic restarts (ring) */
    unsigned n_recent;    /* how many entries of recent are valid (<= its size) */
    unsigned recent_next; /* where the next one goes */
    uint64_t rec_recent[CHILD_MAX_RECORD_RESTARTS + 1]; /* the same for deaths in a record */
    unsigned n_rec_recent, rec_recent_next;
    int in_record;         /* set by the caller before CHILD_EV_EXIT: it died running a record */
    int restart_requested; /* STOPPING because of CHILD_EV_RESTART: respawn at once */
    int stop_requested;    /* STOPPING because of CHILD_EV_STOP: end in STOPPED */
    int cooldown;          /* FAILED by restart intensity: retried at deadline_ns */
    int last_status;       /* last wait status (-1: none yet, or a failed spawn) */
    char reason[CHILD_REASON_MAX]; /* why it is FAILED/BACKOFF, or "" */
    /* what the stage said about its own failure before exiting (stage_fail_note: a Python
     * import error), added to the reason of an exit 2; "" when it said nothing */
    char note[CHILD_REASON_MAX / 2];
} child;

/* Starts a child in IDLE. Cannot fail. */
void child_init(child *c);
/* Feeds one event at time now_ns (CLOCK_MONOTONIC). wstatus is the wait status for
 * CHILD_EV_EXIT (-1 when the spawn itself failed) and ignored otherwise. Returns the action
 * the caller must carry out. An event that means nothing in the current state is ignored
 * (CHILD_ACT_NONE), e.g. a late READY after an exit. Cannot fail. */
enum child_action child_event(child *c, enum child_event ev, int wstatus, uint64_t now_ns);
/* The spawn of CHILD_ACT_SPAWN succeeded: the child is STARTING with pid, its ready deadline
 * set. */
void child_spawned(child *c, pid_t pid, uint64_t now_ns);
/* Whether the state has a deadline the loop must arm a timer for. */
int child_has_deadline(const child *c);
/* Whether the child has no process and will not get one without an event from outside
 * (IDLE, STOPPED, FAILED). */
int child_is_down(const child *c);
/* "starting", "running", ... for status lines. Never NULL. */
const char *child_state_name(enum child_state s);
/* Describes a wait status ("exit 1", "killed by SIGKILL") into buf. */
void child_describe_status(int wstatus, char *buf, size_t len);

#endif
