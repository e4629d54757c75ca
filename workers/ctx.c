#include "ctx.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "atom.h"
#include "clock.h"
#include "log.h"

#define COMP "worker"

void ctx_init_module(mf_ctx *x, const ctx_env *env, const char *module)
{
    memset(x, 0, sizeof(*x));
    x->env = env;
    x->rule = -1;
    x->step = -1;
    x->callback = "mf_init";
    x->module = module;
    x->origin.client = -1;
}

/* The process that may write outputs: the first that set up a call (the worker). A child a
 * callback forked inherits the worker's memory: its writes would make a second producer of
 * the SPSC output ring and corrupt it (issue 8 item 4). Only the worker's thread writes it; a
 * forked child only reads its copy.
 *
 * How a child is told apart without a system call per output (getpid cost one per message,
 * 90% of the worker's system calls): one page marked MADV_WIPEONFORK holds a non-zero byte;
 * the kernel hands every child made without CLONE_VM a zeroed copy of it. That covers glibc's
 * fork() (a C callback's, and Python's os.fork, which calls it), _Fork and a raw clone system
 * call; a pthread_atfork handler would see only the first. Not covered: threads (the same
 * process: getpid did not catch them either) and children that share the worker's memory
 * (vfork, clone with CLONE_VM), which getpid did catch; they share the mark, so nothing in
 * memory can tell them apart. A kernel without MADV_WIPEONFORK (before 4.14) falls back to
 * comparing getpid() per output. */
static pid_t owner_pid;
static const volatile unsigned char *owner_mark; /* the page's byte; NULL: getpid fallback */

static void owner_set(void)
{
    owner_pid = getpid();
    long pg = sysconf(_SC_PAGESIZE);
    size_t len = pg > 0 ? (size_t)pg : 4096;
    unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return;
    if (madvise(p, len, MADV_WIPEONFORK) < 0) {
        munmap(p, len);
        return;
    }
    p[0] = 1;
    owner_mark = p; /* never unmapped: read until the process exits */
}

/* Whether this is the process that set up the first call (the worker), not a child of it. */
static bool is_owner(void)
{
    if (owner_mark)
        return *owner_mark != 0;
    return owner_pid != 0 && getpid() == owner_pid;
}

void ctx_init_call(mf_ctx *x, const ctx_env *env, int rule, int step, const char *callback,
                   const cfg_param *params, size_t n_params, ctx_next_fn next, void *next_arg,
                   const ctx_origin *origin)
{
    x->env = env;
    x->rule = rule;
    x->step = step;
    x->callback = callback;
    x->module = NULL;
    x->params = params;
    x->n_params = n_params;
    x->next = next;
    x->next_arg = next_arg;
    x->origin = *origin;
    x->emitted = 0;
    if (!owner_pid)
        owner_set();
}

const char *ctx_rule_name(const ctx_env *env, int rule)
{
    if (rule < 0 || (size_t)rule >= env->c->n_rules)
        return "?";
    return env->c->rules[rule].name;
}

/* The topic an mf_emit has checked, while the message it emitted travels down the chain (its
 * x->next call, synchronous), or NULL: the publish at the chain's end is handed the same
 * pointer by every step that does not make a new topic, and does not check the same bytes
 * again (a check per output was the larger part of the worker's per-record CPU with two).
 * Saved and restored around the call since emits nest (a processor fed by a processor's
 * mf_emit). Bytes under this pointer can change meanwhile only by a callback further down
 * writing into a buffer of the one above: what it then hands on goes through its own mf_emit
 * (checked, and the mark moves) or mf_publish (always checked); the relay
 * checks every topic once more before it publishes (relay/pump.c). One thread (ctx.h). */
static const char *emit_checked;

static int write_rec(const ctx_env *env, int rule, int step, const ctx_origin *o, int client,
                     const char *topic, const void *payload, size_t len, int qos, int retain,
                     bool check_topic)
{
    const cfg *c = env->c;

    if (client < 0 || (size_t)client >= c->n_clients || (unsigned)client >= REC_NONE)
        return -EINVAL;
    if (qos < 0 || qos > 2 || (retain != 0 && retain != 1))
        return -EINVAL;
    if (!topic || (check_topic && !cfg_topic_name_is_valid(topic)))
        return -EINVAL;
    if (len > c->runtime.max_payload || len > UINT32_MAX || (len > 0 && !payload))
        return -EINVAL;

    rec_hdr h;
    memset(&h, 0, sizeof(h));
    h.seq = o->seq;
    h.received_ns = o->received_ns;
    h.client = (uint16_t)client;
    h.rule = rule >= 0 ? (uint16_t)rule : REC_NONE;
    h.step = step >= 0 ? (uint16_t)step : REC_NONE;
    h.kind = REC_PUBLISH;
    h.qos = (uint8_t)qos;
    h.retain = (uint8_t)retain;
    h.src_client = o->client >= 0 ? (uint32_t)o->client : REC_NONE;

    int rc = env->append(env->append_arg, &h, topic, len ? payload : "", len);
    if (rc == -EMSGSIZE)
        return -EINVAL; /* the API promises -EINVAL for "too large" */
    if (rc == 0 && env->slot)
        stats_add(&env->slot->out, 1);
    return rc;
}

int ctx_write(const ctx_env *env, int rule, int step, const ctx_origin *o, int client,
              const char *topic, const void *payload, size_t len, int qos, int retain)
{
    return write_rec(env, rule, step, o, client, topic, payload, len, qos, retain,
                     topic != emit_checked);
}

/* Shared checks of mf_emit and mf_publish: a message is being processed and the invocation
 * is under its output limit. */
static int admit(mf_ctx *x)
{
    if (!x || !x->next)
        return -EINVAL;
    if (!is_owner()) {
        log_error(COMP,
                  "mf_emit/mf_publish called in a process forked by callback %s: refused "
                  "(only the worker may write its output ring)",
                  x->callback ? x->callback : "?");
        return -EPERM;
    }
    if (x->emitted >= CTX_MAX_EMITS)
        return -ENOSPC;
    return 0;
}

int mf_emit(mf_ctx *x, const char *topic, const void *payload, size_t len)
{
    int rc = admit(x);
    if (rc < 0)
        return rc;
    /* checked here too (not only when published) so that a bad emit fails in the callback
     * that made it, whatever the steps after it would do with the message */
    if (!topic || !cfg_topic_name_is_valid(topic) || len > x->env->c->runtime.max_payload ||
        (len > 0 && !payload))
        return -EINVAL;
    x->emitted++;
    const char *outer = emit_checked;
    emit_checked = topic;
    rc = x->next(x, topic, len ? payload : "", len);
    emit_checked = outer;
    return rc;
}

int mf_publish(mf_ctx *x, const char *client_id, const char *topic, const void *payload, size_t len,
               int qos, int retain)
{
    int rc = admit(x);
    if (rc < 0)
        return rc;
    if (!client_id || qos < 0 || qos > 1)
        return -EINVAL;
    int client = cfg_client_index(x->env->c, client_id);
    if (client < 0)
        return -EINVAL;
    /* always checked: the topic may be a buffer an outer mf_emit checked and this callback
     * rewrote (emit_checked) */
    rc = write_rec(x->env, x->rule, x->step, &x->origin, client, topic, payload, len, qos, retain,
                   true);
    if (rc == 0)
        x->emitted++;
    return rc;
}

int ctx_next_publish_source(mf_ctx *x, const char *topic, const void *payload, size_t len)
{
    return ctx_write(x->env, x->rule, x->step, &x->origin, x->origin.client, topic, payload, len,
                     x->origin.qos, x->origin.retain);
}

void mf_log(mf_ctx *x, int level, const char *fmt, ...)
{
    char line[LOG_LINE_MAX];
    va_list ap;

    if (!log_enabled(level, "callbacks"))
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt ? fmt : "", ap);
    va_end(ap);
    if (!x)
        log_msg(level, "callbacks", "%s", line);
    else if (x->rule < 0)
        log_msg(level, "callbacks", "module %s: %s", x->module ? x->module : "?", line);
    else
        log_msg(level, "callbacks", "rule %s, callback %s: %s", ctx_rule_name(x->env, x->rule),
                x->callback, line);
}

const char *mf_param(mf_ctx *x, const char *key)
{
    if (!x || !key)
        return NULL;
    for (size_t i = 0; i < x->n_params; i++)
        if (x->params[i].key && strcmp(x->params[i].key, key) == 0)
            return x->params[i].value;
    return NULL;
}

int ctx_call(mf_ctx *x, mf_callback cb, const mf_msg *msgs, size_t n)
{
    stats_slot *slot = x->env->slot;

    /* a callback may run inside another one (a processor fed by a processor's mf_emit): the
     * outermost start is what the supervisor's timeout measures */
    uint64_t outer = slot ? stats_get(&slot->busy_since_ns) : 1;
    if (!outer) {
        ctx_busy *b = x->env->busy;
        if (b) {
            /* relaxed: a watchdog that reads a stale name only mislabels its log line */
            atom_store_relaxed(&b->rule, x->rule);
            atom_store_relaxed(&b->callback, x->callback);
        }
        /* per callback: one coarse clock read (vDSO, no syscall, about 5 ns; the fine clock
         * cost 22, a tenth of the worker's whole per-message time): the watchdog only needs
         * to know when a callback started to within a jiffy (watchdog.h). The floor keeps the
         * mark at or after the supervisor's spawn time, which tells a crash in a callback of
         * this process from a mark a predecessor left (supervisor/loop.c). */
        uint64_t t = clock_mono_coarse_ns();
        stats_set(&slot->busy_since_ns, t > x->env->busy_floor_ns ? t : x->env->busy_floor_ns);
    }
    int rc = cb(x, msgs, n);
    if (!outer)
        stats_set(&slot->busy_since_ns, 0);
    if (rc != 0) {
        log_error(COMP, "rule %s: callback %s returned %d", ctx_rule_name(x->env, x->rule),
                  x->callback, rc);
        if (slot)
            stats_add(&slot->errors, 1);
    }
    return rc;
}
