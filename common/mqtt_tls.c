/* mqtt_tls: paho's TLS options for one configured client; see mqtt_tls.h. */
#include "mqtt_tls.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct mqtt_tls {
    MQTTAsync_SSLOptions ssl;
    const char *comp;      /* log component of the owner */
    const char *client_id; /* owned by the cfg tree */
    int enabled;
    unsigned char *protos; /* ALPN wire format: each name prefixed by its length byte */
};

/* paho's thread, from ERR_print_errors_cb: one OpenSSL error line (ends in '\n') per call */
static int on_ssl_error(const char *str, size_t len, void *u)
{
    const mqtt_tls *t = u;
    while (len > 0 && (str[len - 1] == '\n' || str[len - 1] == '\r'))
        len--;
    log_warn(t->comp, "client %s: TLS: %.*s", t->client_id, (int)(len > 4000 ? 4000 : len), str);
    return 0;
}

/* "a,b" -> "\1a\1b"; every name 1..255 bytes. Returns the wire length, or 0 if malformed. */
static unsigned encode_alpn(const char *list, unsigned char *out)
{
    unsigned n = 0;
    const char *start = list;
    for (const char *q = list;; q++) {
        if (*q != ',' && *q)
            continue;
        size_t len = (size_t)(q - start);
        if (len == 0 || len > 255)
            return 0;
        out[n++] = (unsigned char)len;
        memcpy(out + n, start, len);
        n += (unsigned)len;
        if (!*q)
            break;
        start = q + 1;
    }
    return n;
}

int mqtt_tls_create(const cfg_client *cl, const char *comp, mqtt_tls **out)
{
    int err = 0;
    *out = NULL;
    mqtt_tls *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    MQTTAsync_SSLOptions init = MQTTAsync_SSLOptions_initializer;
    t->ssl = init;
    t->comp = comp;
    t->client_id = cl->client_id;
    t->enabled = cl->tls.enabled;
    if (!t->enabled)
        goto done;
    /* version 5: protos/protos_len exist (paho 1.3.11's header); the initializer says 5 too,
     * but stating it keeps the fields below valid if the initializer ever changes */
    t->ssl.struct_version = 5;
    t->ssl.trustStore = cl->tls.ca;
    t->ssl.keyStore = cl->tls.cert;
    t->ssl.privateKey = cl->tls.key;
    /* verify: false is for test brokers with self-made certificates; it switches off both the
     * chain check and the host name check, as the Python framework's tls_insecure did */
    t->ssl.enableServerCertAuth = cl->tls.verify;
    t->ssl.verify = cl->tls.verify;
    t->ssl.sslVersion = MQTT_SSL_VERSION_DEFAULT;
    t->ssl.ssl_error_cb = on_ssl_error;
    t->ssl.ssl_error_context = t;
    if (cl->tls.alpn && *cl->tls.alpn) {
        /* one length byte replaces each comma, plus one at the front */
        t->protos = malloc(strlen(cl->tls.alpn) + 1);
        if (!t->protos) {
            err = -ENOMEM;
            goto err_free;
        }
        unsigned n = encode_alpn(cl->tls.alpn, t->protos);
        if (n == 0) {
            log_error(comp, "client %s: tls.alpn \"%s\" is not a list of 1..255-byte names",
                      cl->client_id, cl->tls.alpn);
            err = -EINVAL;
            goto err_free;
        }
        t->ssl.protos = t->protos;
        t->ssl.protos_len = n;
    }
done:
    *out = t;
    return 0;

err_free:
    free(t->protos);
    free(t);
    return err;
}

void mqtt_tls_apply(mqtt_tls *t, MQTTAsync_connectOptions *o)
{
    if (t && t->enabled)
        o->ssl = &t->ssl;
}

int mqtt_tls_is_enabled(const mqtt_tls *t)
{
    return t && t->enabled;
}

void mqtt_tls_destroy(mqtt_tls *t)
{
    if (!t)
        return;
    free(t->protos);
    free(t);
}
