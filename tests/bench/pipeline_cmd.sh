#!/usr/bin/env bash
# PIPELINE_CMD for ../shared/bench/run.sh: runs mqttflow as the relay under test.
# Contract (shared/bench/README.md): subscribe to in/# on $MQTT_HOST:$MQTT_PORT at $HARNESS_QOS
# and republish every payload unchanged to out/<rest of topic> at $HARNESS_QOS.
# A per_topic rule keeps each topic's order (the sink counts reordering); the harness uses
# one topic per run, so one worker carries a run and the other stages run beside it.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
WORKERS=${BENCH_WORKERS:-1}
dir=$(mktemp -d /tmp/mqttflow-bench.XXXXXX)
trap 'rm -rf "$dir"' EXIT
cat >"$dir/bench.yaml" <<YAML
mqtt_clients:
  - client_id: "mqttflow-bench-$$"
    broker_url: "mqtt://${MQTT_HOST:-127.0.0.1}"
    port: ${MQTT_PORT:-18830}
    topics:
      - name: "${HARNESS_IN_FILTER:-in/#}"
        qos: ${HARNESS_QOS:-0}
rules:
  - rule: "bench_relay"
    topic: "${HARNESS_IN_FILTER:-in/#}"
    action: "to_out"
    execution_mode: "per_topic"
processing_chains:
  to_out:
    - step: "format"
      config: { topic_template: "${HARNESS_OUT_PREFIX:-out/}{topic[1]}" }
runtime:
  instance: "bench$$"
  workers: $WORKERS
  spool_dir: "$dir/spool"        # never the service's state folder (/var/lib/mqttflow as root)
  dead_letter: {dir: "$dir/dead"}
logging:
  default_level: "WARNING"
YAML
# not exec: the trap removes the temp config after the supervisor exits
"$BUILD/bin/mqttflow" run "$dir/bench.yaml"
