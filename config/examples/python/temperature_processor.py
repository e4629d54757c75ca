"""The custom_processor step's callback: one message (a window's sample) at a time.

handle_processed_temperature(msg): adds "processed_at" (the message's received time, ns since
the epoch) to a JSON object payload, and passes anything else on unchanged.
"""
import mqttflow


def handle_processed_temperature(msg):
    text = msg.payload.rstrip(b" \r\n")
    if len(text) < 2 or not text.startswith(b"{") or not text.endswith(b"}"):
        mqttflow.emit(msg.topic, msg.payload)
        return
    sep = b"," if len(text) > 2 else b""
    mqttflow.emit(msg.topic, text[:-1] + sep + b'"processed_at":%d}' % msg.received_ns)
