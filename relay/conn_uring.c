#include "conn_uring.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "futex.h"
#include "log.h"
#include "mqtt_pkt.h"
#include "mqttc.h"
#include "ring.h"

#define COMP         "relay"
#define PARK_MS      1000 /* idle wait: new work writes the eventfd, mqttc's timers end it earlier */
#define MAX_INFLIGHT 65000 /* the pump bounds what is outstanding (PUMP_MAX_OUTSTANDING) */

/* one queued publish; topic and payload bytes follow it */
typedef struct req {
    void *ctx;
    uint32_t topic_len;
    uint32_t len;
    uint8_t qos, retain;
} req;

#define REQ_ALIGN        8
#define REQ_SIZE(tl, pl) ((sizeof(req) + (tl) + (pl) + REQ_ALIGN - 1) & ~(size_t)(REQ_ALIGN - 1))

struct conn_uring {
    mqttc *m;
    cq *q;
    void *cctx; /* cq_conn_ctx: where connection events go */
    const cfg_client *cl;
    int efd;
    pthread_t th;
    bool th_started;
    /* under mu: the request queue and the hand-over flags */
    pthread_mutex_t mu;
    uint8_t *qb;
    size_t qlen, qcap;
    bool parked; /* the I/O thread waits (or is about to): a new request must wake it */
    bool stop, disc;
    bool unhold; /* conn_uring_park: the pump sleeps until an acknowledgement comes */
    int disc_ms;
    /* I/O thread only */
    uint8_t *tb; /* the queue taken from the pump */
    size_t tcap;
    bool was_up;
    /* one-thread mode (conn_uring_create's one_thread): mqttc runs on the pump's thread, no
     * I/O thread, no queue, no eventfd; fw is the futex wait the pump parks on (read by the
     * kernel at the io_uring_enter that submits it) */
    bool one;
    bool primary;  /* CONN_URING_IO_PRIMARY: the pump's waits go through this one */
    bool deferred; /* the last turn's sends wait for this turn's end (conn_uring_flush) */
    struct futex_waitv fw[FUTEX_WAITV_MAX_WORDS];
};

/* ---- I/O thread: mqttc's callbacks post to the completion queue ---- */

static void on_published(void *arg, void *ctx, int rc)
{
    (void)arg;
    cq_complete(ctx, rc == 0);
}

static void on_state(void *arg, enum mqttc_state st)
{
    conn_uring *u = arg;
    if (st == MQTTC_UP) {
        u->was_up = true;
        cq_conn_event(u->cctx, CQ_EV_UP, (int)mqttc_send_window(u->m));
    } else if (st == MQTTC_DOWN) {
        cq_conn_event(u->cctx, u->was_up ? CQ_EV_LOST : CQ_EV_CONNFAIL, -1);
        u->was_up = false;
    }
}

/* Hands every taken request to mqttc. A publish mqttc refuses (not connected, queue full) is
 * failed to the pump, which publishes it again in ring order. */
static void submit_taken(conn_uring *u, size_t n)
{
    for (size_t off = 0; off < n;) {
        const req *r = (const req *)(u->tb + off);
        const char *topic = (const char *)(r + 1);
        int rc = mqttc_publish(u->m, topic, r->topic_len, topic + r->topic_len, r->len, r->qos,
                               r->retain, r->ctx);
        if (rc != 0)
            cq_complete(r->ctx, 0);
        off += REQ_SIZE(r->topic_len, r->len);
    }
}

/* The loop: take the queue, publish it, one mqttc turn (one io_uring_enter: sends, receives
 * acknowledgements, waits when there was nothing to do). Syscalls per turn: that one enter;
 * per publish: none. */
static void *io_main(void *arg)
{
    conn_uring *u = arg;
    mqttc_start(u->m);
    for (;;) {
        pthread_mutex_lock(&u->mu);
        uint8_t *t = u->tb;
        size_t tcap = u->tcap, n = u->qlen;
        u->tb = u->qb;
        u->tcap = u->qcap;
        u->qb = t;
        u->qcap = tcap;
        u->qlen = 0;
        bool stop = u->stop, disc = u->disc, unhold = u->unhold;
        int disc_ms = u->disc_ms;
        u->unhold = false;
        u->parked = n == 0 && !stop && !disc;
        pthread_mutex_unlock(&u->mu);
        submit_taken(u, n);
        if (unhold)
            mqttc_recv_now(u->m);
        if (n) /* the pump's batch: its sends and the acks gathered since, in one enter */
            mqttc_poll_recv(u->m);
        if (disc) {
            (void)mqttc_disconnect(u->m, disc_ms);
            cq_conn_event(u->cctx, CQ_EV_DISC, 0);
            break;
        }
        if (stop)
            break;
        (void)mqttc_run(u->m, n ? 0 : PARK_MS);
    }
    return NULL;
}

/* ---- the pump's thread ---- */

int conn_uring_create(const cfg_client *cl, const char *client_id, cq *q, uint16_t index,
                      enum conn_uring_io io, int efd, conn_uring **out)
{
    bool one_thread = io != CONN_URING_IO_THREAD;
    conn_uring *u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    u->q = q;
    u->cctx = cq_conn_ctx(q, index);
    u->cl = cl;
    u->one = one_thread;
    u->primary = io == CONN_URING_IO_PRIMARY;
    pthread_mutex_init(&u->mu, NULL);
    u->efd = one_thread ? -1 : eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (!one_thread && u->efd < 0) {
        int err = -errno;
        log_error(COMP, "eventfd(): %s", strerror(errno));
        pthread_mutex_destroy(&u->mu);
        free(u);
        return err;
    }
    mqttc_opts o = {.c = cl,
                    .client_id = client_id,
                    .max_inflight = MAX_INFLIGHT,
                    .log_comp = COMP,
                    .wake_fd = u->efd,
                    .drop_on_loss = true,
                    /* the incoming packets are the acknowledgements of our publishes: taken
                     * once per pump batch (mqttc_poll_recv in io_main) or after a pause of
                     * four naps, not with a wake-up per PUBACK; a pump that parks ends the
                     * pause (conn_uring_park). docs/performance.md has the figures */
                    .recv_pace_us = 4 * RING_NAP_US,
                    .arg = u,
                    .published = on_published,
                    .state = on_state};
    if (one_thread) {
        /* the pump waits on the io_uring itself: no thread to wake, and no pause of the
         * receive either (a completion that comes during the pump's nap waits in the ring
         * for the next turn, which is what the pause was for) */
        o.wake_fd = io == CONN_URING_IO_PRIMARY && efd > 0 ? efd : 0;
        o.recv_pace_us = 0;
    }
    int rc = mqttc_create(&o, &u->m);
    if (rc == 0 && io == CONN_URING_IO_SECONDARY)
        rc = mqttc_notify(u->m, efd);
    if (rc < 0) {
        mqttc_destroy(u->m);
        if (u->efd >= 0)
            close(u->efd);
        pthread_mutex_destroy(&u->mu);
        free(u);
        return rc;
    }
    *out = u;
    return 0;
}

int conn_uring_start(conn_uring *u)
{
    if (u->one) {
        mqttc_start(u->m); /* connects in the pump's next conn_uring_poll */
        return 0;
    }
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, &old); /* the thread inherits it: signals stay ours */
    int rc = pthread_create(&u->th, NULL, io_main, u);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        log_error(COMP, "pthread_create for the connection of %s: %s", u->cl->client_id,
                  strerror(rc));
        return -rc;
    }
    u->th_started = true;
    return 0;
}

/* Under mu: whether the I/O thread waits and must be woken (then it no longer counts as
 * parked, so a burst of publishes writes the eventfd once). */
static bool take_parked(conn_uring *u)
{
    bool p = u->parked;
    u->parked = false;
    return p;
}

static void wake(conn_uring *u)
{
    uint64_t one = 1;
    if (write(u->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        log_error(COMP, "write(eventfd) of %s: %s", u->cl->client_id, strerror(errno));
}

/* Syscalls: none (conn_uring_flush hands the queue over). */
int conn_uring_publish(conn_uring *u, const char *topic, const void *payload, size_t len, int qos,
                       int retain, void *ctx)
{
    size_t tl = strlen(topic);
    /* refused here, as paho's sendMessage refuses it: a broker would drop the connection */
    if (!mqtt_pkt_topic_ok(topic, tl) || qos < 0 || qos > 2 || len > MQTT_PKT_MAX_REMAIN)
        return -EINVAL;
    /* what the I/O thread's mqttc_publish would refuse for good (its largest header: MQTT 5) */
    if (mqtt_pkt_publish_size(MQTT_PKT_V5, tl, len, 2) > MQTTC_PACKET_MAX)
        return -EMSGSIZE;
    if (u->one) {
        /* straight into mqttc's write queue (its one copy); a refusal is the caller's:
         * -ENOTCONN (the connection dropped in this turn; its CQ_EV_LOST is queued), -EBUSY,
         * -EAGAIN, -ENOMEM */
        return mqttc_publish(u->m, topic, tl, payload, len, qos, retain != 0, ctx);
    }
    size_t need = REQ_SIZE(tl, len);
    pthread_mutex_lock(&u->mu);
    if (u->qlen + need > u->qcap) {
        size_t cap = u->qcap ? u->qcap : 65536;
        while (cap < u->qlen + need)
            cap *= 2;
        uint8_t *nb = realloc(u->qb, cap);
        if (!nb) {
            pthread_mutex_unlock(&u->mu);
            return -ENOMEM;
        }
        u->qb = nb;
        u->qcap = cap;
    }
    req *r = (req *)(u->qb + u->qlen);
    *r = (req){.ctx = ctx,
               .topic_len = (uint32_t)tl,
               .len = (uint32_t)len,
               .qos = (uint8_t)qos,
               .retain = retain ? 1 : 0};
    memcpy(r + 1, topic, tl);
    if (len)
        memcpy((uint8_t *)(r + 1) + tl, payload, len);
    u->qlen += need;
    pthread_mutex_unlock(&u->mu);
    return 0;
}

/* Syscalls: none, unless requests are queued and the I/O thread is parked (one eventfd write).
 * Called once per pump turn, so the thread gets the turn's whole batch with one wake-up. */
void conn_uring_flush(conn_uring *u, bool progress)
{
    if (u->one) {
        /* the turn's sends leave with the pump's next io_uring_enter: the wait's (nap or
         * park) when this turn found nothing more to do, else the end of the next turn, so a
         * busy pump submits once per two turns and one at a low rate once per wait; none
         * waits longer than one more turn */
        if (!u->primary) { /* the pump waits through the primary: a secondary submits now */
            (void)mqttc_submit(u->m);
            return;
        }
        if (progress && u->deferred) {
            (void)mqttc_submit(u->m);
            u->deferred = false;
        } else if (progress) {
            u->deferred = true;
        }
        return;
    }
    pthread_mutex_lock(&u->mu);
    bool w = u->qlen && take_parked(u);
    pthread_mutex_unlock(&u->mu);
    if (w)
        wake(u);
}

/* Syscalls: one eventfd write when the I/O thread is parked (its pause may be holding back
 * the acknowledgement the pump is about to sleep for), else none. */
void conn_uring_park(conn_uring *u)
{
    if (u->one)
        return; /* nothing is held back: the pump's own wait takes the acknowledgement */
    pthread_mutex_lock(&u->mu);
    u->unhold = true;
    bool w = take_parked(u);
    pthread_mutex_unlock(&u->mu);
    if (w)
        wake(u);
}

void conn_uring_disconnect(conn_uring *u, int timeout_ms)
{
    if (u->one) {
        /* on the pump's thread: the bounded wait the I/O thread would make, made here */
        (void)mqttc_disconnect(u->m, timeout_ms);
        cq_conn_event(u->cctx, CQ_EV_DISC, 0);
        return;
    }
    pthread_mutex_lock(&u->mu);
    u->disc = true;
    u->disc_ms = timeout_ms;
    bool w = take_parked(u);
    pthread_mutex_unlock(&u->mu);
    if (w)
        wake(u);
    if (!u->th_started) /* never started: nothing to wait for */
        cq_conn_event(u->cctx, CQ_EV_DISC, 0);
}

void conn_uring_destroy(conn_uring *u)
{
    if (!u)
        return;
    if (u->th_started) {
        pthread_mutex_lock(&u->mu);
        u->stop = true;
        take_parked(u);
        pthread_mutex_unlock(&u->mu);
        wake(u); /* unconditionally: the thread may be between its check and its wait */
        pthread_join(u->th, NULL);
    }
    mqttc_destroy(u->m);
    if (u->efd >= 0)
        close(u->efd);
    pthread_mutex_destroy(&u->mu);
    free(u->qb);
    free(u->tb);
    free(u);
}

/* ---- one-thread mode: the pump's wait ---- */

bool conn_uring_one_thread_supported(void)
{
    return mqttc_futexv_supported();
}

/* Syscalls: none (what it queues, a re-armed receive, leaves with the next submit). */
void conn_uring_poll(conn_uring *u)
{
    if (u->one)
        (void)mqttc_reap(u->m);
}

/* Syscalls: one io_uring_enter (it submits the turn's sends too); ns 0: none unless
 * something is queued. */
void conn_uring_nap(conn_uring *u, uint64_t ns)
{
    u->deferred = false;
    (void)mqttc_nap(u->m, ns);
}

/* Syscalls: one io_uring_enter, which submits the turn's sends and the futex wait (when the
 * last one completed) and sleeps until a completion: a woken futex word, an acknowledgement,
 * a connection event, mqttc's next timer, or timeout_ms. */
void conn_uring_wait(conn_uring *u, const uint32_t *const *words, const uint32_t *vals, size_t n,
                     int timeout_ms)
{
    if (n > FUTEX_WAITV_MAX_WORDS)
        n = FUTEX_WAITV_MAX_WORDS;
    if (n > 0) {
        /* u->fw may be rewritten while an earlier wait is armed: the kernel copied that one's
         * array when it took the SQE. mqttc_arm_futexv says -EALREADY then: the armed wait
         * still stands for these very values (mqttc.h says why) */
        for (size_t i = 0; i < n; i++)
            u->fw[i] = (struct futex_waitv){.val = vals[i],
                                            .uaddr = (uint64_t)(uintptr_t)words[i],
                                            .flags = FUTEX_32}; /* shared: no PRIVATE flag */
        int rc = mqttc_arm_futexv(u->m, u->fw, (unsigned)n);
        if (rc != 0 && rc != -EALREADY && timeout_ms > 1)
            timeout_ms = 1; /* no futex wait (logged): look at the rings every millisecond */
    }
    u->deferred = false;
    (void)mqttc_wait(u->m, timeout_ms);
}
