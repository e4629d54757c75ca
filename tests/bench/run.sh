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

echo
echo "## bench_pipeline: msgs/s through the real router and worker (C forwarding callback), no broker"
"$BUILD"/tests/bench/bench_pipeline "${BENCH_PIPELINE_RECORDS:-2000000}" "${BENCH_PIPELINE_ROUNDS:-5}"

# CPU and system calls per message of each stage, full speed and 5,000 msg/s (mosquitto,
# mfpub, mfsub, perf): about 2 minutes. BENCH_STAGES=0 skips it.
if [ "${BENCH_STAGES:-1}" = 1 ]; then
    echo
    echo "## stages: per-stage CPU and system calls per message (mfpub -> mqttflow -> mfsub)"
    BUILD=$BUILD tests/bench/stages.sh 2>/dev/null
fi

# An idle instance's CPU (goal: under 0.5% of one core in total): IDLE_SECS (60) of nothing.
# BENCH_IDLE=0 skips it.
if [ "${BENCH_IDLE:-1}" = 1 ]; then
    echo
    echo "## idle: CPU of an instance with no traffic"
    BUILD=$BUILD tests/bench/idle.sh 2>/dev/null
fi

# End to end through the reference harness (../shared/bench), beside its one-process paho relay
# and Node-RED: several minutes. BENCH_PIPELINE=0 skips it.
if [ "${BENCH_PIPELINE:-1}" = 1 ]; then
    echo
    echo "## pipeline: loadgen -> mosquitto -> mqttflow -> mosquitto -> sink (reference harness)"
    BUILD=$BUILD N=${N:-100000} REPS=${REPS:-3} tests/bench/pipeline.sh
fi
