/* loop_ctl: the supervisor's answers on the control socket (see loop_int.h, ctl.h).
 *
 * "status", "status prom", "status json" and "status rules" are answered at once from the
 * child table and the stats segment (loop_obs.c renders them, for the HTTP endpoint too). "restart
 * ..." starts a job (loop_job.c) that restarts the named stages one after the other, each ready
 * before the next, and is answered when the job ends, so the CLI returns only once the new
 * processes are up. "stop" is answered at once (loop.c then begins the shutdown) and again with
 * "stopped" just before the supervisor exits (loop_ctl_close_all). This file parses and replies;
 * it calls loop_job.c, loop_obs.c and loop_proc.c, never loop.c.
 * A connection is taken out of epoll as soon as its request is complete: the client has shut its
 * side down, and a level-triggered EOF would wake the loop forever.
 */
#include "loop_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "status.h"

static void conn_close(loop *l, size_t j)
{
    loop_close_watched(l, &l->conns[j].c.fd);
    l->conns[j].use = CONN_FREE;
}

static void conn_reply(loop *l, size_t j, const char *text)
{
    (void)ctl_write_all(l->conns[j].c.fd, text, strlen(text), REPLY_TIMEOUT);
    conn_close(l, j);
}

void loop_ctl_job_finish(loop *l, const char *error)
{
    size_t j;
    char *reply = loop_job_take(l, error, &j);
    conn_reply(l, j, reply ? reply : CTL_ERR "out of memory\n");
    free(reply);
}

void loop_ctl_job_step(loop *l)
{
    if (loop_job_step(l))
        loop_ctl_job_finish(l, NULL);
}

/* "restart worker N|workers|router|relay|ingress ID|ingresses" */
static void request_restart(loop *l, size_t j, char *args)
{
    size_t list[CFG_MAX_WORKERS + CFG_MAX_CLIENTS + 2];
    size_t n = 0;
    char *save = NULL;
    char *what = strtok_r(args, " \t", &save);
    char *arg = strtok_r(NULL, " \t", &save);
    char err[CTL_LINE_MAX + 64];
    const char *clean_ingress = NULL;

    if (l->phase != PH_RUNNING) {
        snprintf(err, sizeof(err), CTL_ERR "instance %s is %s\n", l->c->runtime.instance,
                 loop_phase_name(l->phase));
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
        if (match && p->kind == STATS_INGRESS) {
            int client = cfg_ingress_client(l->c, p->idx);
            if (client >= 0 && l->c->clients[client].clean_session)
                clean_ingress = p->id;
        }
    }
    if (n == 0) {
        snprintf(err, sizeof(err),
                 CTL_ERR "no such stage: \"%s%s%s\" (restart worker N | workers | router | "
                         "relay | ingress CLIENT_ID | ingresses)\n",
                 what, arg ? " " : "", arg ? arg : "");
        conn_reply(l, j, err);
        return;
    }
    /* the one restart that can lose messages: say so with the answer (see `restart -h`) */
    char note[CTL_LINE_MAX + 256] = "";
    if (clean_ingress)
        snprintf(note, sizeof(note),
                 "note: ingress %s has clean_session: true: QoS 1 messages published while it "
                 "reconnects are not delivered to it (clean_session: false keeps them)\n",
                 clean_ingress);
    if (loop_job_start(l, j, list, n, note[0] ? note : NULL) < 0) {
        conn_reply(l, j, CTL_ERR "out of memory\n");
        return;
    }
    l->conns[j].use = CONN_JOB;
    loop_ctl_job_step(l);
}

static int on_request(loop *l, size_t j)
{
    char *line = l->conns[j].c.line;
    /* The request is complete: stop watching the fd (the client has shut its side down,
     * so a level-triggered EOF would fire forever); the reply is written when ready. */
    (void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, l->conns[j].c.fd, NULL);
    while (*line == ' ')
        line++;
    int mode = loop_obs_mode(line);
    if (mode >= 0) {
        char *text = loop_obs_text(l, mode);
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
        return 1; /* the loop begins the shutdown */
    } else if (!strncmp(line, "tap ", 4)) {
        loop_obs_tap(l, j, line + 4);
    } else if (!strncmp(line, "restart", 7) && (line[7] == ' ' || line[7] == '\0')) {
        request_restart(l, j, line + 7);
    } else {
        char err[CTL_LINE_MAX + 96];
        snprintf(err, sizeof(err),
                 CTL_ERR
                 "unknown request \"%s\" (status [prom|json|rules] | restart ... | tap ... | "
                 "stop)\n",
                 line);
        conn_reply(l, j, err);
    }
    return 0;
}

int loop_ctl_readable(loop *l, size_t j)
{
    int rc = ctl_read(&l->conns[j].c);
    if (rc == 0)
        return 0;
    if (rc < 0) {
        if (rc == -EPROTO)
            conn_reply(l, j, CTL_ERR "request line too long\n");
        else
            conn_close(l, j);
        return 0;
    }
    return on_request(l, j);
}

void loop_ctl_accept(loop *l)
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
        uint64_t now = clock_mono_ns();
        loop_ctl_sweep(l, now);
        size_t j = 0, oldest = MAX_CONNS;
        for (; j < MAX_CONNS && l->conns[j].use != CONN_FREE; j++)
            if (l->conns[j].use == CONN_READING &&
                (oldest == MAX_CONNS || l->conns[j].since_ns < l->conns[oldest].since_ns))
                oldest = j;
        if (j == MAX_CONNS && oldest < MAX_CONNS) {
            /* full of connections that have not said anything yet: the oldest gives way */
            conn_close(l, oldest);
            j = oldest;
        }
        if (j == MAX_CONNS) { /* all busy with jobs and stops: a real overload */
            (void)ctl_write_all(c.fd, CTL_ERR "busy\n", 9, 100);
            close(c.fd);
            continue;
        }
        l->conns[j].c = c;
        l->conns[j].use = CONN_READING;
        l->conns[j].since_ns = now;
        if (loop_watch(l, c.fd, TAG(SRC_CONN, j)) < 0)
            conn_close(l, j);
    }
}

void loop_ctl_sweep(loop *l, uint64_t now)
{
    for (size_t j = 0; j < MAX_CONNS; j++)
        if (l->conns[j].use == CONN_READING && now - l->conns[j].since_ns >= READ_TIMEOUT_NS)
            conn_close(l, j);
}

void loop_ctl_close_all(loop *l)
{
    if (l->job.active)
        loop_ctl_job_finish(l, "the supervisor is exiting");
    for (size_t j = 0; j < MAX_CONNS; j++) {
        if (l->conns[j].use == CONN_STOP)
            (void)ctl_write_all(l->conns[j].c.fd, "stopped\n", 8, REPLY_TIMEOUT);
        if (l->conns[j].c.fd >= 0)
            close(l->conns[j].c.fd);
        l->conns[j].c.fd = -1;
        l->conns[j].use = CONN_FREE;
    }
}
