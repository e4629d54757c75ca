#include "mqttc.h"
#include "mqttc_int.h"

#include <errno.h>
#include <liburing.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "futex.h"
#include "log.h"

bool mqttc_supports(const cfg_client *c)
{
    return c && c->scheme == CFG_MQTT && !c->tls.enabled;
}

bool mqttc_wanted(enum cfg_mqtt_io mode, const cfg_client *c, const char *comp)
{
    const char *env = getenv("MQTTFLOW_MQTT_IO");
    bool want = mode == CFG_MQTT_IO_AUTO;
    if (env && strcmp(env, "paho") == 0)
        want = false;
    else if (env && (strcmp(env, "uring") == 0 || strcmp(env, "auto") == 0))
        want = true;
    else if (env && *env)
        log_warn(comp, "MQTTFLOW_MQTT_IO=\"%.16s\" is not paho, uring or auto: ignored", env);
    return want && mqttc_supports(c);
}

/* ---- buffers ---- */

int mqttc_buf_reserve(buf *b, size_t add, size_t max)
{
    if (b->len + add <= b->cap)
        return 0;
    if (b->len + add > max)
        return -EAGAIN;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + add)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p)
        return -ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

static void set_state(mqttc *m, enum mqttc_state st)
{
    if (m->st == st)
        return;
    m->st = st;
    if (m->o.state)
        m->o.state(m->o.arg, st);
}

static bool connected(const mqttc *m)
{
    return m->st >= MQTTC_CONNACK_WAIT && m->st <= MQTTC_UP;
}

static struct io_uring_sqe *sqe_get(mqttc *m)
{
    struct io_uring_sqe *s = io_uring_get_sqe(&m->ring);
    if (!s) { /* cannot happen with RING_ENTRIES: at most 4 SQEs are ever queued */
        io_uring_submit(&m->ring);
        s = io_uring_get_sqe(&m->ring);
    }
    return s;
}

/* ---- write path ---- */

int mqttc_queue_bytes(mqttc *m, buf *b, const void *p, size_t n)
{
    int rc = mqttc_buf_reserve(b, n, WBUF_MAX);
    if (rc < 0)
        return rc;
    memcpy(b->p + b->len, p, n);
    b->len += n;
    if (b == &m->wbuf)
        m->tx_queued += n;
    return 0;
}

void mqttc_queue_ack(mqttc *m, buf *b, int type, uint16_t id, uint8_t reason)
{
    uint8_t p[8];
    long n = mqtt_pkt_encode_ack(p, sizeof(p), m->version, type, id, reason);
    if (n > 0 && mqttc_queue_bytes(m, b, p, (size_t)n) < 0)
        log_error(m->comp, "write queue of %s full: %s %u not sent", m->c->uri,
                  mqtt_pkt_type_name(type), (unsigned)id);
}

/* Submits the queued bytes when no send is in flight (one send per turn; its completion
 * submits the next). Syscalls: none here, the SQE goes with the turn's io_uring_enter. */
static void kick_send(mqttc *m)
{
    if (m->send_armed || m->wbuf.len == 0 || !connected(m))
        return;
    buf t = m->sbuf;
    m->sbuf = m->wbuf;
    m->wbuf = t;
    m->wbuf.len = 0;
    m->soff = 0;
    struct io_uring_sqe *s = sqe_get(m);
    io_uring_prep_send(s, m->fd, m->sbuf.p, m->sbuf.len, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(s, OP_SEND);
    m->send_armed = true;
    m->pending++;
    m->last_tx_ns = m->now_ns; /* keepalive precision: the turn's time will do */
}

/* Keeps a receive armed; with opts.recv_pace_us, within the pause only the non-blocking one
 * mqttc_poll_recv asked for (MSG_DONTWAIT: -EAGAIN rather than a wait on the socket). */
static void arm_recv(mqttc *m)
{
    if (m->recv_armed || !connected(m))
        return;
    bool nowait = m->o.recv_pace_us && clock_mono_ns() < m->recv_hold_ns;
    if (nowait && !m->recv_poll)
        return;
    m->recv_poll = false;
    struct io_uring_sqe *s;
    if (m->rx_delay) {
        /* opts.rx_coalesce_us: a timeout linked before the receive; ETIME_SUCCESS lets the
         * chain go on when it expires, CQE_SKIP_SUCCESS keeps its completion from ending the
         * turn's wait. Same io_uring_enter, no extra system call */
        m->rx_delay = false;
        m->rx_delay_ts = (struct __kernel_timespec){
            .tv_sec = m->o.rx_coalesce_us / 1000000,
            .tv_nsec = (long long)(m->o.rx_coalesce_us % 1000000) * 1000};
        s = sqe_get(m);
        io_uring_prep_timeout(s, &m->rx_delay_ts, 0, IORING_TIMEOUT_ETIME_SUCCESS);
        io_uring_sqe_set_data64(s, OP_DELAY);
        s->flags |= IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS;
    }
    s = sqe_get(m);
    io_uring_prep_recv(s, m->fd, m->rbuf + m->rlen, m->rcap - m->rlen, nowait ? MSG_DONTWAIT : 0);
    io_uring_sqe_set_data64(s, OP_RECV);
    m->recv_armed = true;
    m->recv_nowait = nowait;
    m->pending++;
}

/* Keeps one read on wake_fd armed: its completion only ends the turn's wait. */
static void arm_wake(mqttc *m)
{
    if (m->o.wake_fd <= 0 || m->wake_armed)
        return;
    struct io_uring_sqe *s = sqe_get(m);
    io_uring_prep_read(s, m->o.wake_fd, &m->wake_buf, sizeof(m->wake_buf), 0);
    io_uring_sqe_set_data64(s, OP_WAKE);
    m->wake_armed = true;
}

/* ---- connection lifecycle ---- */

static void schedule_retry(mqttc *m)
{
    m->next_ns = clock_mono_ns() + (uint64_t)(m->delay_s * 1e9);
    m->delay_s *= 2;
    if (m->delay_s > m->c->reconnect_max)
        m->delay_s = m->c->reconnect_max;
}

static void close_if_idle(mqttc *m)
{
    if (m->fd >= 0 && m->pending == 0 && !connected(m) && m->st != MQTTC_CONNECTING) {
        close(m->fd);
        m->fd = -1;
    }
}

/* Drops the connection: the socket is shut (the kernel ends its pending receive and send,
 * whose completions then only count down `pending`) and closed once nothing refers to it.
 * Outgoing QoS>0 publishes stay for the next connection, unless drop_on_loss. */
void mqttc_lose(mqttc *m, const char *why)
{
    if (m->fd >= 0)
        shutdown(m->fd, SHUT_RDWR);
    m->rlen = 0;
    m->refused = false;
    m->rx_delay = false;
    m->recv_hold_ns = 0;
    m->recv_poll = false;
    m->wbuf.len = m->abuf.len = 0;
    m->tx_queued = m->tx_sent = 0;
    m->ping_ns = 0;
    m->sub_id = 0;
    mqttc_q0_complete(m, true, -ENOTCONN);
    if (m->o.drop_on_loss)
        for (size_t i = 0; i < m->out_cap && m->n_out; i++)
            if (m->outs[i].state != OUT_FREE)
                mqttc_out_done(m, &m->outs[i], -ENOTCONN);
    if (m->st == MQTTC_CLOSED) {
        close_if_idle(m);
        return;
    }
    /* a lost connection is always logged; failed attempts the first time and every 10th (a
     * broker down for long must not flood the log); mqttc_disconnect's own close never */
    bool up = m->st >= MQTTC_SUBSCRIBING;
    if (m->started && (up || m->failures++ % 10 == 0))
        log_warn(m->comp, "connection of %s to %s %s (%s); reconnecting in %.1fs", m->client_id,
                 m->c->uri, up ? "lost" : "failed", why, m->delay_s);
    schedule_retry(m);
    set_state(m, MQTTC_DOWN);
    close_if_idle(m);
}

static int resolve(mqttc *m)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    char port[16];
    snprintf(port, sizeof(port), "%d", m->c->port);
    int rc = getaddrinfo(m->c->host, port, &hints, &res);
    if (rc != 0) {
        if (m->failures % 10 == 0)
            log_warn(m->comp, "getaddrinfo(%s): %s", m->c->host, gai_strerror(rc));
        return -EHOSTUNREACH;
    }
    memcpy(&m->addr, res->ai_addr, res->ai_addrlen);
    m->addr_len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* Creates the socket and queues the connect with its link timeout. */
static void start_connect(mqttc *m)
{
    if (m->fd >= 0) /* the last socket still has work in the kernel: try next turn */
        return;
    if (resolve(m) < 0) {
        schedule_retry(m);
        return;
    }
    int fd = socket(m->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log_error(m->comp, "socket(): %s", strerror(errno));
        schedule_retry(m);
        return;
    }
    /* every packet goes out at once: Nagle would hold a lone PUBACK back for the peer's
     * delayed ACK (BASELINES pitfall 5) */
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
        log_warn(m->comp, "setsockopt(TCP_NODELAY) to %s: %s", m->c->uri, strerror(errno));
    m->fd = fd;
    m->connect_ts = (struct __kernel_timespec){.tv_sec = CONNECT_TIMEOUT_S};
    struct io_uring_sqe *s = sqe_get(m);
    io_uring_prep_connect(s, fd, (struct sockaddr *)&m->addr, m->addr_len);
    io_uring_sqe_set_data64(s, OP_CONNECT);
    s->flags |= IOSQE_IO_LINK;
    s = sqe_get(m);
    io_uring_prep_link_timeout(s, &m->connect_ts, 0);
    io_uring_sqe_set_data64(s, OP_LTIMEOUT);
    m->pending += 2;
    set_state(m, MQTTC_CONNECTING);
}

static void send_connect(mqttc *m)
{
    const cfg_client *c = m->c;
    mqtt_pkt_connect pc = {
        .version = m->version,
        .client_id = m->client_id,
        .username = c->username,
        .password = c->password,
        .clean = c->clean_session,
        .keepalive = (uint16_t)(c->keepalive > 65535 ? 65535
                                : c->keepalive < 0   ? 0
                                                     : c->keepalive),
        /* as ingress/subscriber: a persistent MQTT 5 session must not end at disconnect */
        .session_expiry = m->version == MQTT_PKT_V5 && !c->clean_session ? 0xFFFFFFFFu : 0,
    };
    if (m->o.will && c->will.enabled) {
        pc.will_topic = c->will.topic;
        pc.will_payload = c->will.payload ? c->will.payload : "";
        pc.will_len = c->will.payload ? strlen(c->will.payload) : 0;
        pc.will_qos = c->will.qos;
        pc.will_retain = c->will.retain;
    }
    int rc = mqttc_buf_reserve(&m->wbuf, 512 + 6 * 65536, SIZE_MAX);
    long n = rc < 0 ? rc : mqtt_pkt_encode_connect(m->wbuf.p, m->wbuf.cap, &pc);
    if (n < 0) {
        log_error(m->comp, "CONNECT for %s cannot be encoded: %s", c->uri, strerror((int)-n));
        mqttc_lose(m, "CONNECT not encodable");
        return;
    }
    m->wbuf.len = (size_t)n;
    m->tx_queued = (uint64_t)n;
    m->keepalive = pc.keepalive;
    m->deadline_ns = clock_mono_ns() + CONNACK_TIMEOUT_NS;
}

static void send_subscribe(mqttc *m)
{
    if (m->o.n_filters == 0)
        return;
    size_t need = 16;
    for (size_t i = 0; i < m->o.n_filters; i++)
        need += 3 + strlen(m->filters[i]) + 1;
    if (mqttc_buf_reserve(&m->wbuf, need, SIZE_MAX) < 0) {
        mqttc_lose(m, "out of memory for SUBSCRIBE");
        return;
    }
    m->sub_id = 0;
    m->sub_id = mqttc_alloc_id(m);
    long n = mqtt_pkt_encode_subscribe(m->wbuf.p + m->wbuf.len, m->wbuf.cap - m->wbuf.len,
                                       m->version, m->sub_id, (const char *const *)m->filters,
                                       m->qos, m->o.n_filters);
    if (n < 0) {
        log_error(m->comp, "SUBSCRIBE for %s cannot be encoded: %s", m->c->uri, strerror((int)-n));
        return;
    }
    m->wbuf.len += (size_t)n;
    m->tx_queued += (uint64_t)n;
}

static void on_connack(mqttc *m, const mqtt_pkt *p)
{
    if (m->st != MQTTC_CONNACK_WAIT) {
        mqttc_lose(m, "a second CONNACK");
        return;
    }
    if (p->reason != 0) {
        char why[160];
        snprintf(why, sizeof(why), "CONNACK refused: 0x%02x %s", p->reason,
                 mqtt_pkt_reason_name(MQTT_CONNACK, m->version, p->reason));
        mqttc_lose(m, why);
        return;
    }
    m->session_present = p->session_present;
    if (!m->session_present)
        memset(m->rx_qos2, 0, sizeof(m->rx_qos2));
    m->window = m->o.max_inflight;
    if (p->receive_max && p->receive_max < m->window)
        m->window = p->receive_max;
    if (p->server_keepalive)
        m->keepalive = p->server_keepalive;
    log_info(m->comp, "connected to %s as %s (MQTT %s, io_uring%s)", m->c->uri, m->client_id,
             m->version == MQTT_PKT_V5 ? "5" : "3.1.1",
             m->session_present ? ", session present" : "");
    set_state(m, m->o.n_filters ? MQTTC_SUBSCRIBING : MQTTC_UP);
    if (m->o.n_filters == 0) {
        m->delay_s = m->c->reconnect_min;
        m->failures = 0;
    }
    mqttc_redeliver(m);
    send_subscribe(m);
}

static void on_suback(mqttc *m, const mqtt_pkt *p)
{
    if (p->id != m->sub_id) {
        log_warn(m->comp, "SUBACK for unknown packet id %u from %s", (unsigned)p->id, m->c->uri);
        return;
    }
    m->sub_id = 0;
    size_t refused = 0;
    for (size_t i = 0; i < p->n_codes && i < m->o.n_filters && i < MQTT_PKT_MAX_SUBACKS; i++) {
        uint8_t g = p->codes[i];
        if (g >= 0x80) {
            log_error(m->comp, "broker %s refused the subscription of %s to \"%s\" (0x%02x %s)",
                      m->c->uri, m->client_id, m->filters[i], g,
                      mqtt_pkt_reason_name(MQTT_SUBACK, m->version, g));
            refused++;
        } else if (g < m->qos[i]) {
            log_warn(m->comp, "broker %s granted QoS %d instead of %d on \"%s\"", m->c->uri, g,
                     m->qos[i], m->filters[i]);
        }
    }
    if (p->n_codes != m->o.n_filters) {
        mqttc_lose(m, "SUBACK with a wrong number of return codes");
        return;
    }
    if (refused) {
        m->sub_failed = true;
        schedule_retry(m);
        return;
    }
    m->sub_failed = false;
    m->delay_s = m->c->reconnect_min;
    m->failures = 0;
    log_info(m->comp, "subscribed to %zu topic(s) on %s", m->o.n_filters, m->c->uri);
    set_state(m, MQTTC_UP);
}

static bool rx_qos2_has(const mqttc *m, uint16_t id)
{
    return m->rx_qos2[id >> 3] & (1u << (id & 7));
}

static void rx_qos2_set(mqttc *m, uint16_t id, bool on)
{
    if (on)
        m->rx_qos2[id >> 3] |= (uint8_t)(1u << (id & 7));
    else
        m->rx_qos2[id >> 3] &= (uint8_t) ~(1u << (id & 7));
}

/* One packet from the broker. Returns whether a message went to the stage. */
static bool handle_pkt(mqttc *m, const mqtt_pkt *p)
{
    if (m->st == MQTTC_CONNACK_WAIT && p->type != MQTT_CONNACK) {
        mqttc_lose(m, "a packet before CONNACK");
        return false;
    }
    out_msg *o;
    switch (p->type) {
    case MQTT_CONNACK:
        on_connack(m, p);
        return false;
    case MQTT_PUBLISH:
        if (p->qos == 2 && rx_qos2_has(m, p->id)) { /* a redelivery of one we hold */
            mqttc_queue_ack(m, &m->abuf, MQTT_PUBREC, p->id, 0);
            return false;
        }
        if (m->o.message && m->o.message(m->o.arg, p) != 0) {
            m->refused = true; /* not stored: no ack (opts.message) */
            return true;
        }
        if (p->qos == 1) {
            mqttc_queue_ack(m, &m->abuf, MQTT_PUBACK, p->id, 0);
        } else if (p->qos == 2) {
            rx_qos2_set(m, p->id, true);
            mqttc_queue_ack(m, &m->abuf, MQTT_PUBREC, p->id, 0);
        }
        return true;
    case MQTT_PUBREL:
        /* the message was stored before its PUBREC; an unknown id is answered too (MQTT
         * 4.3.3: the sender may resend PUBREL after a reconnect) */
        rx_qos2_set(m, p->id, false);
        mqttc_queue_ack(m, &m->wbuf, MQTT_PUBCOMP, p->id, 0);
        return false;
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBCOMP:
        o = mqttc_out_find(m, p->id);
        if (!o || o->qos != (p->type == MQTT_PUBACK ? 1 : 2) ||
            (p->type == MQTT_PUBREC && o->state != OUT_SENT) ||
            (p->type == MQTT_PUBCOMP && o->state != OUT_RELEASING)) {
            log_debug(m->comp, "%s for packet id %u not in flight on %s (ignored)",
                      mqtt_pkt_type_name(p->type), (unsigned)p->id, m->c->uri);
            if (p->type == MQTT_PUBREC) /* let the broker forget it ([MQTT-4.3.3]) */
                mqttc_queue_ack(m, &m->wbuf, MQTT_PUBREL, p->id,
                                m->version == MQTT_PKT_V5 ? 0x92 : 0);
            return false;
        }
        if (p->type == MQTT_PUBREC && p->reason < 0x80) {
            o->state = OUT_RELEASING;
            mqttc_queue_ack(m, &m->wbuf, MQTT_PUBREL, p->id, 0);
        } else {
            mqttc_out_done(m, o, p->reason >= 0x80 ? p->reason : 0);
        }
        return false;
    case MQTT_SUBACK:
        on_suback(m, p);
        return false;
    case MQTT_PINGRESP:
        m->ping_ns = 0;
        return false;
    case MQTT_DISCONNECT: {
        char why[128];
        snprintf(why, sizeof(why), "DISCONNECT from the broker: 0x%02x %s", p->reason,
                 mqtt_pkt_reason_name(MQTT_DISCONNECT, m->version, p->reason));
        mqttc_lose(m, why);
        return false;
    }
    default:
        mqttc_lose(m, "unexpected packet");
        return false;
    }
}

/* A receive completed: decode every whole packet of the buffer, hand messages to the stage,
 * then (batch_done) release their acknowledgements. Syscalls: none; the re-armed receive and
 * the acks are submitted with the next turn's single io_uring_enter. */
static void on_recv(mqttc *m, int res)
{
    m->recv_armed = false;
    if (!connected(m))
        return;
    if (res == -EAGAIN && m->recv_nowait) /* mqttc_poll_recv found nothing: the pause goes on */
        return;
    if (res <= 0) {
        mqttc_lose(m, res == 0 ? "closed by the broker" : strerror(-res));
        return;
    }
    bool filled = m->rlen + (size_t)res == m->rcap; /* more may wait in the socket */
    if (m->o.recv_pace_us) {
        m->recv_hold_ns = clock_mono_ns() + m->o.recv_pace_us * 1000ull;
        m->recv_poll = filled; /* the socket may hold more: take it with the next turn */
    }
    m->rlen += (size_t)res;
    size_t off = 0;
    unsigned delivered = 0;
    while (off < m->rlen && connected(m) && !m->refused) {
        mqtt_pkt p;
        const char *why = NULL;
        long n = mqtt_pkt_decode(m->rbuf + off, m->rlen - off, m->version, m->max_remain, &p, &why);
        if (n == 0)
            break;
        if (n < 0) {
            char msg[160];
            snprintf(msg, sizeof(msg), "%s from the broker: %s",
                     n == -EMSGSIZE ? "packet too large" : "malformed packet", why);
            mqttc_lose(m, msg);
            break;
        }
        delivered += handle_pkt(m, &p);
        off += (size_t)n;
    }
    /* opts.rx_coalesce_us, only while the stream is dense: at the rate of this batch
     * (its messages over the time since the last receive completed) a delay must gather at
     * least 4 messages. Below that it would save little and cost latency where it is
     * measured: at 500 us the limit is about 8,000 msg/s, so a stream of 5,000 msg/s (the
     * harness's latency point) is not delayed, a full-speed one is. */
    m->rx_delay = false;
    if (m->o.rx_coalesce_us) { /* the clock is read only by a stage that coalesces */
        uint64_t now = m->now_ns, d_ns = (uint64_t)m->o.rx_coalesce_us * 1000u;
        bool dense = (uint64_t)delivered * d_ns >= 4 * (now - m->rx_prev_ns);
        m->rx_prev_ns = now;
        m->rx_delay =
            m->rx_coalesce_ok && dense && delivered && delivered < RX_BATCH_ENOUGH && !filled;
    }
    if (delivered && m->o.batch_done)
        m->o.batch_done(m->o.arg);
    if (!connected(m))
        return;
    if (m->abuf.len) {
        if (mqttc_queue_bytes(m, &m->wbuf, m->abuf.p, m->abuf.len) < 0)
            log_error(m->comp, "write queue of %s full: %zu bytes of acknowledgements dropped",
                      m->c->uri, m->abuf.len);
        m->abuf.len = 0;
    }
    if (off) {
        memmove(m->rbuf, m->rbuf + off, m->rlen - off);
        m->rlen -= off;
    }
    if (m->rlen == 0 && m->rcap > 4 * RBUF_START) { /* a large packet has passed: give it back */
        uint8_t *nb = realloc(m->rbuf, RBUF_START);
        if (nb) {
            m->rbuf = nb;
            m->rcap = RBUF_START;
        }
    }
    if (m->rlen == m->rcap) { /* one packet larger than the buffer: grow up to the bound */
        size_t cap = m->rcap * 2, lim = m->max_remain + MQTT_PKT_MAX_HDR;
        uint8_t *nb = realloc(m->rbuf, cap < lim ? cap : lim);
        if (!nb) {
            mqttc_lose(m, "out of memory for a large packet");
            return;
        }
        m->rbuf = nb;
        m->rcap = cap < lim ? cap : lim;
    }
    arm_recv(m);
}

static void on_send(mqttc *m, int res)
{
    m->send_armed = false;
    if (!connected(m))
        return;
    if (res < 0) {
        mqttc_lose(m, strerror(-res));
        return;
    }
    m->soff += (size_t)res;
    m->tx_sent += (uint64_t)res;
    mqttc_q0_complete(m, false, 0);
    if (m->soff < m->sbuf.len) { /* a short send: the rest first, then whatever queued since */
        struct io_uring_sqe *s = sqe_get(m);
        io_uring_prep_send(s, m->fd, m->sbuf.p + m->soff, m->sbuf.len - m->soff, MSG_NOSIGNAL);
        io_uring_sqe_set_data64(s, OP_SEND);
        m->send_armed = true;
        m->pending++;
        return;
    }
    m->sbuf.len = 0;
    kick_send(m);
}

static void on_connect(mqttc *m, int res)
{
    if (m->st != MQTTC_CONNECTING)
        return;
    if (res < 0) {
        /* said as paho's path says it (common/mqtt_why.c), so an operator reads one text */
        char why[160];
        snprintf(why, sizeof(why),
                 "the broker could not be reached: connect(): %s; is it running, and are host "
                 "and port right?",
                 res == -ECANCELED ? "timed out" : strerror(-res));
        mqttc_lose(m, why);
        return;
    }
    set_state(m, MQTTC_CONNACK_WAIT);
    send_connect(m);
    arm_recv(m);
}

static void handle_cqe(mqttc *m, struct io_uring_cqe *cqe)
{
    enum op op = (enum op)io_uring_cqe_get_data64(cqe);
    int res = cqe->res;
    /* not the socket's: pending does not count them (an OP_DELAY completes only when it
     * failed; its receive then ends with -ECANCELED and the connection is dropped) */
    if (op == OP_WAKE || op == OP_CANCEL || op == OP_DELAY || op == OP_FUTEX) {
        if (op == OP_WAKE)
            m->wake_armed = false;
        if (op == OP_FUTEX) {
            m->futex_armed = false; /* woken, or refused (a word had changed): re-armed next */
            /* any other error would come back at once at every arming: stop arming (the
             * caller then waits in short steps, mqttc_arm_futexv) rather than spin */
            if (res < 0 && res != -EAGAIN && res != -ECANCELED && res != -EINTR &&
                !m->futex_failed) {
                m->futex_failed = true;
                log_error(m->comp, "io_uring FUTEX_WAITV failed: %s; waiting in 1 ms steps",
                          strerror(-res));
            }
        }
        return;
    }
    m->pending--;
    switch (op) {
    case OP_CONNECT:
        on_connect(m, res);
        break;
    case OP_RECV:
        on_recv(m, res);
        break;
    case OP_SEND:
        on_send(m, res);
        break;
    case OP_LTIMEOUT:
    case OP_WAKE:
    case OP_CANCEL:
    case OP_DELAY:
    case OP_FUTEX:
        break;
    }
    close_if_idle(m);
}

/* ---- timers ---- */

static uint64_t ka_ns(const mqttc *m)
{
    return (uint64_t)m->keepalive * 1000000000ull;
}

static void run_timers(mqttc *m, uint64_t now)
{
    if (m->st == MQTTC_DOWN && m->started && now >= m->next_ns)
        start_connect(m);
    if (m->st == MQTTC_CONNACK_WAIT && now >= m->deadline_ns)
        mqttc_lose(m, "no CONNACK within 10 s");
    if (m->st == MQTTC_SUBSCRIBING && m->sub_failed && now >= m->next_ns) {
        m->sub_failed = false;
        send_subscribe(m);
    }
    if (m->st >= MQTTC_SUBSCRIBING && m->st <= MQTTC_UP && m->keepalive) {
        if (m->ping_ns && now - m->ping_ns >= ka_ns(m)) {
            mqttc_lose(m, "no PINGRESP within the keepalive");
        } else if (!m->ping_ns && now - m->last_tx_ns >= ka_ns(m) * 3 / 4) {
            uint8_t p[2];
            (void)mqtt_pkt_encode_pingreq(p, sizeof(p));
            if (mqttc_queue_bytes(m, &m->wbuf, p, 2) == 0)
                m->ping_ns = now;
        }
    }
}

static uint64_t next_timer(const mqttc *m)
{
    uint64_t t = UINT64_MAX;
    if (m->st == MQTTC_DOWN && m->started)
        t = m->next_ns;
    else if (m->st == MQTTC_CONNACK_WAIT)
        t = m->deadline_ns;
    else if (m->st >= MQTTC_SUBSCRIBING && m->st <= MQTTC_UP) {
        if (m->sub_failed)
            t = m->next_ns;
        if (m->keepalive) {
            uint64_t k = m->ping_ns ? m->ping_ns + ka_ns(m) : m->last_tx_ns + ka_ns(m) * 3 / 4;
            t = k < t ? k : t;
        }
    }
    if (m->o.recv_pace_us && connected(m) && !m->recv_armed && m->recv_hold_ns < t)
        t = m->recv_hold_ns; /* the pause ends: arm the blocking receive */
    return t;
}

/* The submit-and-wait half of a turn: timers, the queued SQEs, one io_uring_enter that waits
 * up to wait_ns (bounded by the client's own timers; 0: no wait, and no system call when
 * nothing is queued) for want completions. The completions stay in the ring for mqttc_reap. */
static int submit_wait(mqttc *m, uint64_t wait_ns, unsigned want)
{
    uint64_t now = m->now_ns = clock_mono_ns();
    run_timers(m, now);
    bool sending = m->send_armed;
    kick_send(m);
    arm_recv(m);
    arm_wake(m);
    /* opts.quiet_send: a send queued now does not end a wait for one completion; the
     * receive does (or the timeout). Not while disconnecting (started is false: the caller
     * waits for the send) nor with QoS 0 completions owed to the send */
    if (want == 1 && m->o.quiet_send && !sending && m->send_armed && m->started && m->recv_armed &&
        !m->recv_nowait && m->q0_n == 0)
        want = 2;
    uint64_t until = now + wait_ns;
    uint64_t t = next_timer(m);
    if (t < until)
        until = t > now ? t : now;
    struct io_uring_cqe *cqe;
    int rc;
    /* the one io_uring_enter of the turn: submits the receive, the send, a connect, and
     * waits for the first completion */
    if (until > now) {
        struct __kernel_timespec ts = {.tv_sec = (long long)((until - now) / 1000000000ull),
                                       .tv_nsec = (long long)((until - now) % 1000000000ull)};
        rc = io_uring_submit_and_wait_timeout(&m->ring, &cqe, want, &ts, NULL);
    } else {
        rc = io_uring_submit(&m->ring);
    }
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
        return rc;
    m->now_ns = clock_mono_ns(); /* mqttc_reap's completions and timers use it */
    return rc == -EINTR ? -EINTR : 0;
}

int mqttc_submit(mqttc *m)
{
    return submit_wait(m, 0, 0);
}

int mqttc_wait(mqttc *m, int timeout_ms)
{
    return submit_wait(m, (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000ull, 1);
}

int mqttc_nap(mqttc *m, uint64_t ns)
{
    /* RING_ENTRIES: more completions than one nap can bring (a receive, a send, the futex
     * wait); should that many come, the nap ends early, which costs nothing */
    return submit_wait(m, ns, RING_ENTRIES);
}

int mqttc_run(mqttc *m, int timeout_ms)
{
    int rc = mqttc_wait(m, timeout_ms);
    if (rc < 0 && rc != -EINTR)
        return rc;
    int handled = mqttc_reap(m);
    return rc == -EINTR ? -EINTR : handled;
}

int mqttc_reap(mqttc *m)
{
    struct io_uring_cqe *cqe;
    int handled = 0;
    unsigned head;
    io_uring_for_each_cqe(&m->ring, head, cqe)
    {
        handle_cqe(m, cqe);
        handled++;
    }
    io_uring_cq_advance(&m->ring, (unsigned)handled);
    run_timers(m, m->now_ns); /* the clock of the last wait's end (submit_wait) */
    return handled;
}

/* ---- public ---- */

int mqttc_create(const mqttc_opts *o, mqttc **out)
{
    if (!o || !mqttc_supports(o->c) || !o->client_id || (o->n_filters && (!o->filters || !o->qos)))
        return -EINVAL;
    mqttc *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    int rc = -ENOMEM;
    m->o = *o;
    m->c = o->c;
    m->fd = -1;
    m->comp = o->log_comp ? o->log_comp : "mqtt";
    m->version = o->c->mqtt_version == 5 ? MQTT_PKT_V5 : MQTT_PKT_V311;
    m->max_remain = o->max_packet ? o->max_packet : DEFAULT_MAX_PACKET;
    if (m->max_remain > MQTT_PKT_MAX_REMAIN)
        m->max_remain = MQTT_PKT_MAX_REMAIN;
    m->o.max_inflight = o->max_inflight ? o->max_inflight : DEFAULT_INFLIGHT;
    if (m->o.max_inflight > 65000)
        m->o.max_inflight = 65000;
    m->window = m->o.max_inflight;
    m->delay_s = o->c->reconnect_min > 0 ? o->c->reconnect_min : 0.1;
    m->client_id = strdup(o->client_id);
    m->rcap = RBUF_START < m->max_remain + MQTT_PKT_MAX_HDR ? RBUF_START
                                                            : m->max_remain + MQTT_PKT_MAX_HDR;
    m->rbuf = malloc(m->rcap);
    m->out_cap = m->o.max_inflight;
    m->outs = calloc(m->out_cap, sizeof(*m->outs));
    m->free_slots = malloc(m->out_cap * sizeof(*m->free_slots));
    m->slot_of = malloc(65536 * sizeof(*m->slot_of));
    if (!m->client_id || !m->rbuf || !m->outs || !m->free_slots || !m->slot_of)
        goto err;
    for (size_t i = 0; i < 65536; i++)
        m->slot_of[i] = NO_SLOT;
    for (size_t i = 0; i < m->out_cap; i++)
        m->free_slots[i] = (uint32_t)(m->out_cap - 1 - i);
    m->n_free = m->out_cap;
    if (o->n_filters) {
        m->filters = calloc(o->n_filters, sizeof(*m->filters));
        m->qos = calloc(o->n_filters, sizeof(*m->qos));
        if (!m->filters || !m->qos)
            goto err;
        for (size_t i = 0; i < o->n_filters; i++) {
            if (!(m->filters[i] = strdup(o->filters[i])))
                goto err;
            m->qos[i] = o->qos[i];
        }
    }
    m->o.filters = NULL; /* the copies above are used */
    m->o.qos = NULL;
    rc = io_uring_queue_init(RING_ENTRIES, &m->ring, 0);
    if (rc < 0) {
        log_error(m->comp, "io_uring_queue_init(%d): %s", RING_ENTRIES, strerror(-rc));
        goto err;
    }
    m->ring_ok = true;
    m->rx_coalesce_ok = (m->ring.features & IORING_FEAT_CQE_SKIP) != 0;
    *out = m;
    return 0;
err:
    mqttc_destroy(m);
    return rc;
}

void mqttc_start(mqttc *m)
{
    m->started = true;
    m->next_ns = 0;
    if (m->st == MQTTC_CLOSED) /* again after mqttc_disconnect (the ingress's pause) */
        set_state(m, MQTTC_DOWN);
}

int mqttc_disconnect(mqttc *m, int timeout_ms)
{
    int err = 0;
    uint64_t end = clock_mono_ns() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000ull;
    m->started = false; /* no reconnect, and the broker's close after DISCONNECT is expected */
    if (connected(m)) {
        uint8_t p[4];
        long n = mqtt_pkt_encode_disconnect(p, sizeof(p), m->version, 0);
        (void)mqttc_queue_bytes(m, &m->wbuf, p, (size_t)n);
        while (connected(m) && (m->wbuf.len || m->send_armed)) {
            uint64_t now = clock_mono_ns();
            if (now >= end) {
                err = -ETIMEDOUT;
                break;
            }
            (void)mqttc_run(m, (int)((end - now) / 1000000ull) + 1);
        }
    }
    set_state(m, MQTTC_CLOSED);
    mqttc_lose(m, "disconnect");
    return err;
}

void mqttc_destroy(mqttc *m)
{
    if (!m)
        return;
    if (m->fd >= 0) {
        shutdown(m->fd, SHUT_RDWR);
        /* the kernel may still write into rbuf until the receive completes */
        uint64_t end = clock_mono_ns() + CLOSE_WAIT_MS * 1000000ull;
        while (m->pending && clock_mono_ns() < end) {
            struct io_uring_cqe *cqe;
            struct __kernel_timespec ts = {.tv_nsec = 50 * 1000000};
            if (io_uring_wait_cqe_timeout(&m->ring, &cqe, &ts) == 0) {
                m->pending--;
                io_uring_cqe_seen(&m->ring, cqe);
            }
        }
        close(m->fd);
    }
    if (m->ring_ok && m->wake_armed) {
        /* the read writes into *m: cancel it and see it end before m is freed */
        struct io_uring_sqe *s = sqe_get(m);
        io_uring_prep_cancel64(s, OP_WAKE, 0);
        io_uring_sqe_set_data64(s, OP_CANCEL);
        io_uring_submit(&m->ring);
        uint64_t end = clock_mono_ns() + CLOSE_WAIT_MS * 1000000ull;
        while (m->wake_armed && clock_mono_ns() < end) {
            struct io_uring_cqe *cqe;
            struct __kernel_timespec ts = {.tv_nsec = 50 * 1000000};
            if (io_uring_wait_cqe_timeout(&m->ring, &cqe, &ts) == 0) {
                if (io_uring_cqe_get_data64(cqe) == OP_WAKE)
                    m->wake_armed = false;
                io_uring_cqe_seen(&m->ring, cqe);
            }
        }
    }
    if (m->ring_ok)
        io_uring_queue_exit(&m->ring);
    for (size_t i = 0; m->outs && i < m->out_cap; i++)
        free(m->outs[i].pkt);
    for (size_t i = 0; m->filters && i < m->o.n_filters; i++)
        free(m->filters[i]);
    free(m->filters);
    free(m->qos);
    free(m->slot_of);
    free(m->free_slots);
    free(m->outs);
    free(m->q0s);
    free(m->wbuf.p);
    free(m->sbuf.p);
    free(m->abuf.p);
    free(m->rbuf);
    free(m->client_id);
    free(m);
}

bool mqttc_futexv_supported(void)
{
    struct io_uring_probe *p = io_uring_get_probe();
    if (!p)
        return false;
    bool ok = io_uring_opcode_supported(p, MQTTC_OP_FUTEX_WAITV) != 0;
    io_uring_free_probe(p);
    return ok;
}

int mqttc_notify(mqttc *m, int efd)
{
    int rc = io_uring_register_eventfd(&m->ring, efd);
    if (rc < 0)
        log_error(m->comp, "io_uring_register_eventfd: %s", strerror(-rc));
    return rc;
}

int mqttc_arm_futexv(mqttc *m, const struct futex_waitv *v, unsigned n)
{
    if (m->futex_armed)
        return -EALREADY;
    if (m->futex_failed)
        return -ENOSYS;
    if (n == 0 || n > FUTEX_WAITV_MAX_WORDS)
        return -EINVAL;
    struct io_uring_sqe *s = sqe_get(m);
    /* filled by hand (liburing 2.3 has no io_uring_prep_futex_waitv), as the kernel's
     * io_futexv_prep reads it: addr = the futex_waitv array, len = its count, every other
     * field 0 (fd, futex_flags, addr2, addr3, buf_index, file_index: -EINVAL otherwise).
     * The kernel copies the array when it takes the SQE (in the next io_uring_enter) */
    memset(s, 0, sizeof(*s));
    s->opcode = MQTTC_OP_FUTEX_WAITV;
    s->addr = (uint64_t)(uintptr_t)v;
    s->len = n;
    io_uring_sqe_set_data64(s, OP_FUTEX);
    m->futex_armed = true;
    return 0;
}

void mqttc_poll_recv(mqttc *m)
{
    m->recv_poll = m->o.recv_pace_us != 0;
}

void mqttc_recv_now(mqttc *m)
{
    m->recv_hold_ns = 0;
}

enum mqttc_state mqttc_get_state(const mqttc *m)
{
    return m->st;
}

int mqttc_ring_fd(const mqttc *m)
{
    return m->ring.ring_fd;
}

bool mqttc_session_present(const mqttc *m)
{
    return m->session_present;
}
