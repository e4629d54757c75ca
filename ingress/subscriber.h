/* subscriber: the ingress's broker connection (paho.mqtt.c MQTTAsync): connect, subscribe to
 * every configured topic, reconnect with backoff, resubscribe, disconnect on stop.
 *
 * MQTT 3.1.1 (default) or 5 (mqtt_version: 5). With MQTT 5, clean_session maps to clean start
 * and clean_session: false also sets a session expiry of "never", so the broker keeps the
 * session across our disconnects as a 3.1.1 persistent session would. No TLS yet: the build
 * links the non-TLS paho library (libpaho-mqtt3a); a client with TLS is refused (-ENOTSUP).
 *
 * Threads: the ingress's main thread calls every function here; paho's receive thread calls
 * the message function given to subscriber_create, one message at a time, and the
 * subscriber's internal connection callbacks. Connection state moves under a mutex; the main
 * thread sleeps in subscriber_poll until an event or its timeout, and makes the reconnect
 * attempts itself (paho's own automatic reconnect counts in whole seconds and would not honour
 * reconnect.min_delay below 1 s).
 *
 * Messages: the message function must have written the message where it will not be lost
 * before it returns, because paho sends the QoS 1 PUBACK when it returns (BASELINES
 * pitfall 2). Whatever it returns, the message is then acknowledged and freed.
 *
 * Blocking in the message function (a full ring) stops paho's receive thread, which is also
 * the thread that sends keepalive PINGREQs and PUBACKs. Consequences, accepted for now:
 * the broker stops getting anything from us, its send window to us fills and TCP pushes back
 * (the backpressure we want); if the block lasts longer than 1.5 x keepalive the broker
 * closes the connection. With clean_session the broker then discards what it had not
 * delivered (messages it did deliver are in the ring or waiting in the socket and still get
 * written before paho sees the close); with a persistent session it keeps and redelivers
 * them after our reconnect. Measured (mosquitto 2.0.11, keepalive 2 s, 8 KiB ring left full
 * for 8 s, 1000 QoS 1 messages already PUBACKed to their publisher): the broker dropped us
 * after 3 s ("exceeded timeout"); 65 messages reached the ring, 935 were lost with
 * clean_session. A larger keepalive, clean_session: false, or not blocking paho's thread
 * (issue 4) closes the gap.
 *
 * paho's threads are started with SIGTERM/SIGINT/SIGHUP blocked, so those signals always go
 * to the main thread and never interrupt paho's socket calls.
 *
 * TCP_NODELAY: paho never sets it (BASELINES pitfall 5); after each connect the subscriber
 * finds the process's sockets connected to the broker's port and sets it.
 */
#ifndef MF_SUBSCRIBER_H
#define MF_SUBSCRIBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"

typedef struct subscriber subscriber;

/* Called on paho's receive thread for each message; topic is not NUL-terminated. The return
 * value is ignored (the message is acknowledged either way). */
typedef int (*subscriber_msg_fn)(void *arg, const char *topic, size_t topic_len,
                                 const void *payload, size_t payload_len, int qos, int retain);

/* Prepares a client for c (borrowed: must outlive the subscriber), using c->client_id as the
 * MQTT client id. 0 and *out; -ENOTSUP when the client needs TLS (not built in yet); -EINVAL
 * when c has no topics or paho refuses the URI; -ENOMEM. Nothing is connected yet. */
int subscriber_create(const cfg_client *c, subscriber_msg_fn fn, void *arg, subscriber **out);
/* Starts the first connection attempt (asynchronous). 0 or -EIO when paho refused the call
 * (then subscriber_poll retries after the backoff anyway). */
int subscriber_start(subscriber *s);
/* Sleeps until a connection event or timeout_ms, then makes a due reconnect or resubscribe
 * attempt. Never fails: failures are logged and retried with backoff. */
void subscriber_poll(subscriber *s, int timeout_ms);
/* Connected and every subscription acknowledged by the broker. */
bool subscriber_is_ready(const subscriber *s);
bool subscriber_is_connected(const subscriber *s);
/* Disconnects cleanly (no new message function call starts once it returned 0; one already
 * running, blocked on a full ring, finishes) and stops reconnecting. Waits
 * up to timeout_ms for the broker's side; 0, or -ETIMEDOUT (the connection is dropped
 * anyway when the subscriber is destroyed). */
int subscriber_stop(subscriber *s, int timeout_ms);
/* Frees paho's client; waits for a message function still running. Accepts NULL. */
void subscriber_destroy(subscriber *s);

#endif
