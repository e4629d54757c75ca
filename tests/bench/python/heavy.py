"""Bench: a CPU-heavy Python callback, about 200 us of pure Python per message (the loop count
comes from the step's `loops` parameter, calibrated by tests/bench/python.sh), then forwards
in/<rest> -> out/<rest>."""
import mqttflow
from benchwork import work


def forward_heavy(msg):
    work(int(mqttflow.param("loops")))
    mqttflow.emit("out/" + msg.topic[3:], msg.payload)
