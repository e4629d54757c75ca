#!/usr/bin/python3
"""Bench: the Python framework's `threaded` execution mode, modelled: one paho-mqtt 1.x client,
on_message hands each message to a thread pool (concurrent.futures, the framework's
ThreadPool) that runs the same pure-Python work as heavy.py, then publishes in/<rest> ->
out/<rest>. All threads share one interpreter, so the work is serialised by the GIL.

usage: threaded_relay.py HOST PORT QOS LOOPS [THREADS=4]   (runs until SIGTERM)
"""
import os
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import paho.mqtt.client as mqtt

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchwork import work  # noqa: E402


def main():
    host, port, qos, loops = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    threads = int(sys.argv[5]) if len(sys.argv) > 5 else 4
    pool = ThreadPoolExecutor(max_workers=threads)
    client = mqtt.Client(client_id="threaded-relay-%d" % os.getpid(), clean_session=True)
    client.max_inflight_messages_set(1000)

    def task(topic, payload):
        work(loops)
        client.publish("out/" + topic[3:], payload, qos)

    def on_connect(c, userdata, flags, rc):
        c.subscribe("in/#", qos)

    def on_message(c, userdata, m):
        pool.submit(task, m.topic, m.payload)

    client.on_connect = on_connect
    client.on_message = on_message
    client.connect(host, port, 60)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    client.loop_start()
    stop.wait()
    client.loop_stop()
    pool.shutdown(wait=False, cancel_futures=True)


if __name__ == "__main__":
    main()
