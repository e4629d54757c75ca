"""Bench: the Python twin of tests/callbacks/forward.c (in/<rest> -> out/<rest>, payload as is).

Written the way a user would: the topic as str, the payload as bytes, nothing clever."""
import mqttflow

IN, OUT = "in/", "out/"


def forward(msg):
    topic = msg.topic
    if topic.startswith(IN):
        topic = topic[len(IN):]
    mqttflow.emit(OUT + topic, msg.payload)
