/* mqtt_paho: what the ingress (ingress/subscriber.c) and the relay (relay/conn.c) both do with
 * paho MQTTAsync, written once: give a request the callbacks of the client's protocol version,
 * and read why paho says a request failed.
 *
 * paho calls the *5 callbacks of a request on an MQTT 5 client and the others on a 3.1.1
 * client; a request given the wrong pair completes silently. A failure comes as a return code
 * (3.1.1 CONNACK code 1..5, or a negative MQTTASYNC_* code), on MQTT 5 with the broker's
 * reason code, and with paho's message (e.g. "TCP/TLS connect failure", "connect timeout"),
 * which mqtt_why turns into words an operator can act on. mqtt_why_fail keeps all three in one
 * value that can be copied between threads (the relay hands it from paho's thread to its main
 * loop, relay/cq.h).
 *
 * Pure, no allocation; the paho calls stay with the callers. Thread-safe.
 */
#ifndef MF_MQTT_PAHO_H
#define MF_MQTT_PAHO_H

#include <MQTTAsync.h>
#include <stdbool.h>
#include <stddef.h>

/* The callbacks of one request for either protocol version (NULL: none). */
typedef struct mqtt_paho_cbs {
    MQTTAsync_onSuccess *ok;
    MQTTAsync_onFailure *fail;
    MQTTAsync_onSuccess5 *ok5;
    MQTTAsync_onFailure5 *fail5;
} mqtt_paho_cbs;

/* Sets the pair of cb that a v5 (true) or 3.1.1 client calls, and the context. */
void mqtt_paho_response(MQTTAsync_responseOptions *o, bool v5, const mqtt_paho_cbs *cb, void *ctx);
void mqtt_paho_connect(MQTTAsync_connectOptions *o, bool v5, const mqtt_paho_cbs *cb, void *ctx);
void mqtt_paho_disconnect(MQTTAsync_disconnectOptions *o, bool v5, const mqtt_paho_cbs *cb,
                          void *ctx);

/* Why a request failed or a connection ended: paho's code (0 = none), the MQTT 5 reason code
 * (0 = none) and paho's message ("" = none; truncated). */
typedef struct mqtt_why_fail {
    int code;
    int reason;
    char message[120];
} mqtt_why_fail;

/* From onFailure / onFailure5's data (d may be NULL: paho's generic failure). */
void mqtt_paho_failure(mqtt_why_fail *f, const MQTTAsync_failureData *d);
void mqtt_paho_failure5(mqtt_why_fail *f, const MQTTAsync_failureData5 *d);
/* "paho rc N[, reason 0xNN][: message]" into buf (the details behind mqtt_why_connect's
 * sentence, for the log line); returns buf. */
const char *mqtt_paho_detail(const mqtt_why_fail *f, char *buf, size_t len);
/* mqtt_why_connect of f: what happened and what to do. */
const char *mqtt_paho_why_connect(const mqtt_why_fail *f);

#endif
