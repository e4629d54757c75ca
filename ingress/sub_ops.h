/* sub_ops: the kinds of the ingress's broker connection, one table each (STYLE 22).
 *
 *   paho   ingress/subscriber (paho MQTTAsync, its own threads): every URL scheme.
 *   uring  ingress/sub_uring (common/mqttc on io_uring, on the main thread): mqtt:// and
 *          tcp:// only; about a third of paho's CPU per message (README "MQTT data path").
 *
 * sub_ops_select picks one for a client: runtime.mqtt_io (auto: uring where it can serve the
 * client, paho otherwise; paho: always paho), overridden by MQTTFLOW_MQTT_IO=paho|uring|auto
 * in the environment (tests run one suite through both). Both keep ingress/subscriber.h's
 * guarantees: subscribe to every configured topic after every connect, reconnect with the
 * configured backoff, and acknowledge a message only once it is in the ring or the spool
 * (paho: when the message function returns; uring: after batch_done, which the ingress uses to
 * flush the ring once per received batch).
 *
 * Ingress main thread only. Each table's functions have subscriber.h's contracts.
 */
#ifndef MF_SUB_OPS_H
#define MF_SUB_OPS_H

#include <stdbool.h>

#include "cfg.h"
#include "subscriber.h"

typedef struct sub_cbs {
    subscriber_msg_fn message;     /* one message (paho: on paho's thread; uring: main thread) */
    void (*batch_done)(void *arg); /* uring only: make the messages so far durable */
    unsigned rx_coalesce_us;       /* uring only: runtime.ingress_coalesce_us */
    void *arg;
    stats_slot *slot; /* the ingress's stats slot (subscriber_session_check), may be NULL */
} sub_cbs;

typedef struct sub_ops {
    const char *name;
    bool batches; /* acknowledges after batch_done (the intake may defer its flush) */
    int (*create)(const cfg_client *c, const char *instance, const sub_cbs *cb, void **out);
    int (*start)(void *s);
    void (*poll)(void *s, int timeout_ms);
    bool (*is_ready)(const void *s);
    bool (*is_connected)(const void *s);
    bool (*first_attempt_done)(const void *s); /* a connect attempt has ended, either way */
    bool (*is_paused)(const void *s);          /* cut after a refused message (subscriber.h) */
    void (*resume)(void *s);                   /* may reconnect: the pipeline has room */
    int (*stop)(void *s, int timeout_ms);
    void (*destroy)(void *s);
} sub_ops;

extern const sub_ops sub_ops_paho;
extern const sub_ops sub_uring_ops; /* ingress/sub_uring.c */

/* The kind for client c under conf's runtime.mqtt_io and the environment. Never fails. */
const sub_ops *sub_ops_select(const cfg *conf, const cfg_client *c);

#endif
