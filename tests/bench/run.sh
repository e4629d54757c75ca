#!/usr/bin/env bash
# The `make bench` entry: runs each benchmark in turn, printing markdown tables.
# BUILD selects the build folder (default: build). A benchmark that fails stops the run.
# Keep this a plain sequential list: append new benchmarks below.
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}

echo "## bench_ring ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, kernel $(uname -r))"
"$BUILD"/tests/bench/bench_ring "${BENCH_RING_REPS:-7}"

echo
echo "## bench_rule: rule matching through the topic trie vs a naive loop over the filters"
"$BUILD"/tests/bench/bench_rule

echo
echo "## bench_router: records/s through the real router process"
"$BUILD"/tests/bench/bench_router "${BENCH_ROUTER_RECORDS:-1000000}"

# End to end through the reference harness (../shared/bench), beside its one-process paho relay
# and Node-RED: several minutes. BENCH_PIPELINE=0 skips it.
if [ "${BENCH_PIPELINE:-1}" = 1 ]; then
    echo
    echo "## pipeline: loadgen -> mosquitto -> mqttflow -> mosquitto -> sink (reference harness)"
    BUILD=$BUILD N=${N:-100000} REPS=${REPS:-3} tests/bench/pipeline.sh
fi

# Python callbacks (issue 10): a Python forwarding callback vs the harness's Python relay and
# vs the C callback it twins; a CPU-heavy Python callback on 1 vs 2 workers vs the replaced
# framework's threaded mode. Several minutes. BENCH_PYTHON=0 skips it.
if [ "${BENCH_PYTHON:-1}" = 1 ]; then
    echo
    echo "## python: Python callbacks through the reference harness"
    BUILD=$BUILD tests/bench/python.sh
fi
