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
# BENCH_CB=MODULE:FUNCTION (the Python bench, tests/bench/python/pipeline_cmd.sh): one
# custom_processor step calling it (BENCH_LOOPS: its `loops` parameter, default 0) instead of
# the format step; BENCH_MODE: the rule's execution mode (default per_topic); BENCH_RUNTIME:
# one more runtime key (e.g. "cpus: {...}", to measure a pinning)
callbacks="" step="    - step: \"format\"
      config: { topic_template: \"${HARNESS_OUT_PREFIX:-out/}{topic[1]}\" }"
if [[ -n ${BENCH_CB:-} ]]; then
    callbacks="callbacks: {cb: {module: \"${BENCH_CB%:*}\", function: \"${BENCH_CB##*:}\"}}"
    step="    - step: \"custom_processor\"
      config: { callback: \"cb\", loops: \"${BENCH_LOOPS:-0}\" }"
fi
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
$callbacks
rules:
  - rule: "bench_relay"
    topic: "${HARNESS_IN_FILTER:-in/#}"
    action: "to_out"
    execution_mode: "${BENCH_MODE:-per_topic}"
processing_chains:
  to_out:
$step
runtime:
  instance: "bench$$"
  workers: $WORKERS
  spool_dir: "$dir/spool"        # never the service's state folder (/var/lib/mqttflow as root)
  dead_letter: {dir: "$dir/dead"}
${BENCH_RUNTIME:+  $BENCH_RUNTIME}
logging:
  default_level: "WARNING"
YAML
# not exec: the trap removes the temp config after the supervisor exits
"$BUILD/bin/mqttflow" run "$dir/bench.yaml"
