/* mqtt_tls: paho's TLS options for one configured client (DESIGN §3: mqtts:// / ssl:// and
 * `tls: {ca, cert, key, alpn, verify}`), shared by the ingress (ingress/subscriber.c) and the
 * relay (relay/conn.c) so both speak TLS the same way.
 *
 * mqtt_tls_create fills one MQTTAsync_SSLOptions from cfg_client.tls: ca -> trustStore,
 * cert -> keyStore, key -> privateKey, alpn -> protos (TLS wire format, struct_version 5),
 * verify -> enableServerCertAuth (chain) and verify (host name/IP against the certificate),
 * sslVersion left at paho's default (the highest both sides speak). OpenSSL's error lines are
 * logged under the caller's component with the client id (paho's ssl_error_cb).
 * Why a module that allocates: paho reads the options when MQTTAsync_connect is called and,
 * depending on the version, again when its thread opens the socket, so the options, the ALPN
 * buffer and the error context must live as long as the connection, not the connect call.
 *
 * Threads: create/destroy from the owning thread; the error callback runs on paho's thread
 * and only reads immutable fields. The strings stay owned by the cfg tree, which must
 * outlive the mqtt_tls (it does: a stage destroys its cfg last).
 * The URI given to paho must be "ssl://host:port" (cfg_client.uri does that for mqtts://).
 */
#ifndef MF_MQTT_TLS_H
#define MF_MQTT_TLS_H

#include <MQTTAsync.h>

#include "cfg.h"

typedef struct mqtt_tls mqtt_tls;

/* Builds the TLS options of `cl` for log component `comp` (a string literal or other
 * storage that outlives the mqtt_tls). When cl->tls.enabled is false it still succeeds and
 * mqtt_tls_apply does nothing. Returns 0, -ENOMEM, or -EINVAL for an ALPN list that cannot
 * be encoded (the config loader refuses those first); *out is NULL on failure. */
int mqtt_tls_create(const cfg_client *cl, const char *comp, mqtt_tls **out);

/* Points o->ssl at the options when TLS is enabled, else leaves o untouched. Cannot fail.
 * The options stay valid until mqtt_tls_destroy. */
void mqtt_tls_apply(mqtt_tls *t, MQTTAsync_connectOptions *o);

/* Whether the client uses TLS at all. */
int mqtt_tls_is_enabled(const mqtt_tls *t);

/* Accepts NULL. Only after the paho handle it was applied to is destroyed. */
void mqtt_tls_destroy(mqtt_tls *t);

#endif
