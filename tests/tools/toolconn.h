/* toolconn: what the MQTT test tools (mfpub, mfsub) do alike before their own work: the
 * connection options -H host, -p port, -c client_id and -u user:password, the topics (-t, one
 * an option) and the QoS (-q), the broker URI, a
 * default client id "<tool>-<pid>", the paho client and the credentials of its connect, and
 * the tool's condition variable (a timed wait, a flag set from paho's callbacks).
 * Header-only, like testlib.h.
 */
#ifndef MF_TESTS_TOOLCONN_H
#define MF_TESTS_TOOLCONN_H

#include <MQTTAsync.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct toolconn {
    const char *tool; /* "mfpub": messages and the default client id */
    const char *host;
    int port;
    const char *cid;
    char *user, *password; /* -u user:password, split by toolconn_finish */
    const char **topics;   /* -t, in the tool's array of max_topics */
    size_t n_topics, max_topics;
    int qos; /* -q */
    char uri[300];
    char idbuf[64];
} toolconn;

/* topics_array: the tool's array of -t values (its size is the limit) */
#define TOOLCONN_INIT(name, topics_array)                                                          \
    {                                                                                              \
        .tool = (name), .host = "127.0.0.1", .port = 1883, .topics = (topics_array),               \
        .max_topics = sizeof(topics_array) / sizeof((topics_array)[0])                             \
    }

/* Takes opt when it is one of the options above: 1, 0 when it is not (the tool's own option
 * or a usage error), -1 after saying why when its value is refused. */
static inline int toolconn_opt(toolconn *tc, int opt, char *arg)
{
    switch (opt) {
    case 'H':
        tc->host = arg;
        return 1;
    case 'p':
        tc->port = atoi(arg);
        return 1;
    case 'c':
        tc->cid = arg;
        return 1;
    case 'u': /* user:password */
        tc->user = arg;
        return 1;
    case 't':
        if (tc->n_topics == tc->max_topics) {
            fprintf(stderr, "%s: too many -t (at most %zu)\n", tc->tool, tc->max_topics);
            return -1;
        }
        tc->topics[tc->n_topics++] = arg;
        return 1;
    case 'q':
        tc->qos = atoi(arg);
        return 1;
    default:
        return 0;
    }
}

/* After the options: the URI, the default client id, the password split off -u. */
static inline void toolconn_finish(toolconn *tc)
{
    snprintf(tc->uri, sizeof(tc->uri), "tcp://%s:%d", tc->host, tc->port);
    if (!tc->cid) {
        snprintf(tc->idbuf, sizeof(tc->idbuf), "%s-%d", tc->tool, (int)getpid());
        tc->cid = tc->idbuf;
    }
    tc->password = tc->user ? strchr(tc->user, ':') : NULL;
    if (tc->password)
        *tc->password++ = 0;
}

/* The paho client, without persistence. Plain MQTTAsync_create: createWithOptions' default
 * maxBufferedMessages=100 also caps queued publishes while connected (BASELINES pitfall 3).
 * 0, or -1 after saying why. */
static inline int toolconn_create(const toolconn *tc, MQTTAsync *c)
{
    if (MQTTAsync_create(c, tc->uri, tc->cid, MQTTCLIENT_PERSISTENCE_NONE, NULL) !=
        MQTTASYNC_SUCCESS) {
        fprintf(stderr, "%s: MQTTAsync_create(%s) failed\n", tc->tool, tc->uri);
        return -1;
    }
    return 0;
}

/* Connect options with the credentials and a 5 s connect timeout; the tool sets the rest. */
static inline MQTTAsync_connectOptions toolconn_options(const toolconn *tc)
{
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
    co.username = tc->user;
    co.password = tc->password;
    co.connectTimeout = 5;
    return co;
}

/* pthread_cond_timedwait for at most ms (mu held). */
static inline void toolconn_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += (long)ms * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(cv, mu, &ts);
}

/* *flag = 1 under mu, and every waiter on cv wakes (paho's callbacks report this way). */
static inline void toolconn_set_flag(pthread_mutex_t *mu, pthread_cond_t *cv, int *flag)
{
    pthread_mutex_lock(mu);
    *flag = 1;
    pthread_cond_broadcast(cv);
    pthread_mutex_unlock(mu);
}

#endif
