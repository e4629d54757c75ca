/* subscriber: the ingress's broker connection (paho.mqtt.c MQTTAsync): connect, subscribe to
 * every configured topic, reconnect with backoff, resubscribe, disconnect on stop.
 *
 * MQTT 3.1.1 (default) or 5 (mqtt_version: 5). With MQTT 5, clean_session maps to clean start
 * and clean_session: false also sets a session expiry of "never", so the broker keeps the
 * session across our disconnects as a 3.1.1 persistent session would. TLS (mqtts://, ssl://,
 * `tls:`) through common/mqtt_tls (the build links paho's TLS library, libpaho-mqtt3as).
 *
 * MQTT client id: the configured client_id, except with shared_group, where it is
 * "<client_id>-<runtime.instance>": instances that split one group run the same file with
 * different instance names, and a broker allows one session per client id, so with equal ids
 * each instance's connect would kick the other off (a takeover loop). Without shared_group
 * the id stays exactly as configured (a persistent session and broker ACLs depend on it).
 *
 * Threads: the ingress's main thread calls every function here; paho's receive thread calls
 * the message function given to subscriber_create, one message at a time, and the
 * subscriber's internal connection callbacks. Connection state moves under a mutex; the main
 * thread sleeps in subscriber_poll until an event or its timeout, and makes the reconnect
 * attempts itself (paho's own automatic reconnect counts in whole seconds and would not honour
 * reconnect.min_delay below 1 s).
 *
 * Messages: the message function must have stored the message (ring, or the ingress spool)
 * before it returns, because paho sends the QoS 1 PUBACK when it returns (BASELINES pitfall
 * 2). Whatever it returns, the message is then acknowledged.
 *
 * When paho acknowledges (paho.mqtt.c 1.3.12 as linked; tests/ingress/test_paho_ack.c checks
 * it against a real mosquitto's packet log): MQTTProtocol_handlePublishes calls
 * Protocol_processPublication, which calls messageArrived synchronously on the receive
 * thread, and only then sends the PUBACK (or queues it behind pending socket writes, which
 * only delays it). Measured: a message function that stays 3 s inside the call, the broker
 * logs the PUBACK 3 s after the PUBLISH. Paths that would acknowledge a message living only
 * in paho's memory, and why none is taken here:
 *   - messageArrived returning 0: paho parks the message in its messageQueue and sends the
 *     PUBACK all the same (measured by test_paho_ack); a crash then loses it. We always
 *     return 1, after the message is stored.
 *   - messageQueue non-empty or the client not marked connected when a PUBLISH arrives:
 *     paho queues it without calling messageArrived and acknowledges it. The queue only
 *     fills through a 0 return (never), and paho marks the client connected while handling
 *     the CONNACK, before any PUBLISH of the session is read on that socket (reasoned from
 *     the source, not measured).
 *   - QoS 2 (not covered by this guarantee): paho stores the message in its memory on
 *     PUBLISH and answers PUBREC; a crash before delivery loses it. Subscribe with QoS 1.
 *   - Older paho releases (the 1.3.0-era MQTTProtocolClient.c) sent the QoS 1 PUBACK
 *     *before* messageArrived ("send puback before processing the publications"): a build
 *     against such a paho has a one-message window per crash; test_paho_ack fails there.
 *
 * Blocking in the message function stops paho's receive thread, which is also the thread
 * that sends keepalive PINGREQs and PUBACKs: a block longer than 1.5 x keepalive made the
 * broker close the connection, and with clean_session it then discarded what it had not
 * delivered (measured before issue 4: mosquitto 2.0.11, keepalive 2 s, 8 KiB ring left full
 * for 8 s, 1000 QoS 1 messages: dropped after 3 s, 935 lost). The ingress therefore never
 * blocks long: a full ring is waited for at most min(100 ms, keepalive / 4), then the message
 * goes to the ingress's disk spool (fsync'd before the function returns) and the spool
 * drains into the ring in order (ingress/intake.h). Only when the spool refuses (its cap, or
 * a disk error) does the function block as before.
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
#include "stats.h"

typedef struct subscriber subscriber;

/* Pause (issue 8; DESIGN §2 "past that it disconnects cleanly with its persistent session
 * kept"): when the message function returns SUBSCRIBER_MSG_REFUSED (it could not store the
 * message within half the keepalive: ring and spool full), the subscriber cuts the connection
 * before paho can acknowledge that message: on plain TCP it writes a DISCONNECT itself and
 * shuts the socket down (on TLS/WebSocket only the shutdown), so the broker keeps the
 * persistent session, queues what arrives and sends the unacknowledged message again. No
 * reconnect is made until subscriber_resume (the ingress calls it once intake_has_room).
 * Every message paho hands over while the cut is under way is ignored (it cannot be
 * acknowledged any more). A persistent session the broker no longer has on a reconnect
 * (CONNACK session present 0 after an earlier session) is logged as lost, with how the last
 * connection ended.
 */
enum { SUBSCRIBER_MSG_REFUSED = 2 };

/* The two lines of the Pause above, shared by both connection kinds (sub_ops.h) so an
 * operator reads one text: the pause itself (with a clean session: what the broker discards)
 * and a persistent session found missing on a reconnect (cause: how the last connection
 * ended, NULL or "" for none). Cannot fail. */
void subscriber_log_pause(const char *mqtt_id, const char *uri, bool clean_session);
void subscriber_log_session_lost(const char *mqtt_id, const char *uri, const char *cause,
                                 double down_s);

/* Lost sessions across restarts of the ingress (issue 8): a process that starts knows nothing
 * of its predecessor's session, so the fact "a persistent session of this client id with
 * this broker existed" is kept in the ingress's stats slot, which the supervisor keeps over
 * respawns (stats.h): extra[STATS_I_SESSION] holds a hash of broker URI and client id
 * (0 = none; a hash, so a slot given to another client after a configuration change does not
 * count), extra[STATS_I_SESSIONS_LOST] counts the lost sessions (`status`, /metrics
 * mqttflow_stage_sessions_lost_total). The slot lives
 * as long as the supervisor's stats segment: a session lost while the whole instance was
 * stopped is not seen (the next run's first connect finds none, as on a first start). */

/* At every accepted CONNACK, by both kinds: a persistent session (clean_session false) that
 * the broker says it does not have (session_present false) while one existed, in this process
 * (ever_here) or in an earlier one (the slot), is logged with subscriber_log_session_lost
 * (cause and down_s as there; down_s < 0: unknown) and counted; then the slot records the
 * session (or its absence, for a clean session). slot may be NULL (only ever_here counts).
 * true when the session was lost. Single writer: the thread that handles CONNACKs. */
bool subscriber_session_check(stats_slot *slot, const char *mqtt_id, const char *uri,
                              bool clean_session, bool session_present, bool ever_here,
                              const char *cause, double down_s);

/* Called on paho's receive thread for each message; topic is not NUL-terminated. Returns
 * SUBSCRIBER_MSG_REFUSED when the message was not stored (see Pause); any other value: the
 * message is acknowledged. */
typedef int (*subscriber_msg_fn)(void *arg, const char *topic, size_t topic_len,
                                 const void *payload, size_t payload_len, int qos, int retain);

/* Prepares a client for c (borrowed: must outlive the subscriber) of instance `instance`
 * (runtime.instance; only read here), MQTT client id as described above. 0 and *out; -EINVAL
 * when c has no topics, paho refuses the URI or the TLS options cannot be built; -ENOMEM.
 * Nothing is connected yet. */
int subscriber_create(const cfg_client *c, const char *instance, subscriber_msg_fn fn, void *arg,
                      subscriber **out);
/* The ingress's stats slot for subscriber_session_check (NULL: none); before subscriber_start. */
void subscriber_set_stats(subscriber *s, stats_slot *slot);
/* Starts the first connection attempt (asynchronous). 0 or -EIO when paho refused the call
 * (then subscriber_poll retries after the backoff anyway). */
int subscriber_start(subscriber *s);
/* Sleeps until a connection event or timeout_ms, then makes a due reconnect or resubscribe
 * attempt. Never fails: failures are logged and retried with backoff. */
void subscriber_poll(subscriber *s, int timeout_ms);
/* Connected and every subscription acknowledged by the broker. */
bool subscriber_is_ready(const subscriber *s);
bool subscriber_is_connected(const subscriber *s);
/* A connection was made once, or the first attempt failed (the stage is up either way). */
bool subscriber_first_attempt_done(const subscriber *s);
/* Paused after a refused message (see Pause), until subscriber_resume. */
bool subscriber_is_paused(const subscriber *s);
/* Main thread: ends a pause; the next subscriber_poll connects. Cannot fail. */
void subscriber_resume(subscriber *s);
/* Disconnects cleanly (no new message function call starts once it returned 0; one already
 * running, blocked on a full ring, finishes) and stops reconnecting. Waits
 * up to timeout_ms for the broker's side; 0, or -ETIMEDOUT (the connection is dropped
 * anyway when the subscriber is destroyed). */
int subscriber_stop(subscriber *s, int timeout_ms);
/* Frees paho's client; waits for a message function still running. Accepts NULL. */
void subscriber_destroy(subscriber *s);

#endif
