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

# mqttflow tap: the router's throughput with taps at both of its points, stalled (a reader
# that never reads: every copy past the full ring is a counted drop) or read by a thread,
# beside no tap; the three alternate, REPS rounds each, medians compared in this run.
echo
echo "## tap: router records/s with taps attached (ingress + rule), medians of ${BENCH_TAP_REPS:-5} rounds"
n_tap=${BENCH_TAP_RECORDS:-1000000}
out_tap=$(for ((r = 0; r < ${BENCH_TAP_REPS:-5}; r++)); do
    for m in none stalled reading; do "$BUILD"/tests/bench/bench_router "$n_tap" "$m"; done
done)
awk '
    { for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
      if (f["ok"] != 1) bad = 1
      m = f["tap"]; n[m]++; v[m, n[m]] = f["records/s"]; d[m] += f["tap_dropped"]; c[m] += f["tap_copied"] }
    function median(m,   i, j, t, k) {
        k = n[m]
        for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++)
            if (v[m, j] < v[m, i]) { t = v[m, i]; v[m, i] = v[m, j]; v[m, j] = t }
        return k % 2 ? v[m, (k + 1) / 2] : (v[m, k / 2] + v[m, k / 2 + 1]) / 2
    }
    END {
        if (bad) { print "bench_router: a run lost records"; exit 1 }
        base = median("none")
        print "| tap | records/s (median) | vs no tap | tap copies | tap drops |"
        print "|---|---:|---:|---:|---:|"
        split("none stalled reading", ms, " ")
        for (i = 1; i <= 3; i++)
            printf "| %s | %.0f | %.2f | %d | %d |\n", ms[i], median(ms[i]), median(ms[i]) / base, c[ms[i]], d[ms[i]]
    }' <<<"$out_tap"
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

echo
echo "## bench_chain: ns/message through a worker's chain set (steps driven by the table of kinds)"
"$BUILD"/tests/bench/bench_chain "${BENCH_CHAIN_MESSAGES:-300000}" 2>/dev/null

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
