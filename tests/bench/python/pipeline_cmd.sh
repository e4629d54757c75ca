#!/usr/bin/env bash
# PIPELINE_CMD of the Python bench (tests/bench/python.sh): mqttflow relaying in/# -> out/#
# through one callback step, as ../shared/bench's contract asks: tests/bench/pipeline_cmd.sh
# with BENCH_CB set (it uses a format step without it). Environment:
#   BENCH_CB      MODULE:FUNCTION of the callback (a .so or .py path, absolute)
#   BENCH_WORKERS workers (default 1); BENCH_MODE execution mode (default per_topic)
#   BENCH_LOOPS   the `loops` parameter of the step (heavy.py), default 0
set -eu
: "${BENCH_CB:?BENCH_CB=MODULE:FUNCTION is required}"
exec "$(dirname "$0")/../pipeline_cmd.sh"
