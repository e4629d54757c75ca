#!/usr/bin/env bash
# PIPELINE_CMD of the Python bench (tests/bench/python.sh): mqttflow relaying in/# -> out/#
# through one callback step, as ../shared/bench's contract asks (tests/bench/pipeline_cmd.sh
# does the same with a format step). Environment:
#   BENCH_CB      MODULE:FUNCTION of the callback (a .so or .py path, absolute)
#   BENCH_WORKERS workers (default 1); BENCH_MODE execution mode (default per_topic)
#   BENCH_LOOPS   the `loops` parameter of the step (heavy.py), default 0
set -eu
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
dir=$(mktemp -d /tmp/mqttflow-pybench.XXXXXX)
trap 'rm -rf "$dir"' EXIT
cat >"$dir/bench.yaml" <<YAML
mqtt_clients:
  - client_id: "mqttflow-pybench-$$"
    broker_url: "mqtt://${MQTT_HOST:-127.0.0.1}"
    port: ${MQTT_PORT:-18830}
    topics:
      - name: "${HARNESS_IN_FILTER:-in/#}"
        qos: ${HARNESS_QOS:-0}
callbacks:
  cb: {module: "${BENCH_CB%:*}", function: "${BENCH_CB##*:}"}
rules:
  - rule: "bench"
    topic: "${HARNESS_IN_FILTER:-in/#}"
    action: "step"
    execution_mode: "${BENCH_MODE:-per_topic}"
processing_chains:
  step:
    - step: "custom_processor"
      config: { callback: "cb", loops: "${BENCH_LOOPS:-0}" }
runtime:
  instance: "pyb$$"
  workers: ${BENCH_WORKERS:-1}
logging:
  default_level: "WARNING"
YAML
"$BUILD/bin/mqttflow" run "$dir/bench.yaml"
