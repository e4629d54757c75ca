/* loop_ctl: the supervisor's answers on the control socket (see loop_int.h, ctl.h).
 *
 * "status", "status prom", "status json" and "status rules" are answered at once from the
 * child table and the stats segment (loop_obs.c renders them, for the HTTP endpoint too). "restart
 * ..." starts a job that restarts the named stages one after the other, each ready before the next,
 * and answers when it is done, so the CLI returns only once the new processes are up. "stop" is
 * answered at once and again with "stopped" just before the supervisor exits (loop_ctl_close_all).
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
#include "exitcode.h"
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

void loop_ctl_job_step(loop *l)
{
    job *jb = &l->job;
    char name[96];
    while (jb->active) {
        if (jb->pos == jb->n) {
            loop_ctl_job_finish(l, NULL);
            return;
        }
        proc *p = &l->procs[jb->list[jb->pos]];
        loop_proc_name(p, name, sizeof(name));
        if (!jb->waiting) {
            jb->old_pid = p->ch.pid;
            switch (p->ch.state) {
            case CHILD_RUNNING:
            case CHILD_BACKOFF:
            case CHILD_FAILED:
                log_info(COMP, "restarting %s (pid %d) on request", name, (int)jb->old_pid);
                loop_dispatch(l, jb->list[jb->pos], CHILD_EV_RESTART, 0);
                break;
            case CHILD_STARTING:
                jb->old_pid = 0; /* already on its way up: wait for it */
                break;
            default: {
                char err[160];
                snprintf(err, sizeof(err), "%s is %s", name, child_state_name(p->ch.state));
                loop_ctl_job_finish(l, err);
                return;
            }
            }
            jb->waiting = 1;
        }
        if (p->ch.state == CHILD_RUNNING && p->ch.pid != jb->old_pid) {
            if (jb->old_pid > 0)
                fprintf(jb->out, "restarted %s: pid %d -> %d\n", name, (int)jb->old_pid,
                        (int)p->ch.pid);
            else
                fprintf(jb->out, "started %s: pid %d\n", name, (int)p->ch.pid);
            jb->pos++;
            jb->waiting = 0;
            continue;
        }
        if (p->ch.state == CHILD_BACKOFF || p->ch.state == CHILD_FAILED) {
            char err[320];
            snprintf(err, sizeof(err), "%s did not come back: %.200s", name, p->ch.reason);
            loop_ctl_job_finish(l, err);
            return;
        }
        return; /* still stopping or starting */
    }
}

static int job_start(loop *l, size_t j, const size_t *list, size_t n, const char *note)
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
    if (note)
        fputs(note, jb->out);
    memcpy(jb->list, list, n * sizeof(*list));
    jb->n = n;
    jb->conn = j;
    jb->active = 1;
    l->conns[j].use = CONN_JOB;
    loop_ctl_job_step(l);
    return 0;
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
    if (job_start(l, j, list, n, note[0] ? note : NULL) < 0)
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
        loop_begin_shutdown(l, MF_EXIT_OK);
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
}

void loop_ctl_readable(loop *l, size_t j)
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
