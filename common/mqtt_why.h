/* mqtt_why: what a broker's refusal or a lost connection means, in words an operator can act
 * on (issue 8 "Clearer errors"). paho reports a refused CONNECT as a bare number ("paho code
 * 5") and a lost connection mostly without a cause; the ingress and the relay log these
 * sentences instead, so both say the same thing for the same event.
 *
 * Pure functions over constant tables: thread-safe, cannot fail, no allocation. The strings
 * returned are static.
 */
#ifndef MF_MQTT_WHY_H
#define MF_MQTT_WHY_H

/* A code for mqtt_why_connect where only a number can travel (the relay's completion queue):
 * paho said "connect timeout" (no CONNACK) */
#define MQTT_WHY_NO_CONNACK (-1000)
/* paho's failure (code, message) as one number: MQTT_WHY_NO_CONNACK or code */
int mqtt_why_code(int code, const char *message);

/* A failed connect as paho reports it to onFailure/onFailure5: code (3.1.1: the CONNACK
 * return code 1..5, or a negative MQTTASYNC_* code), reason (MQTT 5 reason code, 0 when
 * none) and paho's message (may be NULL). Returns "what happened; what to do". */
const char *mqtt_why_connect(int code, int reason, const char *message);
/* A connection lost without a reason from the broker (3.1.1, or paho giving no cause).
 * up_s: how long the connection had been up; repeats: how many connections in a row ended
 * within a few seconds of their connect. */
const char *mqtt_why_lost(double up_s, unsigned repeats);
/* An MQTT 5 DISCONNECT reason code from the broker. */
const char *mqtt_why_disconnect_reason(int reason);

#endif
