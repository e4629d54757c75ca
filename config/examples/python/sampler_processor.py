"""The sampler step's callback: called once per window with the list of its messages.

handle_temperature_sample(msgs): emits {"count", "avg", "min", "max"} of the temperatures it
could read on "sensors/temperature/sample" (the next step gets it). A window with no readable
temperature emits nothing.
"""
import mqttflow
from temperature_alerts import read_temperature


def handle_temperature_sample(msgs):
    temps = [t for t in (read_temperature(m) for m in msgs) if t is not None]
    if not temps:
        mqttflow.log("INFO", "window of %d messages held no temperature" % len(msgs))
        return
    sample = '{"count":%d,"avg":%.3f,"min":%g,"max":%g}' % (
        len(temps), sum(temps) / len(temps), min(temps), max(temps))
    mqttflow.log("DEBUG", "sample: %s" % sample)
    mqttflow.emit("sensors/temperature/sample", sample)
