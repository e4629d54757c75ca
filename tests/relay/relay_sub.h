/* relay_sub: an in-process paho subscriber for the relay tests (relay_fixture.h) that keeps
 * every message it gets (topic, payload, QoS, retained), under a mutex: paho's thread appends,
 * the test reads. Helpers are static inline: each test file uses a different subset.
 */
#ifndef MF_TESTS_RELAY_SUB_H
#define MF_TESTS_RELAY_SUB_H

#include <MQTTAsync.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tools/stage_fixture.h"
#include "clock.h"

typedef struct got {
    char *topic;
    unsigned char *payload;
    int len, qos, retained;
} got;

typedef struct sub {
    MQTTAsync h;
    pthread_mutex_t mu;
    got *items;
    size_t n, cap;
    int connected, subscribed, failed;
    const char *filter;
} sub;

static inline int sub_arrived(void *ctx, char *topic, int tlen, MQTTAsync_message *m)
{
    sub *s = ctx;
    (void)tlen;
    pthread_mutex_lock(&s->mu);
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        got *it = realloc(s->items, cap * sizeof(*it));
        if (it) {
            s->items = it;
            s->cap = cap;
        }
    }
    if (s->n < s->cap) {
        got *g = &s->items[s->n++];
        g->topic = strdup(topic);
        g->payload = malloc((size_t)m->payloadlen + 1);
        if (g->payload)
            memcpy(g->payload, m->payload, (size_t)m->payloadlen);
        g->len = m->payloadlen;
        g->qos = m->qos;
        g->retained = m->retained;
    }
    pthread_mutex_unlock(&s->mu);
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

static inline void sub_on_subscribed(void *ctx, MQTTAsync_successData *d)
{
    sub *s = ctx;
    pthread_mutex_lock(&s->mu);
    if (d && d->alt.qos == 0x80)
        s->failed = 1;
    else
        s->subscribed = 1;
    pthread_mutex_unlock(&s->mu);
}

static inline void sub_on_fail(void *ctx, MQTTAsync_failureData *d)
{
    sub *s = ctx;
    (void)d;
    pthread_mutex_lock(&s->mu);
    s->failed = 1;
    pthread_mutex_unlock(&s->mu);
}

static inline void sub_on_connected(void *ctx, MQTTAsync_successData *d)
{
    sub *s = ctx;
    (void)d;
    pthread_mutex_lock(&s->mu);
    s->connected = 1;
    pthread_mutex_unlock(&s->mu);
}

static inline int sub_flag(sub *s, int *flag)
{
    pthread_mutex_lock(&s->mu);
    int v = *flag || s->failed;
    pthread_mutex_unlock(&s->mu);
    return v;
}

static inline size_t sub_count(sub *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->n;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* Waits until *flag (or failure) with a deadline; 0 when *flag became true. */
static inline int sub_wait(sub *s, int *flag, int timeout_ms)
{
    uint64_t end = clock_mono_ns() + (uint64_t)timeout_ms * 1000000ull;
    while (!sub_flag(s, flag) && clock_mono_ns() < end)
        sleep_ms(5);
    pthread_mutex_lock(&s->mu);
    int ok = *flag && !s->failed;
    pthread_mutex_unlock(&s->mu);
    return ok ? 0 : -1;
}

/* Connects and subscribes filter at QoS 1. clean = 0 keeps the session on the broker (and
 * paho reconnects by itself), so messages published while it is away are kept for it. */
static inline int sub_open(sub *s, int port, const char *id, int clean, const char *filter)
{
    char uri[64];
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    s->filter = filter;
    snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%d", port);
    if (MQTTAsync_create(&s->h, uri, id, MQTTCLIENT_PERSISTENCE_NONE, NULL) != MQTTASYNC_SUCCESS)
        return -1;
    MQTTAsync_setCallbacks(s->h, s, NULL, sub_arrived, NULL);
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
    co.cleansession = clean;
    co.keepAliveInterval = 20;
    co.automaticReconnect = !clean;
    co.minRetryInterval = 1;
    co.maxRetryInterval = 1;
    co.onSuccess = sub_on_connected;
    co.onFailure = sub_on_fail;
    co.context = s;
    if (MQTTAsync_connect(s->h, &co) != MQTTASYNC_SUCCESS || sub_wait(s, &s->connected, 10000))
        return -1;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.onSuccess = sub_on_subscribed;
    ro.onFailure = sub_on_fail;
    ro.context = s;
    if (MQTTAsync_subscribe(s->h, filter, 1, &ro) != MQTTASYNC_SUCCESS ||
        sub_wait(s, &s->subscribed, 10000))
        return -1;
    return 0;
}

static inline void sub_close(sub *s)
{
    if (!s->h)
        return;
    MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
    d.timeout = 100;
    MQTTAsync_disconnect(s->h, &d);
    sleep_ms(20); /* let paho's disconnect command run before the handle goes */
    MQTTAsync_destroy(&s->h);
    for (size_t i = 0; i < s->n; i++) {
        free(s->items[i].topic);
        free(s->items[i].payload);
    }
    free(s->items);
    pthread_mutex_destroy(&s->mu);
    memset(s, 0, sizeof(*s));
}

/* Waits until the subscriber holds at least n messages; returns how many it holds. */
static inline size_t sub_wait_count(sub *s, size_t n, int timeout_ms)
{
    uint64_t end = clock_mono_ns() + (uint64_t)timeout_ms * 1000000ull;
    size_t have;
    while ((have = sub_count(s)) < n && clock_mono_ns() < end)
        sleep_ms(10);
    return have;
}

#endif
