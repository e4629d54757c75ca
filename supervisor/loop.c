/* loop: the supervisor's event loop (see loop.h). */
#include "loop.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/pidfd.h>
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
#include "stats.h"
#include "status.h"
#include "topo.h"

#define COMP          "supervisor"
#define SAMPLE_NS     1000000000ull /* rates of `mqttflow status` cover this interval */
#define MAX_CONNS     16
#define REPLY_TIMEOUT 2000 /* ms a control client gets to take its reply */
#define N_STOP_GROUPS 4

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
    uint64_t born_ns, last_sample_ns, next_sample_ns;
    double sample_s;
    uint64_t next_stats_log_ns;
    conn conns[MAX_CONNS];
    job job;
};

static void dispatch(loop *l, size_t i, enum child_event ev, int wstatus);

/* ---- epoll helpers ---- */

static int watch(loop *l, int fd, uint64_t tag)
{
    struct epoll_event e = {.events = EPOLLIN, .data.u64 = tag};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &e) < 0) {
        int err = errno;
        log_error(COMP, "epoll_ctl(ADD fd %d): %s", fd, strerror(err));
        return -err;
    }
    return 0;
}

static void close_watched(loop *l, int *fd)
{
    if (*fd < 0)
        return;
    (void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, *fd, NULL);
    close(*fd);
    *fd = -1;
}

static void proc_name(const proc *p, char *buf, size_t len)
{
    static const char *const kinds[] = {"supervisor", "ingress", "router", "worker", "relay"};
    if (p->id[0])
        snprintf(buf, len, "%s %s", kinds[p->kind], p->id);
    else
        snprintf(buf, len, "%s", kinds[p->kind]);
}

/* ---- carrying out child.c's actions ---- */

static void send_signal(loop *l, proc *p, int sig)
{
    (void)l;
    if (p->pidfd < 0)
        return;
    /* through the pidfd: the pid cannot have been reused while we hold it */
    if (pidfd_send_signal(p->pidfd, sig, NULL, 0) < 0 && errno != ESRCH) {
        char name[96];
        proc_name(p, name, sizeof(name));
        log_warn(COMP, "pidfd_send_signal(%s, %s): %s", name, sigabbrev_np(sig), strerror(errno));
    }
}

static void do_spawn(loop *l, size_t i)
{
    proc *p = &l->procs[i];
    char name[96];
    spawn_req req = {.binary = p->binary, .cpu = p->cpu};
    spawn_child sc;

    proc_name(p, name, sizeof(name));
    req.args[0] = l->cfg_path;
    if (p->kind == STATS_INGRESS || p->kind == STATS_WORKER)
        req.args[1] = p->idx_arg;
    int rc = spawn_stage(&req, &sc);
    if (rc < 0) {
        log_error(COMP, "cannot start %s (%s): %s", name, p->binary, strerror(-rc));
        dispatch(l, i, CHILD_EV_EXIT, -1);
        return;
    }
    uint64_t now = clock_mono_ns();
    child_spawned(&p->ch, sc.pid, now);
    p->spawned_ns = now;
    p->pidfd = sc.pidfd;
    p->ready_fd = sc.ready_fd;
    if (watch(l, p->pidfd, TAG(SRC_PIDFD, i)) < 0 || watch(l, p->ready_fd, TAG(SRC_READY, i)) < 0)
        send_signal(l, p, SIGKILL); /* cannot watch it: its exit path cleans up */
    stats_slot *s = stats_slot_at(l->st, p->slot);
    stats_set(&s->pid, (uint64_t)sc.pid);
    stats_set(&s->restarts, p->ch.restarts);
    stats_set(&s->heartbeat_ns, 0);
    stats_set(&s->busy_since_ns, 0);
    log_debug(COMP, "started %s: pid %d%s", name, (int)sc.pid, p->cpu >= 0 ? ", pinned" : "");
}

static void apply(loop *l, size_t i, enum child_action act)
{
    switch (act) {
    case CHILD_ACT_SPAWN:
        do_spawn(l, i);
        break;
    case CHILD_ACT_TERM:
        send_signal(l, &l->procs[i], SIGTERM);
        break;
    case CHILD_ACT_KILL: {
        char name[96];
        proc_name(&l->procs[i], name, sizeof(name));
        log_warn(COMP, "%s (pid %d): %s; sending SIGKILL", name, (int)l->procs[i].ch.pid,
                 l->procs[i].ch.state == CHILD_STOPPING ? "did not stop in time"
                                                        : l->procs[i].ch.reason);
        send_signal(l, &l->procs[i], SIGKILL);
        break;
    }
    case CHILD_ACT_NONE:
        break;
    }
}

static void dispatch(loop *l, size_t i, enum child_event ev, int wstatus)
{
    apply(l, i, child_event(&l->procs[i].ch, ev, wstatus, clock_mono_ns()));
}

/* ---- events from stages ---- */

static void stage_exited(loop *l, size_t i, int wstatus)
{
    proc *p = &l->procs[i];
    char name[96], what[48];
    pid_t pid = p->ch.pid;
    enum child_state before = p->ch.state;

    close_watched(l, &p->pidfd);
    close_watched(l, &p->ready_fd);
    stats_set(&stats_slot_at(l->st, p->slot)->pid, 0);
    proc_name(p, name, sizeof(name));
    child_describe_status(wstatus, what, sizeof(what));
    dispatch(l, i, CHILD_EV_EXIT, wstatus);

    switch (p->ch.state) {
    case CHILD_BACKOFF:
        log_warn(COMP, "%s (pid %d) died: %s; restarting in %llu ms", name, (int)pid, what,
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
    char buf[64];
    ssize_t n = read(p->ready_fd, buf, sizeof(buf) - 1);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    close_watched(l, &p->ready_fd);
    if (n <= 0)
        return; /* closed without a word: its exit arrives through the pidfd */
    buf[n] = '\0';
    if (!strstr(buf, "ready"))
        return;
    char name[96];
    proc_name(p, name, sizeof(name));
    log_info(COMP, "%s ready: pid %d in %.1f ms", name, (int)p->ch.pid,
             (double)(clock_mono_ns() - p->spawned_ns) / 1e6);
    dispatch(l, i, CHILD_EV_READY, 0);
}

/* ---- status ---- */

static const char *phase_name(enum phase ph)
{
    static const char *const names[] = {"starting", "running", "stopping", "stopped"};
    return names[ph];
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
    stats_set(&stats_slot_at(l->st, 0)->heartbeat_ns, now);
    l->sample_s = dt;
    l->last_sample_ns = now;
    l->next_sample_ns = now + SAMPLE_NS;
}

static void fill_rows(loop *l, status_row *rows)
{
    rows[0] = (status_row){.kind = "supervisor",
                           .id = "",
                           .pid = (long)getpid(),
                           .cpu = l->c->runtime.cpu_supervisor,
                           .state = "running",
                           .fill_pct = -1};
    for (size_t i = 0; i < l->n_procs; i++) {
        proc *p = &l->procs[i];
        stats_slot *s = stats_slot_at(l->st, p->slot);
        status_row *r = &rows[i + 1];
        static const char *const kinds[] = {"supervisor", "ingress", "router", "worker", "relay"};
        *r = (status_row){
            .kind = kinds[p->kind],
            .id = p->id,
            .pid = (long)p->ch.pid,
            .cpu = p->cpu,
            .state = child_state_name(p->ch.state),
            .restarts = p->ch.restarts,
            .fill_pct = topo_fill_pct(l->topo, p->kind, p->idx),
            .in = stats_get(&s->in),
            .out = stats_get(&s->out),
            .errors = stats_get(&s->errors),
            .dropped = stats_get(&s->dropped),
            .dead = stats_get(&s->dead),
            .in_rate = p->in_rate,
            .out_rate = p->out_rate,
            .reason = p->ch.reason,
        };
    }
}

/* The status text (prom or table), malloc'ed; NULL on ENOMEM. */
static char *status_text(loop *l, int prom)
{
    char *text = NULL;
    size_t len = 0;
    status_row *rows = calloc(l->n_procs + 1, sizeof(*rows));
    FILE *f = open_memstream(&text, &len);
    if (!rows || !f) {
        free(rows);
        if (f)
            fclose(f);
        free(text);
        return NULL;
    }
    fill_rows(l, rows);
    status_head h = {.instance = l->c->runtime.instance,
                     .pid = (long)getpid(),
                     .uptime_s = (double)(clock_mono_ns() - l->born_ns) / 1e9,
                     .phase = phase_name(l->phase),
                     .interval_s = l->sample_s};
    if (prom)
        status_format_prom(f, &h, rows, l->n_procs + 1);
    else
        status_format(f, &h, rows, l->n_procs + 1);
    fclose(f);
    free(rows);
    return text;
}

static void log_stats(loop *l)
{
    char line[LOG_LINE_MAX];
    size_t off = 0;
    for (size_t i = 0; i < l->n_procs && off < sizeof(line); i++) {
        proc *p = &l->procs[i];
        char name[96];
        proc_name(p, name, sizeof(name));
        int n = snprintf(line + off, sizeof(line) - off, "%s%s %.0f/%.0f msg/s", i ? ", " : "",
                         name, p->in_rate, p->out_rate);
        if (n < 0)
            break;
        off += (size_t)n;
    }
    log_info(COMP, "stats (in/out): %s", line);
}

/* ---- control connections ---- */

static void conn_close(loop *l, size_t j)
{
    close_watched(l, &l->conns[j].c.fd);
    l->conns[j].use = CONN_FREE;
}

static void conn_reply(loop *l, size_t j, const char *text)
{
    (void)ctl_write_all(l->conns[j].c.fd, text, strlen(text), REPLY_TIMEOUT);
    conn_close(l, j);
}

static void job_finish(loop *l, const char *error)
{
    job *jb = &l->job;
    fclose(jb->out);
    jb->out = NULL;
    char *reply = NULL;
    if (asprintf(&reply, "%s%s%s%s", error ? CTL_ERR : "", error ? error : "", error ? "\n" : "",
                 jb->text ? jb->text : "") < 0)
        reply = NULL;
    conn_reply(l, jb->conn, reply ? reply : CTL_ERR "out of memory\n");
    free(reply);
    free(jb->text);
    free(jb->list);
    memset(jb, 0, sizeof(*jb));
}

static void job_step(loop *l)
{
    job *jb = &l->job;
    char name[96];
    while (jb->active) {
        if (jb->pos == jb->n) {
            job_finish(l, NULL);
            return;
        }
        proc *p = &l->procs[jb->list[jb->pos]];
        proc_name(p, name, sizeof(name));
        if (!jb->waiting) {
            jb->old_pid = p->ch.pid;
            switch (p->ch.state) {
            case CHILD_RUNNING:
            case CHILD_BACKOFF:
            case CHILD_FAILED:
                log_info(COMP, "restarting %s (pid %d) on request", name, (int)jb->old_pid);
                dispatch(l, jb->list[jb->pos], CHILD_EV_RESTART, 0);
                break;
            case CHILD_STARTING:
                break; /* already on its way up: wait for it */
            default: {
                char err[160];
                snprintf(err, sizeof(err), "%s is %s", name, child_state_name(p->ch.state));
                job_finish(l, err);
                return;
            }
            }
            jb->waiting = 1;
        }
        if (p->ch.state == CHILD_RUNNING && p->ch.pid != jb->old_pid) {
            fprintf(jb->out, "restarted %s: pid %d -> %d\n", name, (int)jb->old_pid,
                    (int)p->ch.pid);
            jb->pos++;
            jb->waiting = 0;
            continue;
        }
        if (p->ch.state == CHILD_BACKOFF || p->ch.state == CHILD_FAILED) {
            char err[320];
            snprintf(err, sizeof(err), "%s did not come back: %s", name, p->ch.reason);
            job_finish(l, err);
            return;
        }
        return; /* still stopping or starting */
    }
}

static int job_start(loop *l, size_t j, const size_t *list, size_t n)
{
    job *jb = &l->job;
    memset(jb, 0, sizeof(*jb));
    jb->list = malloc(n * sizeof(*list));
    jb->out = open_memstream(&jb->text, &jb->text_len);
    if (!jb->list || !jb->out) {
        if (jb->out)
            fclose(jb->out);
        free(jb->text);
        free(jb->list);
        memset(jb, 0, sizeof(*jb));
        return -ENOMEM;
    }
    memcpy(jb->list, list, n * sizeof(*list));
    jb->n = n;
    jb->conn = j;
    jb->active = 1;
    l->conns[j].use = CONN_JOB;
    job_step(l);
    return 0;
}

static void begin_shutdown(loop *l, int code);

/* "restart worker N|workers|router|relay|ingress ID|ingresses" */
static void request_restart(loop *l, size_t j, char *args)
{
    size_t list[CFG_MAX_WORKERS + CFG_MAX_CLIENTS + 2];
    size_t n = 0;
    char *save = NULL;
    char *what = strtok_r(args, " \t", &save);
    char *arg = strtok_r(NULL, " \t", &save);
    char err[CTL_LINE_MAX + 64];

    if (l->phase != PH_RUNNING) {
        snprintf(err, sizeof(err), CTL_ERR "instance %s is %s\n", l->c->runtime.instance,
                 phase_name(l->phase));
        conn_reply(l, j, err);
        return;
    }
    if (l->job.active) {
        conn_reply(l, j, CTL_ERR "another restart is in progress\n");
        return;
    }
    if (!what)
        what = "";
    for (size_t i = 0; i < l->n_procs; i++) {
        proc *p = &l->procs[i];
        int match = 0;
        if (!strcmp(what, "workers"))
            match = p->kind == STATS_WORKER;
        else if (!strcmp(what, "ingresses"))
            match = p->kind == STATS_INGRESS;
        else if (!strcmp(what, "router"))
            match = p->kind == STATS_ROUTER;
        else if (!strcmp(what, "relay"))
            match = p->kind == STATS_RELAY;
        else if (!strcmp(what, "worker") && arg)
            match = p->kind == STATS_WORKER && !strcmp(arg, p->idx_arg);
        else if (!strcmp(what, "ingress") && arg)
            match = p->kind == STATS_INGRESS && (!strcmp(arg, p->id) || !strcmp(arg, p->idx_arg));
        if (match)
            list[n++] = i;
    }
    if (n == 0) {
        snprintf(err, sizeof(err),
                 CTL_ERR "no such stage: \"%s%s%s\" (restart worker N | workers | router | "
                         "relay | ingress CLIENT_ID | ingresses)\n",
                 what, arg ? " " : "", arg ? arg : "");
        conn_reply(l, j, err);
        return;
    }
    if (job_start(l, j, list, n) < 0)
        conn_reply(l, j, CTL_ERR "out of memory\n");
}

static void on_request(loop *l, size_t j)
{
    char *line = l->conns[j].c.line;
    /* The request is complete: stop watching the fd (the client has shut its side down,
     * so a level-triggered EOF would fire forever); the reply is written when ready. */
    (void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, l->conns[j].c.fd, NULL);
    while (*line == ' ')
        line++;
    if (!strcmp(line, "status") || !strcmp(line, "status prom")) {
        char *text = status_text(l, line[6] != '\0');
        conn_reply(l, j, text ? text : CTL_ERR "out of memory\n");
        free(text);
    } else if (!strcmp(line, "stop")) {
        char msg[160];
        snprintf(msg, sizeof(msg), "stopping instance %s (supervisor pid %d)\n",
                 l->c->runtime.instance, (int)getpid());
        if (ctl_write_all(l->conns[j].c.fd, msg, strlen(msg), REPLY_TIMEOUT) < 0) {
            conn_close(l, j);
        } else {
            l->conns[j].use = CONN_STOP; /* answered "stopped" just before exit */
        }
        log_info(COMP, "stop requested through the control socket");
        begin_shutdown(l, MF_EXIT_OK);
    } else if (!strncmp(line, "restart", 7) && (line[7] == ' ' || line[7] == '\0')) {
        request_restart(l, j, line + 7);
    } else {
        char err[CTL_LINE_MAX + 96];
        snprintf(err, sizeof(err),
                 CTL_ERR "unknown request \"%s\" (status | status prom | restart ... | stop)\n",
                 line);
        conn_reply(l, j, err);
    }
}

static void on_conn(loop *l, size_t j)
{
    int rc = ctl_read(&l->conns[j].c);
    if (rc == 0)
        return;
    if (rc < 0) {
        if (rc == -EPROTO)
            conn_reply(l, j, CTL_ERR "request line too long\n");
        else
            conn_close(l, j);
        return;
    }
    on_request(l, j);
}

static void on_listen(loop *l)
{
    for (;;) {
        ctl_conn c;
        int rc = ctl_accept(l->lfd, &c);
        if (rc == -EAGAIN)
            return;
        if (rc < 0) {
            log_warn(COMP, "accept(%s): %s", l->sock_path, strerror(-rc));
            return;
        }
        size_t j = 0;
        while (j < MAX_CONNS && l->conns[j].use != CONN_FREE)
            j++;
        if (j == MAX_CONNS) {
            (void)ctl_write_all(c.fd, CTL_ERR "busy\n", 9, 100);
            close(c.fd);
            continue;
        }
        l->conns[j].c = c;
        l->conns[j].use = CONN_READING;
        if (watch(l, c.fd, TAG(SRC_CONN, j)) < 0)
            conn_close(l, j);
    }
}

/* ---- phases ---- */

static void begin_shutdown(loop *l, int code)
{
    if (l->phase == PH_SHUTDOWN || l->phase == PH_DONE)
        return;
    if (l->job.active)
        job_finish(l, "the instance is stopping");
    log_info(COMP, "stopping instance %s: ingress, router, workers, relay", l->c->runtime.instance);
    l->phase = PH_SHUTDOWN;
    l->stop_group = 0;
    if (l->exit_code == MF_EXIT_OK)
        l->exit_code = code;
}

static void kill_everything(loop *l)
{
    log_warn(COMP, "second stop signal: killing every stage");
    l->kill_all = 1;
    for (size_t i = 0; i < l->n_procs; i++) {
        dispatch(l, i, CHILD_EV_STOP, 0);
        send_signal(l, &l->procs[i], SIGKILL);
    }
}

static void progress(loop *l)
{
    if (l->phase == PH_STARTUP) {
        while (l->start_pos < l->n_procs) {
            size_t i = l->start_order[l->start_pos];
            proc *p = &l->procs[i];
            if (p->ch.state == CHILD_IDLE) {
                dispatch(l, i, CHILD_EV_START, 0);
                continue;
            }
            if (p->ch.state == CHILD_RUNNING) {
                l->start_pos++;
                continue;
            }
            if (p->ch.state == CHILD_FAILED) {
                char name[96];
                proc_name(p, name, sizeof(name));
                log_error(COMP, "instance %s cannot start: %s failed: %s", l->c->runtime.instance,
                          name, p->ch.reason);
                int st = p->ch.last_status;
                begin_shutdown(l, st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == MF_EXIT_CONFIG
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
        job_step(l);
    if (l->phase == PH_SHUTDOWN) {
        while (l->stop_group < N_STOP_GROUPS) {
            int all_down = 1;
            for (size_t i = 0; i < l->n_procs; i++) {
                proc *p = &l->procs[i];
                if (p->group != l->stop_group)
                    continue;
                if (!p->ch.stop_requested && !child_is_down(&p->ch))
                    dispatch(l, i, CHILD_EV_STOP, 0);
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
                if (!l->kill_all)
                    kill_everything(l);
            } else {
                log_info(COMP, "SIG%s received", sigabbrev_np((int)si.ssi_signo));
                begin_shutdown(l, MF_EXIT_OK);
            }
            break;
        case SIGHUP:
            /* stages decide what a HUP means (stage_hup_flag); pass it on */
            for (size_t i = 0; i < l->n_procs; i++)
                send_signal(l, &l->procs[i], SIGHUP);
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
            dispatch(l, i, CHILD_EV_TIMER, 0);
    }
    if (now >= l->next_sample_ns)
        sample(l, now);
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
    if ((rc = watch(l, l->sigfd, TAG(SRC_SIGNAL, 0))) < 0 ||
        (rc = watch(l, l->timerfd, TAG(SRC_TIMER, 0))) < 0 ||
        (rc = watch(l, l->lfd, TAG(SRC_LISTEN, 0))) < 0)
        goto err;
    if (c->runtime.cpu_supervisor >= 0) {
        cpu_set_t cs;
        CPU_ZERO(&cs);
        CPU_SET(c->runtime.cpu_supervisor, &cs);
        if (sched_setaffinity(0, sizeof(cs), &cs) < 0)
            log_warn(COMP, "sched_setaffinity(cpu %d): %s", c->runtime.cpu_supervisor,
                     strerror(errno));
    }
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
                on_listen(l);
                break;
            case SRC_PIDFD:
                on_pidfd(l, i);
                break;
            case SRC_READY:
                if (l->procs[i].ready_fd >= 0)
                    on_ready(l, i);
                break;
            case SRC_CONN:
                if (l->conns[i].use == CONN_READING)
                    on_conn(l, i);
                break;
            }
        }
        progress(l);
    }
    return l->exit_code;
}

void loop_destroy(loop *l)
{
    if (!l)
        return;
    /* A stage still alive here (epoll failure, or an error path) must not outlive us. */
    for (size_t i = 0; l->procs && i < l->n_procs; i++) {
        proc *p = &l->procs[i];
        if (p->pidfd >= 0) {
            send_signal(l, p, SIGKILL);
            siginfo_t si;
            (void)waitid(P_PIDFD, (id_t)p->pidfd, &si, WEXITED);
            close(p->pidfd);
        }
        if (p->ready_fd >= 0)
            close(p->ready_fd);
    }
    if (l->topo) {
        size_t left = topo_bytes_queued(l->topo);
        if (left)
            log_warn(COMP, "%zu bytes of records were still in the rings at stop", left);
    }
    topo_destroy(l->topo);
    if (l->lfd >= 0) {
        close(l->lfd);
        ctl_unlink(l->sock_path);
    }
    if (l->job.active)
        job_finish(l, "the supervisor is exiting");
    for (size_t j = 0; j < MAX_CONNS; j++) {
        if (l->conns[j].use == CONN_STOP)
            (void)ctl_write_all(l->conns[j].c.fd, "stopped\n", 8, REPLY_TIMEOUT);
        if (l->conns[j].c.fd >= 0)
            close(l->conns[j].c.fd);
    }
    if (l->epfd >= 0)
        close(l->epfd);
    if (l->timerfd >= 0)
        close(l->timerfd);
    if (l->sigfd >= 0)
        close(l->sigfd);
    if (l->phase == PH_DONE)
        log_info(COMP, "instance %s stopped", l->c->runtime.instance);
    free(l->procs);
    free(l->start_order);
    free(l);
}
