/* loop_job: the restart job of the control socket's "restart ..." (see loop_int.h).
 *
 * A job restarts its stages one after the other, each ready before the next, so the CLI
 * returns only once the new processes are up. It drives the stages through loop_dispatch
 * (loop_proc.c) and keeps its report in memory; it knows nothing of connections: loop_ctl.c
 * starts it for a request and writes the reply that loop_job_take hands over.
 */
#include "loop_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "child.h"
#include "log.h"

/* Ends the job with error (its first error wins); loop_job_take then hands the reply over. */
static void job_end(job *jb, const char *error)
{
    if (error && !jb->error[0])
        snprintf(jb->error, sizeof(jb->error), "%s", error);
    jb->ended = 1;
}

int loop_job_step(loop *l)
{
    job *jb = &l->job;
    char name[96];
    while (jb->active && !jb->ended) {
        if (jb->pos == jb->n) {
            job_end(jb, NULL);
            break;
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
                job_end(jb, err);
                return 1;
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
            job_end(jb, err);
            return 1;
        }
        return 0; /* still stopping or starting */
    }
    return jb->active && jb->ended;
}

char *loop_job_take(loop *l, const char *error, size_t *conn_out)
{
    job *jb = &l->job;
    job_end(jb, error);
    fclose(jb->out);
    jb->out = NULL;
    const char *err = jb->error[0] ? jb->error : NULL;
    char *reply = NULL;
    if (asprintf(&reply, "%s%s%s%s", err ? CTL_ERR : "", err ? err : "", err ? "\n" : "",
                 jb->text ? jb->text : "") < 0)
        reply = NULL;
    *conn_out = jb->conn;
    free(jb->text);
    free(jb->list);
    memset(jb, 0, sizeof(*jb));
    return reply;
}

int loop_job_start(loop *l, size_t j, const size_t *list, size_t n, const char *note)
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
    return 0;
}
