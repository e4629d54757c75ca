/* loop_proc: the stages' processes as the loop sees them (see loop_int.h): their names, the
 * signals sent to them, and carrying out the actions child.c decides on (spawn, SIGTERM,
 * SIGKILL). Also the epoll helpers every file of the loop uses. It calls no other file of the
 * loop: loop.c, loop_job.c, loop_ctl.c and loop_obs.c all build on it. */
#include "loop_int.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/pidfd.h>
#include <unistd.h>

#include "child.h"
#include "clock.h"
#include "log.h"
#include "spawn.h"
#include "stats.h"

/* ---- epoll helpers ---- */

int loop_watch(loop *l, int fd, uint64_t tag)
{
    struct epoll_event e = {.events = EPOLLIN, .data.u64 = tag};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &e) < 0) {
        int err = errno;
        log_error(COMP, "epoll_ctl(ADD fd %d): %s", fd, strerror(err));
        return -err;
    }
    return 0;
}

void loop_close_watched(loop *l, int *fd)
{
    if (*fd < 0)
        return;
    (void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, *fd, NULL);
    close(*fd);
    *fd = -1;
}

/* ---- names ---- */

const char *loop_kind_name(enum stats_stage kind)
{
    /* the one table of stage names (stats.h enum stats_stage order) */
    static const char *const kinds[] = {"supervisor", "ingress", "router", "worker", "relay"};
    return (size_t)kind < sizeof(kinds) / sizeof(kinds[0]) ? kinds[kind] : "?";
}

void loop_proc_name(const proc *p, char *buf, size_t len)
{
    if (p->id[0])
        snprintf(buf, len, "%s %s", loop_kind_name(p->kind), p->id);
    else
        snprintf(buf, len, "%s", loop_kind_name(p->kind));
}

/* ---- carrying out child.c's actions ---- */

void loop_send_signal(loop *l, proc *p, int sig)
{
    (void)l;
    if (p->pidfd < 0)
        return;
    /* through the pidfd: the pid cannot have been reused while we hold it */
    if (pidfd_send_signal(p->pidfd, sig, NULL, 0) < 0 && errno != ESRCH) {
        char name[96];
        loop_proc_name(p, name, sizeof(name));
        log_warn(COMP, "pidfd_send_signal(%s, %s): %s", name, sigabbrev_np(sig), strerror(errno));
    }
}

static void do_spawn(loop *l, size_t i)
{
    proc *p = &l->procs[i];
    char name[96];
    spawn_req req = {.binary = p->binary, .cpu = p->cpu};
    spawn_child sc;

    loop_proc_name(p, name, sizeof(name));
    req.args[0] = l->cfg_path;
    if (p->kind == STATS_INGRESS || p->kind == STATS_WORKER)
        req.args[1] = p->idx_arg;
    /* before the spawn: the new process may write these as soon as it runs */
    stats_slot *s = stats_slot_at(l->st, p->slot);
    stats_set(&s->heartbeat_ns, 0);
    stats_set(&s->busy_since_ns, 0);
    int rc = spawn_stage(&req, &sc);
    if (rc < 0) {
        log_error(COMP, "cannot start %s (%s): %s", name, p->binary, strerror(-rc));
        loop_dispatch(l, i, CHILD_EV_EXIT, -1);
        return;
    }
    uint64_t now = clock_mono_ns();
    child_spawned(&p->ch, sc.pid, now);
    p->spawned_ns = now;
    p->pidfd = sc.pidfd;
    p->ready_fd = sc.ready_fd;
    if (loop_watch(l, p->pidfd, TAG(SRC_PIDFD, i)) < 0 ||
        loop_watch(l, p->ready_fd, TAG(SRC_READY, i)) < 0)
        loop_send_signal(l, p, SIGKILL); /* cannot watch it: its exit path cleans up */
    stats_set(&s->pid, (uint64_t)sc.pid);
    stats_set(&s->restarts, p->ch.restarts);
    log_debug(COMP, "started %s: pid %d%s", name, (int)sc.pid, p->cpu >= 0 ? ", pinned" : "");
}

static void apply(loop *l, size_t i, enum child_action act)
{
    switch (act) {
    case CHILD_ACT_SPAWN:
        do_spawn(l, i);
        break;
    case CHILD_ACT_TERM:
        loop_send_signal(l, &l->procs[i], SIGTERM);
        break;
    case CHILD_ACT_KILL: {
        char name[96];
        loop_proc_name(&l->procs[i], name, sizeof(name));
        log_warn(COMP, "%s (pid %d): %s; sending SIGKILL", name, (int)l->procs[i].ch.pid,
                 l->procs[i].ch.state == CHILD_STOPPING ? "did not stop in time"
                                                        : l->procs[i].ch.reason);
        loop_send_signal(l, &l->procs[i], SIGKILL);
        break;
    }
    case CHILD_ACT_NONE:
        break;
    }
}

void loop_dispatch(loop *l, size_t i, enum child_event ev, int wstatus)
{
    apply(l, i, child_event(&l->procs[i].ch, ev, wstatus, clock_mono_ns()));
}

const char *loop_phase_name(enum phase ph)
{
    static const char *const names[] = {"starting", "running", "stopping", "stopped"};
    return names[ph];
}
