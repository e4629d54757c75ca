#!/usr/bin/env bash
# End-to-end benchmark: the reference harness of ../shared/bench (loadgen -> broker -> relay ->
# broker -> sink) with mqttflow as PIPELINE_CMD, measured in the same run as the harness's
# one-process paho relay (relay_c) and, when its node_modules are installed, Node-RED.
# Knobs are the harness's (N, REPS, QOS_LIST, LAT_RATE, LAT_SECS, SCENARIOS, ...).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
SHARED=${SHARED_BENCH:-$ROOT/../shared/bench}
if [ ! -d "$SHARED" ]; then
    echo "pipeline bench: no reference harness at $SHARED (set SHARED_BENCH); skipped"
    exit 0
fi
work=${BENCH_WORK:-/tmp/mqttflow-harness}
mkdir -p "$work"
cp -r "$SHARED/." "$work/"
chmod -R u+w "$work"
make -s -C "$work" >/dev/null
scen=${SCENARIOS:-"relay_c pipeline"}
[ -d "$work/node-red/node_modules" ] && scen=${SCENARIOS:-"relay_c node_red pipeline"}
export BUILD
cd "$work"
SCENARIOS="$scen" PIPELINE_CMD="exec $ROOT/tests/bench/pipeline_cmd.sh" ./run.sh
