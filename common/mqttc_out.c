/* mqttc_out: the outgoing side of an mqttc client: packet ids, the table of QoS>0 publishes
 * until their PUBACK/PUBCOMP, QoS 0 completions, redelivery after a reconnect, and
 * mqttc_publish (contracts in mqttc.h). */
#include "mqttc_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

out_msg *mqttc_out_find(mqttc *m, uint16_t id)
{
    uint32_t s = m->slot_of[id];
    return s == NO_SLOT ? NULL : &m->outs[s];
}

static void out_free(mqttc *m, out_msg *o)
{
    m->slot_of[o->id] = NO_SLOT;
    if (o->qos == 2)
        m->qos2_out--;
    free(o->pkt);
    memset(o, 0, sizeof(*o));
    m->free_slots[m->n_free++] = (uint32_t)(o - m->outs);
    m->n_out--;
}

void mqttc_out_done(mqttc *m, out_msg *o, int rc)
{
    void *ctx = o->ctx;
    out_free(m, o);
    if (m->o.published)
        m->o.published(m->o.arg, ctx, rc);
}

/* A packet id no outgoing publish or SUBSCRIBE of ours holds. The window is far below 65535,
 * so the loop ends within window + 2 steps. */
uint16_t mqttc_alloc_id(mqttc *m)
{
    for (;;) {
        uint16_t id = ++m->next_id;
        if (id != 0 && id != m->sub_id && m->slot_of[id] == NO_SLOT)
            return id;
    }
}

/* Room for one more QoS 0 completion; -ENOMEM. */
int mqttc_q0_reserve(mqttc *m)
{
    if (m->q0_n == m->q0_cap) {
        size_t cap = m->q0_cap ? m->q0_cap * 2 : 256;
        q0 *n = malloc(cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        for (size_t i = 0; i < m->q0_n; i++)
            n[i] = m->q0s[(m->q0_head + i) % m->q0_cap];
        free(m->q0s);
        m->q0s = n;
        m->q0_head = 0;
        m->q0_cap = cap;
    }
    return 0;
}

/* After q0_reserve: the publish just queued ends at tx_queued. */
void mqttc_q0_push(mqttc *m, void *ctx)
{
    m->q0s[(m->q0_head + m->q0_n++) % m->q0_cap] = (q0){m->tx_queued, ctx};
}

/* Reports the QoS 0 publishes written up to tx_sent, or all of them with rc when lost. */
void mqttc_q0_complete(mqttc *m, bool all, int rc)
{
    while (m->q0_n) {
        q0 *e = &m->q0s[m->q0_head];
        if (!all && e->end > m->tx_sent)
            break;
        void *ctx = e->ctx;
        m->q0_head = (m->q0_head + 1) % m->q0_cap;
        m->q0_n--;
        if (m->o.published)
            m->o.published(m->o.arg, ctx, rc);
    }
}

static int cmp_seq(const void *a, const void *b)
{
    const out_msg *x = *(out_msg *const *)a, *y = *(out_msg *const *)b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* After CONNACK: what was in flight goes out again, in publish order (MQTT 4.4: with the
 * session kept, PUBLISH with DUP or PUBREL; without one, as new messages). */
void mqttc_redeliver(mqttc *m)
{
    if (m->n_out == 0)
        return;
    out_msg **v = malloc(m->n_out * sizeof(*v));
    if (!v) {
        mqttc_lose(m, "out of memory for redelivery");
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < m->out_cap; i++)
        if (m->outs[i].state != OUT_FREE)
            v[n++] = &m->outs[i];
    qsort(v, n, sizeof(*v), cmp_seq);
    size_t resent = 0;
    for (size_t i = 0; i < n; i++) {
        out_msg *o = v[i];
        if (o->state == OUT_RELEASING) {
            if (m->session_present) {
                mqttc_queue_ack(m, &m->wbuf, MQTT_PUBREL, o->id, 0);
            } else {
                mqttc_out_done(m, o,
                               0); /* the broker took it (PUBREC) before it lost the session */
                continue;
            }
        } else if (!o->pkt) { /* drop_on_loss: cannot be in flight across a loss */
            mqttc_out_done(m, o, -ENOTCONN);
            continue;
        } else {
            if (m->session_present)
                o->pkt[0] |= 0x08;
            else
                o->pkt[0] &= (uint8_t)~0x08;
            (void)mqttc_queue_bytes(m, &m->wbuf, o->pkt, o->len);
        }
        resent++;
    }
    free(v);
    if (resent)
        log_info(m->comp, "%zu unacknowledged publish(es) sent again to %s%s", resent, m->c->uri,
                 m->session_present ? " (DUP, session kept)" : " (the broker has no session)");
}

int mqttc_publish(mqttc *m, const char *topic, size_t topic_len, const void *payload, size_t len,
                  int qos, bool retain, void *ctx)
{
    /* a packet the write queue can never hold would be -EAGAIN (try later) for ever and wedge
     * the caller's queue behind it: it is refused for good */
    size_t size = mqtt_pkt_publish_size(m->version, topic_len, len, qos);
    if (size == 0)
        return -EINVAL;
    if (size > WBUF_MAX)
        return -EMSGSIZE;
    if (m->st != MQTTC_SUBSCRIBING && m->st != MQTTC_UP)
        return -ENOTCONN;
    if (qos > 0 && (m->n_out >= m->window ||
                    (qos == 2 && m->version != MQTT_PKT_V5 && m->n_out >= V311_QOS2_INFLIGHT)))
        return -EBUSY;
    int rc = mqttc_buf_reserve(&m->wbuf, size, WBUF_MAX);
    if (rc == 0 && qos == 0 && ctx)
        rc = mqttc_q0_reserve(m);
    if (rc < 0)
        return rc;
    uint16_t id = qos ? mqttc_alloc_id(m) : 0;
    long n = mqtt_pkt_encode_publish(m->wbuf.p + m->wbuf.len, size, m->version, topic, topic_len,
                                     payload, len, qos, retain, false, id);
    if (n < 0)
        return (int)n;
    if (qos > 0) {
        /* the copy is only for a redelivery, which drop_on_loss never makes: no allocation
         * per publish for the relay */
        uint8_t *copy = NULL;
        if (!m->o.drop_on_loss) {
            if (!(copy = malloc(size)))
                return -ENOMEM;
            memcpy(copy, m->wbuf.p + m->wbuf.len, size);
        }
        uint32_t s = m->free_slots[--m->n_free];
        m->outs[s] = (out_msg){.state = OUT_SENT,
                               .qos = (uint8_t)qos,
                               .id = id,
                               .seq = m->out_seq++,
                               .ctx = ctx,
                               .pkt = copy,
                               .len = size};
        m->slot_of[id] = s;
        m->n_out++;
        if (qos == 2)
            m->qos2_out++;
    }
    m->wbuf.len += size;
    m->tx_queued += size;
    if (qos == 0 && ctx)
        mqttc_q0_push(m, ctx);
    return 0;
}

unsigned mqttc_send_window(const mqttc *m)
{
    return m->window;
}

size_t mqttc_inflight(const mqttc *m)
{
    return m->n_out;
}
