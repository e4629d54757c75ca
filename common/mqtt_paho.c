/* mqtt_paho: see mqtt_paho.h. */
#include "mqtt_paho.h"

#include <stdio.h>
#include <string.h>

#include "mqtt_why.h"

/* the three option types name their callback fields alike */
#define SET_CBS(o, v5, cb, ctx)                                                                    \
    do {                                                                                           \
        if (v5) {                                                                                  \
            (o)->onSuccess5 = (cb)->ok5;                                                           \
            (o)->onFailure5 = (cb)->fail5;                                                         \
        } else {                                                                                   \
            (o)->onSuccess = (cb)->ok;                                                             \
            (o)->onFailure = (cb)->fail;                                                           \
        }                                                                                          \
        (o)->context = (ctx);                                                                      \
    } while (0)

void mqtt_paho_response(MQTTAsync_responseOptions *o, bool v5, const mqtt_paho_cbs *cb, void *ctx)
{
    SET_CBS(o, v5, cb, ctx);
}

void mqtt_paho_connect(MQTTAsync_connectOptions *o, bool v5, const mqtt_paho_cbs *cb, void *ctx)
{
    SET_CBS(o, v5, cb, ctx);
}

void mqtt_paho_disconnect(MQTTAsync_disconnectOptions *o, bool v5, const mqtt_paho_cbs *cb,
                          void *ctx)
{
    SET_CBS(o, v5, cb, ctx);
}

static void set_message(mqtt_why_fail *f, const char *m)
{
    snprintf(f->message, sizeof(f->message), "%s", m ? m : "");
}

void mqtt_paho_failure(mqtt_why_fail *f, const MQTTAsync_failureData *d)
{
    f->code = d && d->code ? d->code : MQTTASYNC_FAILURE;
    f->reason = 0;
    set_message(f, d ? d->message : NULL);
}

void mqtt_paho_failure5(mqtt_why_fail *f, const MQTTAsync_failureData5 *d)
{
    f->code = d && d->code ? d->code : MQTTASYNC_FAILURE;
    f->reason = d ? (int)d->reasonCode : 0;
    /* a refusing CONNACK: paho (1.3) puts the broker's reason code into code ("CONNACK return
     * code"), reasonCode stays 0 */
    if (!f->reason && f->code >= 0x80 && f->code <= 0xFF)
        f->reason = f->code;
    set_message(f, d ? d->message : NULL);
}

const char *mqtt_paho_detail(const mqtt_why_fail *f, char *buf, size_t len)
{
    char reason[24] = "";
    if (f->reason)
        snprintf(reason, sizeof(reason), ", reason 0x%02x", (unsigned)f->reason);
    snprintf(buf, len, "paho rc %d%s%s%s", f->code, reason, f->message[0] ? ": " : "", f->message);
    return buf;
}

const char *mqtt_paho_why_connect(const mqtt_why_fail *f)
{
    return mqtt_why_connect(f->code, f->reason, f->message[0] ? f->message : NULL);
}
