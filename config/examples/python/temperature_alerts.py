"""Temperature alerts: the Python framework's alert callback, run by mqttflow's workers.

alert_if_high(msg): the payload is a number ("31.5") or a JSON object with "temperature" or
"temp". Above the threshold (the step's `threshold` parameter when run as a chain step, else
30) it emits a JSON alert on "alerts/temperature" (published on the rule's source client).
A payload without a temperature is logged and ignored (raising would count every malformed
sensor reading as a callback failure). Its output is byte for byte the C example's.
"""
import json

import mqttflow


def read_temperature(msg):
    """The temperature of a message, or None."""
    try:
        v = msg.json()
    except ValueError:
        return None
    if isinstance(v, dict):
        v = v.get("temperature", v.get("temp"))
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    return None


def alert_if_high(msg):
    threshold = float(mqttflow.param("threshold") or 30)
    t = read_temperature(msg)
    if t is None:
        mqttflow.log("WARNING", "no temperature in message on %s" % msg.topic)
        return
    if t <= threshold:
        return
    mqttflow.log("WARNING", "high temperature %g > %g on %s" % (t, threshold, msg.topic))
    alert = '{"alert":"high_temperature","temperature":%g,"threshold":%g,"topic":%s,' \
            '"client_id":%s}' % (t, threshold, json.dumps(msg.topic), json.dumps(msg.client_id))
    mqttflow.emit("alerts/temperature", alert)
