/* loop: the supervisor's event loop (see loop.h). */
#include "loop.h"
#include "loop_int.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"
#include "clock.h"
#include "ctl.h"
#include "exitcode.h"
#include "log.h"
#include "spawn.h"
#include "stage.h"
#include "stats.h"
#include "status.h"
#include "topo.h"

/* ---- events from stages ---- */

/* For the successor's dead letters (stats.h STATS_W_*): how the worker died, written before
 * the respawn reads it. The backstop mark counts only if sent to this worker (after its
 * spawn), not to a predecessor. */
static void note_worker_death(loop *l, const proc *p, int wstatus)
{
    stats_slot *s = stats_slot_at(l->st, p->slot);
    uint64_t death = 0;
    if (wstatus != -1 && WIFSIGNALED(wstatus))
        death = (uint64_t)WTERMSIG(wstatus) & STATS_W_DEATH_SIG;
    uint64_t backstop = stats_get(&s->extra[STATS_W_BACKSTOP_NS]);
    if (backstop != 0 && backstop >= p->spawned_ns)
        death |= STATS_W_DEATH_BACKSTOP;
    stats_set(&s->extra[STATS_W_DEATH], death);
}

/* stage_fail_note: the reason of the exit that follows, for `mqttflow status`. 1 when buf
 * was one. */
static int take_note(proc *p, char *buf)
{
    if (strncmp(buf, "fail ", 5) != 0)
        return 0;
    buf[strcspn(buf, "\n")] = '\0';
    snprintf(p->ch.note, sizeof(p->ch.note), "%.190s", buf + 5);
    return 1;
}

static void stage_exited(loop *l, size_t i, int wstatus)
{
    proc *p = &l->procs[i];
    char name[96], what[48];
    pid_t pid = p->ch.pid;
    enum child_state before = p->ch.state;

    loop_close_watched(l, &p->pidfd);
    if (p->ready_fd >= 0) {
        /* the exit may be seen before the note written just before it */
        char buf[256];
        ssize_t n = read(p->ready_fd, buf, sizeof(buf) - 1);
        if (n > 0) {
            buf[n] = '\0';
            take_note(p, buf);
        }
    }
    loop_close_watched(l, &p->ready_fd);
    stats_set(&stats_slot_at(l->st, p->slot)->pid, 0);
    loop_proc_name(p, name, sizeof(name));
    child_describe_status(wstatus, what, sizeof(what));
    /* A worker that died inside a callback (its busy mark set by this process, not left by a
     * predecessor): the record is to blame and its attempt count deals with it (child.h). */
    int in_record = 0;
    if (p->kind == STATS_WORKER && before == CHILD_RUNNING) {
        uint64_t since = stats_get(&stats_slot_at(l->st, p->slot)->busy_since_ns);
        in_record = since != 0 && since >= p->spawned_ns;
    }
    p->ch.in_record = in_record;
    if (p->kind == STATS_WORKER)
        note_worker_death(l, p, wstatus);
    loop_dispatch(l, i, CHILD_EV_EXIT, wstatus);

    switch (p->ch.state) {
    case CHILD_BACKOFF:
        log_warn(COMP, "%s (pid %d) died%s: %s; restarting in %llu ms", name, (int)pid,
                 in_record ? " in a callback" : "", what,
                 (unsigned long long)((p->ch.deadline_ns - clock_mono_ns()) / 1000000ull));
        break;
    case CHILD_FAILED:
        log_error(COMP, "%s (pid %d) failed: %s", name, (int)pid, p->ch.reason);
        break;
    case CHILD_STOPPED:
        if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == MF_EXIT_OK)
            log_info(COMP, "%s (pid %d) stopped", name, (int)pid);
        else
            log_warn(COMP, "%s (pid %d) stopped: %s", name, (int)pid, what);
        break;
    default:
        if (before == CHILD_STOPPING)
            log_info(COMP, "%s (pid %d) exited for a restart: %s", name, (int)pid, what);
        break;
    }
}

static void on_pidfd(loop *l, size_t i)
{
    proc *p = &l->procs[i];
    int wstatus;
    if (p->pidfd < 0)
        return;
    int rc = spawn_reap(p->pidfd, &wstatus);
    if (rc == -EAGAIN)
        return;
    if (rc < 0) {
        /* ECHILD: reaped elsewhere (cannot happen: nobody else waits). Treat as a crash
         * rather than leave a stage nobody watches. */
        log_error(COMP, "waitid(pidfd of pid %d): %s", (int)p->ch.pid, strerror(-rc));
        wstatus = 1 << 8;
    }
    stage_exited(l, i, wstatus);
}

static void on_ready(loop *l, size_t i)
{
    proc *p = &l->procs[i];
    char buf[256];
    ssize_t n = read(p->ready_fd, buf, sizeof(buf) - 1);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    loop_close_watched(l, &p->ready_fd);
    if (n <= 0)
        return; /* closed without a word: its exit arrives through the pidfd */
    buf[n] = '\0';
    if (take_note(p, buf))
        return;
    if (!strstr(buf, "ready"))
        return;
    char name[96];
    loop_proc_name(p, name, sizeof(name));
    log_info(COMP, "%s ready: pid %d in %.1f ms", name, (int)p->ch.pid,
             (double)(clock_mono_ns() - p->spawned_ns) / 1e6);
    loop_dispatch(l, i, CHILD_EV_READY, 0);
}

static void sample(loop *l, uint64_t now)
{
    double dt = (double)(now - l->last_sample_ns) / 1e9;
    for (size_t i = 0; i < l->n_procs; i++) {
        proc *p = &l->procs[i];
        stats_slot *s = stats_slot_at(l->st, p->slot);
        uint64_t in = stats_get(&s->in), out = stats_get(&s->out);
        p->in_rate = status_rate(in, p->prev_in, dt);
        p->out_rate = status_rate(out, p->prev_out, dt);
        p->prev_in = in;
        p->prev_out = out;
    }
    loop_obs_sample(l, dt);
    stats_set(&stats_slot_at(l->st, 0)->heartbeat_ns, now);
    l->sample_s = dt;
    l->last_sample_ns = now;
    l->next_sample_ns = now + SAMPLE_NS;
}

/* Backstop of the workers' own callback watchdog (workers/watchdog.c): a worker whose
 * callback has run past runtime.callback_timeout_ms plus a grace period is SIGKILLed from
 * here. The worker's thread normally acts first (and names the rule); this catches the case
 * where the callback has corrupted the worker badly enough that its watchdog cannot run.
 * The kill looks like any crash: respawn, retry, dead letter after max_attempts. */
static void check_callbacks(loop *l, uint64_t now)
{
    int timeout_ms = l->c->runtime.callback_timeout_ms;
    if (timeout_ms <= 0)
        return;
    uint64_t limit = (uint64_t)timeout_ms * 1000000ull + CALLBACK_GRACE_NS;
    for (size_t i = 0; i < l->n_procs; i++) {
        proc *p = &l->procs[i];
        if (p->kind != STATS_WORKER || p->ch.state != CHILD_RUNNING)
            continue;
        uint64_t since = stats_get(&stats_slot_at(l->st, p->slot)->busy_since_ns);
        /* since < spawned: a value the dead predecessor left, until the new one clears it */
        if (since == 0 || since < p->spawned_ns || now < since || now - since <= limit)
            continue;
        char name[96];
        loop_proc_name(p, name, sizeof(name));
        log_error(COMP,
                  "%s (pid %d): a callback has run for %llu ms, past runtime.callback_timeout_ms "
                  "(%d) and the worker's own watchdog: sending SIGKILL",
                  name, (int)p->ch.pid, (unsigned long long)((now - since) / 1000000ull),
                  timeout_ms);
        stats_set(&stats_slot_at(l->st, p->slot)->extra[STATS_W_BACKSTOP_NS], now);
        loop_send_signal(l, p, SIGKILL);
    }
}

static void log_stats(loop *l)
{
    char line[LOG_LINE_MAX];
    size_t off = 0;
    for (size_t i = 0; i < l->n_procs && off < sizeof(line); i++) {
        proc *p = &l->procs[i];
        char name[96];
        loop_proc_name(p, name, sizeof(name));
        int n = snprintf(line + off, sizeof(line) - off, "%s%s %.0f/%.0f msg/s", i ? ", " : "",
                         name, p->in_rate, p->out_rate);
        if (n < 0)
            break;
        off += (size_t)n;
    }
    log_info(COMP, "stats (in/out): %s", line);
}

/* ---- phases ---- */

void loop_begin_shutdown(loop *l, int code)
{
    if (l->phase == PH_SHUTDOWN || l->phase == PH_DONE)
        return;
    if (l->job.active)
        loop_ctl_job_finish(l, "the instance is stopping");
    log_info(COMP, "stopping instance %s: ingress, router, workers, relay", l->c->runtime.instance);
    l->phase = PH_SHUTDOWN;
    l->stop_began_ns = clock_mono_ns();
    l->stop_group = 0;
    if (l->exit_code == MF_EXIT_OK)
        l->exit_code = code;
}

static void kill_everything(loop *l)
{
    log_warn(COMP, "second stop signal: killing every stage (rings with records and the "
                   "workers' state are kept for the next run)");
    l->kill_all = 1;
    for (size_t i = 0; i < l->n_procs; i++) {
        loop_dispatch(l, i, CHILD_EV_STOP, 0);
        loop_send_signal(l, &l->procs[i], SIGKILL);
    }
}

static void progress(loop *l)
{
    if (l->phase == PH_STARTUP) {
        while (l->start_pos < l->n_procs) {
            size_t i = l->start_order[l->start_pos];
            proc *p = &l->procs[i];
            if (p->ch.state == CHILD_IDLE) {
                loop_dispatch(l, i, CHILD_EV_START, 0);
                continue;
            }
            if (p->ch.state == CHILD_RUNNING) {
                l->start_pos++;
                continue;
            }
            if (p->ch.state == CHILD_FAILED) {
                char name[96];
                loop_proc_name(p, name, sizeof(name));
                log_error(COMP, "instance %s cannot start: %s failed: %s", l->c->runtime.instance,
                          name, p->ch.reason);
                int st = p->ch.last_status;
                loop_begin_shutdown(l,
                                    st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == MF_EXIT_CONFIG
                                        ? MF_EXIT_CONFIG
                                        : MF_EXIT_FAILED);
                break;
            }
            return; /* starting or backing off */
        }
        if (l->phase == PH_STARTUP) {
            l->phase = PH_RUNNING;
            log_info(COMP, "instance %s running: %zu ingress, router, %zu workers, relay (%.0f ms)",
                     l->c->runtime.instance, l->n_ingress, l->n_workers,
                     (double)(clock_mono_ns() - l->born_ns) / 1e6);
        }
    }
    if (l->phase == PH_RUNNING && l->job.active)
        loop_ctl_job_step(l);
    if (l->phase == PH_SHUTDOWN) {
        while (l->stop_group < N_STOP_GROUPS) {
            int all_down = 1;
            for (size_t i = 0; i < l->n_procs; i++) {
                proc *p = &l->procs[i];
                if (p->group != l->stop_group)
                    continue;
                /* also to a FAILED one: it must not come back from its cool-down */
                if (!p->ch.stop_requested)
                    loop_dispatch(l, i, CHILD_EV_STOP, 0);
                if (!child_is_down(&p->ch))
                    all_down = 0;
            }
            if (!all_down)
                return;
            l->stop_group++;
        }
        l->phase = PH_DONE;
    }
}

/* ---- signals and timers ---- */

static void on_signal(loop *l)
{
    struct signalfd_siginfo si;
    while (read(l->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        switch (si.ssi_signo) {
        case SIGTERM:
        case SIGINT:
            if (l->phase == PH_SHUTDOWN) {
                /* issue 8 item 7: only a second request at least a second later forces (as
                 * PostgreSQL's pg_ctl escalates only on a later, explicit request) */
                if (l->kill_all)
                    break;
                if (clock_mono_ns() - l->stop_began_ns >= FORCE_AFTER_NS)
                    kill_everything(l);
                else
                    log_info(COMP,
                             "SIG%s again within 1 s of the stop: the same request, ignored "
                             "(send it again after a second to kill every stage)",
                             sigabbrev_np((int)si.ssi_signo));
            } else {
                log_info(COMP, "SIG%s received", sigabbrev_np((int)si.ssi_signo));
                loop_begin_shutdown(l, MF_EXIT_OK);
            }
            break;
        case SIGHUP:
            /* stages decide what a HUP means (stage_hup_flag); pass it on */
            for (size_t i = 0; i < l->n_procs; i++)
                loop_send_signal(l, &l->procs[i], SIGHUP);
            break;
        case SIGCHLD:
            /* pidfds already report exits; this catches one whose pidfd event we have not
             * taken yet in this turn, and costs a non-blocking waitid per stage */
            for (size_t i = 0; i < l->n_procs; i++)
                on_pidfd(l, i);
            break;
        default:
            break;
        }
    }
}

static void on_timer(loop *l)
{
    uint64_t ticks;
    (void)!read(l->timerfd, &ticks, sizeof(ticks));
    uint64_t now = clock_mono_ns();
    for (size_t i = 0; i < l->n_procs; i++) {
        child *c = &l->procs[i].ch;
        if (child_has_deadline(c) && c->deadline_ns <= now)
            loop_dispatch(l, i, CHILD_EV_TIMER, 0);
    }
    if (now >= l->next_sample_ns) {
        sample(l, now);
        check_callbacks(l, now);
        loop_ctl_sweep(l, now); /* idle control connections: at most a sample late */
    }
    double every = l->c->runtime.stats_interval;
    if (every > 0 && l->phase == PH_RUNNING && now >= l->next_stats_log_ns) {
        log_stats(l);
        l->next_stats_log_ns = now + (uint64_t)(every * 1e9);
    }
}

static void arm_timer(loop *l)
{
    uint64_t at = l->next_sample_ns;
    for (size_t i = 0; i < l->n_procs; i++) {
        const child *c = &l->procs[i].ch;
        if (child_has_deadline(c) && c->deadline_ns < at)
            at = c->deadline_ns;
    }
    if (at == 0)
        at = 1; /* zero would disarm it */
    struct itimerspec its = {.it_value = {.tv_sec = (time_t)(at / 1000000000ull),
                                          .tv_nsec = (long)(at % 1000000000ull)}};
    if (timerfd_settime(l->timerfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
        log_error(COMP, "timerfd_settime: %s", strerror(errno));
}

/* ---- construction ---- */

static int build_procs(loop *l)
{
    const cfg *c = l->c;
    l->n_ingress = cfg_ingress_count(c);
    l->n_workers = (size_t)c->runtime.workers;
    l->n_procs = l->n_ingress + l->n_workers + 2;
    l->procs = calloc(l->n_procs, sizeof(*l->procs));
    l->start_order = calloc(l->n_procs, sizeof(*l->start_order));
    if (!l->procs || !l->start_order)
        return -ENOMEM;

    size_t k = 0;
    for (size_t i = 0; i < l->n_ingress; i++, k++) {
        proc *p = &l->procs[k];
        int client = cfg_ingress_client(c, i);
        p->kind = STATS_INGRESS;
        p->idx = i;
        p->group = 0;
        p->binary = "mqttflow-ingress";
        p->cpu = c->runtime.cpu_ingress;
        snprintf(p->id, sizeof(p->id), "%s", client >= 0 ? c->clients[client].client_id : "?");
    }
    l->procs[k] = (proc){.kind = STATS_ROUTER,
                         .group = 1,
                         .binary = "mqttflow-router",
                         .cpu = c->runtime.cpu_router};
    k++;
    for (size_t w = 0; w < l->n_workers; w++, k++) {
        proc *p = &l->procs[k];
        p->kind = STATS_WORKER;
        p->idx = w;
        p->group = 2;
        p->binary = "mqttflow-worker";
        p->cpu =
            c->runtime.n_cpu_workers ? c->runtime.cpu_workers[w % c->runtime.n_cpu_workers] : -1;
        snprintf(p->id, sizeof(p->id), "%zu", w);
    }
    l->procs[k] = (proc){
        .kind = STATS_RELAY, .group = 3, .binary = "mqttflow-relay", .cpu = c->runtime.cpu_relay};
    k++;

    for (size_t i = 0; i < l->n_procs; i++) {
        proc *p = &l->procs[i];
        child_init(&p->ch);
        p->pidfd = -1;
        p->ready_fd = -1;
        p->slot = stats_slot_index(p->kind, p->idx, l->n_ingress);
        snprintf(p->idx_arg, sizeof(p->idx_arg), "%zu", p->idx);
    }
    /* reverse pipeline order: every consumer is attached before its producer starts */
    size_t o = 0;
    l->start_order[o++] = l->n_procs - 1; /* relay */
    for (size_t w = 0; w < l->n_workers; w++)
        l->start_order[o++] = l->n_ingress + 1 + w;
    l->start_order[o++] = l->n_ingress; /* router */
    for (size_t i = 0; i < l->n_ingress; i++)
        l->start_order[o++] = i;
    return 0;
}

int loop_create(const cfg *c, loop **out)
{
    char err[256] = "";
    int rc;
    loop *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->c = c;
    l->epfd = l->sigfd = l->timerfd = l->lfd = -1;
    for (size_t j = 0; j < MAX_CONNS; j++)
        l->conns[j].c.fd = -1;
    l->born_ns = l->last_sample_ns = clock_mono_ns();
    l->next_sample_ns = l->born_ns + SAMPLE_NS;
    l->sample_s = 1.0;

    if (!realpath(c->path, l->cfg_path)) {
        rc = -errno;
        log_error(COMP, "realpath(%s): %s", c->path, strerror(-rc));
        goto err;
    }
    if (c->runtime.control_socket)
        rc = snprintf(l->sock_path, sizeof(l->sock_path), "%s", c->runtime.control_socket) <
                     (int)sizeof(l->sock_path)
                 ? 0
                 : -ENAMETOOLONG;
    else
        rc = ctl_default_path(c->runtime.instance, l->sock_path, sizeof(l->sock_path));
    if (rc < 0) {
        log_error(COMP, "control socket path: %s", strerror(-rc));
        goto err;
    }
    if ((rc = build_procs(l)) < 0) {
        log_error(COMP, "out of memory");
        goto err;
    }
    rc = topo_create(c, &l->topo, err, sizeof(err));
    if (rc < 0) {
        log_error(COMP, "%s", err);
        goto err;
    }
    l->st = topo_stats(l->topo);
    stats_set(&stats_slot_at(l->st, 0)->pid, (uint64_t)getpid());

    rc = ctl_listen(l->sock_path, &l->lfd);
    if (rc == -EADDRINUSE) {
        log_error(COMP, "instance %s is already running (control socket %s answers)",
                  c->runtime.instance, l->sock_path);
        rc = -EEXIST;
        goto err;
    }
    if (rc < 0) {
        log_error(COMP, "control socket %s: %s", l->sock_path, strerror(-rc));
        goto err;
    }

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0 ||
        (l->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0 ||
        (l->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) < 0 ||
        (l->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
        rc = -errno;
        log_error(COMP, "signalfd/timerfd/epoll setup: %s", strerror(-rc));
        goto err;
    }
    signal(SIGPIPE, SIG_IGN);
    if ((rc = loop_watch(l, l->sigfd, TAG(SRC_SIGNAL, 0))) < 0 ||
        (rc = loop_watch(l, l->timerfd, TAG(SRC_TIMER, 0))) < 0 ||
        (rc = loop_watch(l, l->lfd, TAG(SRC_LISTEN, 0))) < 0)
        goto err;
    /* after the signal mask: the endpoint's thread inherits it */
    if ((rc = loop_obs_start(l)) < 0)
        goto err;
    (void)stage_pin(c->runtime.cpu_supervisor); /* a failure is logged and not fatal */
    *out = l;
    return 0;

err:
    loop_destroy(l);
    return rc;
}

int loop_run(loop *l)
{
    log_info(COMP, "starting instance %s (config %s, control socket %s)", l->c->runtime.instance,
             l->cfg_path, l->sock_path);
    progress(l);
    while (l->phase != PH_DONE) {
        arm_timer(l);
        struct epoll_event evs[32];
        int n = epoll_wait(l->epfd, evs, 32, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            log_error(COMP, "epoll_wait: %s; killing every stage", strerror(errno));
            kill_everything(l);
            l->exit_code = MF_EXIT_FAILED;
            break;
        }
        for (int e = 0; e < n; e++) {
            uint64_t tag = evs[e].data.u64;
            size_t i = TAG_IDX(tag);
            switch (TAG_SRC(tag)) {
            case SRC_SIGNAL:
                on_signal(l);
                break;
            case SRC_TIMER:
                on_timer(l);
                break;
            case SRC_LISTEN:
                loop_ctl_accept(l);
                break;
            case SRC_PIDFD:
                on_pidfd(l, i);
                break;
            case SRC_READY:
                if (l->procs[i].ready_fd >= 0)
                    on_ready(l, i);
                break;
            case SRC_CONN:
                if (l->conns[i].use == CONN_READING && loop_ctl_readable(l, i))
                    loop_begin_shutdown(l, MF_EXIT_OK); /* "stop", answered */
                else if (l->conns[i].use == CONN_TAP)
                    loop_obs_tap_event(l, i);
                break;
            case SRC_HTTP:
                loop_obs_http(l);
                break;
            }
        }
        progress(l);
    }
    return l->exit_code;
}

/* Whether the whole instance stopped as asked: every stage that ran exited 0 on its SIGTERM.
 * Only then are the workers' state segments removed with the rings (topo_destroy). */
static int stopped_cleanly(const loop *l)
{
    if (l->phase != PH_DONE || l->kill_all || l->exit_code != MF_EXIT_OK)
        return 0;
    for (size_t i = 0; i < l->n_procs; i++) {
        const child *c = &l->procs[i].ch;
        if (c->state != CHILD_STOPPED ||
            (c->last_status != -1 && !(WIFEXITED(c->last_status) && !WEXITSTATUS(c->last_status))))
            return 0;
    }
    return 1;
}

void loop_destroy(loop *l)
{
    if (!l)
        return;
    /* A stage still alive here (epoll failure, or an error path) must not outlive us. */
    for (size_t i = 0; l->procs && i < l->n_procs; i++) {
        proc *p = &l->procs[i];
        if (p->pidfd >= 0) {
            loop_send_signal(l, p, SIGKILL);
            siginfo_t si;
            (void)waitid(P_PIDFD, (id_t)p->pidfd, &si, WEXITED);
            close(p->pidfd);
        }
        if (p->ready_fd >= 0)
            close(p->ready_fd);
    }
    loop_obs_stop(l); /* the endpoint and the taps, before the segments go */
    topo_destroy(l->topo, stopped_cleanly(l));
    if (l->lfd >= 0) {
        close(l->lfd);
        ctl_unlink(l->sock_path);
    }
    if (l->phase == PH_DONE)
        log_info(COMP, "instance %s stopped", l->c->runtime.instance);
    /* last: a `mqttflow stop` returns when it reads "stopped", and by then nothing of the
     * instance is left but this exiting process */
    loop_ctl_close_all(l);
    if (l->epfd >= 0)
        close(l->epfd);
    if (l->timerfd >= 0)
        close(l->timerfd);
    if (l->sigfd >= 0)
        close(l->sigfd);
    free(l->procs);
    free(l->start_order);
    free(l);
}
