/* child: state-by-event table of one supervised stage (see child.h). */
#include "child.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "exitcode.h"

/* A second SIGKILL is sent this long after the first if no exit was seen. A SIGKILL is not
 * lost, so this is a safety net against a missed exit notice, not a policy. */
#define REKILL_NS 1000000000ull

typedef enum child_action (*handler)(child *c, int wstatus, uint64_t now);

static enum child_action spawn_now(child *c)
{
    /* STARTING with no pid until child_spawned; a spawn failure comes back as an EXIT. */
    c->state = CHILD_STARTING;
    c->pid = 0;
    c->restart_requested = 0;
    c->stop_requested = 0;
    c->note[0] = '\0';
    return CHILD_ACT_SPAWN;
}

static enum child_action term_now(child *c, uint64_t now)
{
    c->state = CHILD_STOPPING;
    c->deadline_ns = now + CHILD_STOP_TIMEOUT_NS;
    return CHILD_ACT_TERM;
}

static unsigned in_window(const uint64_t *times, unsigned n, uint64_t now)
{
    unsigned k = 0;
    for (unsigned i = 0; i < n; i++)
        if (now - times[i] < CHILD_WINDOW_NS)
            k++;
    return k;
}

static void times_add(uint64_t *times, unsigned cap, unsigned *n, unsigned *next, uint64_t now)
{
    times[*next] = now;
    *next = (*next + 1) % cap;
    if (*n < cap)
        (*n)++;
}

static unsigned recent_in_window(const child *c, uint64_t now)
{
    return in_window(c->recent, c->n_recent, now);
}

static void recent_add(child *c, uint64_t now)
{
    times_add(c->recent, sizeof(c->recent) / sizeof(c->recent[0]), &c->n_recent, &c->recent_next,
              now);
}

static void fail_by_intensity(child *c, uint64_t now, int limit, const char *what, const char *kind)
{
    c->state = CHILD_FAILED;
    c->cooldown = 1;
    c->deadline_ns = now + CHILD_COOLDOWN_NS;
    snprintf(c->reason, sizeof(c->reason),
             "restart intensity: more than %d %s in %llu s (last: %s); next try in %llu s", limit,
             kind, (unsigned long long)(CHILD_WINDOW_NS / 1000000000ull), what,
             (unsigned long long)(CHILD_COOLDOWN_NS / 1000000000ull));
}

/* A death while running a record: the record is retried and dead-lettered by its attempt
 * count, so the stage comes back at once (minimum backoff, not doubled), within a larger
 * limit of its own. */
static enum child_action on_record_crash(child *c, uint64_t now, const char *what)
{
    if (in_window(c->rec_recent, c->n_rec_recent, now) >= CHILD_MAX_RECORD_RESTARTS) {
        fail_by_intensity(c, now, CHILD_MAX_RECORD_RESTARTS, what, "deaths running records");
        return CHILD_ACT_NONE;
    }
    times_add(c->rec_recent, sizeof(c->rec_recent) / sizeof(c->rec_recent[0]), &c->n_rec_recent,
              &c->rec_recent_next, now);
    c->state = CHILD_BACKOFF;
    c->deadline_ns = now + CHILD_BACKOFF_MIN_NS;
    snprintf(c->reason, sizeof(c->reason),
             "%s running a record (retried, dead-lettered after "
             "max_attempts)",
             what);
    return CHILD_ACT_NONE;
}

/* An exit nobody asked for (STARTING or RUNNING): fail, or back off and respawn. */
static enum child_action on_crash(child *c, int wstatus, uint64_t now)
{
    char what[48];

    c->last_status = wstatus;
    c->pid = 0;
    child_describe_status(wstatus, what, sizeof(what));
    if (wstatus != -1 && WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == MF_EXIT_CONFIG) {
        c->state = CHILD_FAILED;
        snprintf(c->reason, sizeof(c->reason), "%s: configuration error, not restarted%s%s", what,
                 c->note[0] ? ": " : "", c->note);
        return CHILD_ACT_NONE;
    }
    if (wstatus != -1 && WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == MF_EXIT_EXEC) {
        c->state = CHILD_FAILED;
        snprintf(c->reason, sizeof(c->reason), "%s: stage binary could not be executed", what);
        return CHILD_ACT_NONE;
    }
    if (c->started_ns && now - c->started_ns >= CHILD_STABLE_NS)
        c->backoff_ns = CHILD_BACKOFF_MIN_NS;
    int in_record = c->in_record;
    c->in_record = 0;
    if (in_record)
        return on_record_crash(c, now, what);
    if (recent_in_window(c, now) >= CHILD_MAX_RESTARTS) {
        fail_by_intensity(c, now, CHILD_MAX_RESTARTS, what, "restarts");
        return CHILD_ACT_NONE;
    }
    recent_add(c, now);
    c->state = CHILD_BACKOFF;
    c->deadline_ns = now + c->backoff_ns;
    c->backoff_ns *= 2;
    if (c->backoff_ns > CHILD_BACKOFF_MAX_NS)
        c->backoff_ns = CHILD_BACKOFF_MAX_NS;
    snprintf(c->reason, sizeof(c->reason), "%s", what);
    return CHILD_ACT_NONE;
}

static enum child_action ignore(child *c, int wstatus, uint64_t now)
{
    (void)c;
    (void)wstatus;
    (void)now;
    return CHILD_ACT_NONE;
}

static enum child_action start(child *c, int wstatus, uint64_t now)
{
    (void)wstatus;
    (void)now;
    c->reason[0] = '\0';
    return spawn_now(c);
}

static enum child_action stop_idle(child *c, int wstatus, uint64_t now)
{
    (void)wstatus;
    (void)now;
    c->state = CHILD_STOPPED;
    return CHILD_ACT_NONE;
}

static enum child_action ready(child *c, int wstatus, uint64_t now)
{
    (void)wstatus;
    (void)now;
    c->state = CHILD_RUNNING;
    c->reason[0] = '\0';
    return CHILD_ACT_NONE;
}

static enum child_action ready_timeout(child *c, int wstatus, uint64_t now)
{
    (void)wstatus;
    if (c->pid == 0)
        return CHILD_ACT_NONE;
    snprintf(c->reason, sizeof(c->reason), "no ready notification within %llu s",
             (unsigned long long)(CHILD_READY_TIMEOUT_NS / 1000000000ull));
    c->deadline_ns = now + REKILL_NS;
    return CHILD_ACT_KILL;
}

static enum child_action request_term(child *c, int wstatus, uint64_t now)
{
    (void)wstatus;
    c->restart_requested = 1;
    return term_now(c, now);
}

static enum child_action stop_term(child *c, int wstatus, uint64_t now)
{
    (void)wstatus;
    if (c->pid == 0) { /* spawn in flight cannot happen: the loop acts synchronously */
        c->state = CHILD_STOPPED;
        return CHILD_ACT_NONE;
    }
    c->stop_requested = 1;
    return term_now(c, now);
}

static enum child_action stop_exit(child *c, int wstatus, uint64_t now)
{
    (void)now;
    c->last_status = wstatus;
    c->pid = 0;
    if (c->stop_requested) {
        c->state = CHILD_STOPPED;
        return CHILD_ACT_NONE;
    }
    c->restarts++;
    return spawn_now(c);
}

static enum child_action stop_timeout(child *c, int wstatus, uint64_t now)
{
    (void)wstatus;
    c->deadline_ns = now + REKILL_NS;
    return CHILD_ACT_KILL;
}

static enum child_action stop_again(child *c, int wstatus, uint64_t now)
{
    (void)wstatus;
    (void)now;
    c->stop_requested = 1; /* a restart in progress becomes a stop */
    return CHILD_ACT_NONE;
}

static enum child_action backoff_over(child *c, int wstatus, uint64_t now)
{
    (void)wstatus;
    (void)now;
    c->restarts++;
    return spawn_now(c);
}

static enum child_action backoff_restart(child *c, int wstatus, uint64_t now)
{
    (void)wstatus;
    (void)now;
    c->restarts++;
    c->reason[0] = '\0';
    return spawn_now(c);
}

static enum child_action failed_stop(child *c, int wstatus, uint64_t now)
{
    (void)wstatus;
    (void)now;
    c->cooldown = 0; /* stays FAILED; no retry during or after a stop */
    return CHILD_ACT_NONE;
}

static enum child_action failed_restart(child *c, int wstatus, uint64_t now)
{
    (void)wstatus;
    (void)now;
    /* the operator asks for it, or the cool-down of a crash loop is over: a fresh start,
     * the old failures are forgiven */
    c->cooldown = 0;
    c->n_recent = 0;
    c->recent_next = 0;
    c->n_rec_recent = 0;
    c->rec_recent_next = 0;
    c->backoff_ns = CHILD_BACKOFF_MIN_NS;
    c->restarts++;
    c->reason[0] = '\0';
    return spawn_now(c);
}

static enum child_action failed_retry(child *c, int wstatus, uint64_t now)
{
    if (!c->cooldown)
        return CHILD_ACT_NONE; /* exit 2 / 127: only a request brings it back */
    return failed_restart(c, wstatus, now);
}

/* Rows: states; columns: events. Every cell is filled, so a missing case is a visible hole
 * rather than a default branch. (Kept out of clang-format so it reads as a table.) */
/* clang-format off */
static const handler table[CHILD_N_STATES][CHILD_N_EVENTS] = {
    /*                  START   READY   EXIT       TIMER          RESTART          STOP */
    [CHILD_IDLE]     = {start,  ignore, ignore,    ignore,        start,           stop_idle},
    [CHILD_STARTING] = {ignore, ready,  on_crash,  ready_timeout, ignore,          stop_term},
    [CHILD_RUNNING]  = {ignore, ignore, on_crash,  ignore,        request_term,    stop_term},
    [CHILD_STOPPING] = {ignore, ignore, stop_exit, stop_timeout,  ignore,          stop_again},
    [CHILD_BACKOFF]  = {ignore, ignore, ignore,    backoff_over,  backoff_restart, stop_idle},
    [CHILD_FAILED]   = {ignore, ignore, ignore,    failed_retry,  failed_restart,  failed_stop},
    [CHILD_STOPPED]  = {ignore, ignore, ignore,    ignore,        ignore,          ignore},
};
/* clang-format on */

void child_init(child *c)
{
    memset(c, 0, sizeof(*c));
    c->state = CHILD_IDLE;
    c->backoff_ns = CHILD_BACKOFF_MIN_NS;
    c->last_status = -1;
}

enum child_action child_event(child *c, enum child_event ev, int wstatus, uint64_t now_ns)
{
    if ((unsigned)c->state >= CHILD_N_STATES || (unsigned)ev >= CHILD_N_EVENTS)
        return CHILD_ACT_NONE;
    return table[c->state][ev](c, wstatus, now_ns);
}

void child_spawned(child *c, pid_t pid, uint64_t now_ns)
{
    c->state = CHILD_STARTING;
    c->pid = pid;
    c->in_record = 0;
    c->started_ns = now_ns;
    c->deadline_ns = now_ns + CHILD_READY_TIMEOUT_NS;
}

int child_has_deadline(const child *c)
{
    return c->state == CHILD_STARTING || c->state == CHILD_STOPPING || c->state == CHILD_BACKOFF ||
           (c->state == CHILD_FAILED && c->cooldown);
}

int child_is_down(const child *c)
{
    return c->state == CHILD_IDLE || c->state == CHILD_STOPPED || c->state == CHILD_FAILED;
}

const char *child_state_name(enum child_state s)
{
    static const char *const names[CHILD_N_STATES] = {
        [CHILD_IDLE] = "idle",         [CHILD_STARTING] = "starting", [CHILD_RUNNING] = "running",
        [CHILD_STOPPING] = "stopping", [CHILD_BACKOFF] = "backoff",   [CHILD_FAILED] = "failed",
        [CHILD_STOPPED] = "stopped",
    };
    if ((unsigned)s >= CHILD_N_STATES)
        return "?";
    return names[s];
}

void child_describe_status(int wstatus, char *buf, size_t len)
{
    if (wstatus == -1)
        snprintf(buf, len, "spawn failed");
    else if (WIFEXITED(wstatus))
        snprintf(buf, len, "exit %d", WEXITSTATUS(wstatus));
    else if (WIFSIGNALED(wstatus))
        snprintf(buf, len, "killed by SIG%s",
                 sigabbrev_np(WTERMSIG(wstatus)) ? sigabbrev_np(WTERMSIG(wstatus)) : "?");
    else
        snprintf(buf, len, "status 0x%x", (unsigned)wstatus);
}
