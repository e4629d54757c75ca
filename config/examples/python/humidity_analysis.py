"""Humidity analysis: the Python framework's humidity callback, run by mqttflow's workers.

analyze_humidity(msg): the payload is a number ("45") or a JSON object with "humidity". It is
classified dry (< 30), comfortable (30..60) or humid (> 60), and a JSON analysis is emitted on
"analysis/humidity". A payload without a humidity is logged and ignored.
"""
import mqttflow


def analyze_humidity(msg):
    try:
        v = msg.json()
    except ValueError:
        v = None
    h = v.get("humidity") if isinstance(v, dict) else v
    if not isinstance(h, (int, float)) or isinstance(h, bool):
        mqttflow.log("WARNING", "no humidity in message on %s" % msg.topic)
        return
    cls = "dry" if h < 30 else "humid" if h > 60 else "comfortable"
    mqttflow.log("DEBUG", "humidity %g: %s" % (h, cls))
    mqttflow.emit("analysis/humidity", '{"humidity":%g,"class":"%s"}' % (h, cls))
