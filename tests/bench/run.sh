#!/usr/bin/env bash
# The `make bench` entry: runs each benchmark in turn, printing markdown tables.
# BUILD selects the build folder (default: build). A benchmark that fails stops the run.
# Keep this a plain sequential list: append new benchmarks below.
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}

echo "## bench_ring ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, kernel $(uname -r))"
"$BUILD"/tests/bench/bench_ring "${BENCH_RING_REPS:-7}"
