#!/usr/bin/env bash
# The test runner behind `make test` / `make check`: every unit test binary ($BUILD/tests/*/test_*)
# and every integration/fault script (tests/integration/[0-9]*.sh), each with a timeout, its
# output kept in $BUILD/test-logs/. Exit status 77 means SKIP (a missing prerequisite, said in
# the log). Prints PASS/FAIL/SKIP per test, then the summary line "N passed, N failed, N skipped".
#
#   tests/run.sh                 everything
#   tests/run.sh ring cfg        only tests whose name contains one of the words
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD
UNIT_TIMEOUT=${UNIT_TIMEOUT:-180}
INTEG_TIMEOUT=${INTEG_TIMEOUT:-300}
LOGS=$BUILD/test-logs
mkdir -p "$LOGS"
# Sanitizer builds: fail on the first report, keep leak checking on.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# the embedded Python's interpreter is not finalised at exit (tests/lsan.supp says why)
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$(pwd)/tests/lsan.supp:print_suppressions=0}

filters=("$@")
selected() {
    [ ${#filters[@]} -eq 0 ] && return 0
    local f
    for f in "${filters[@]}"; do [[ "$1" == *"$f"* ]] && return 0; done
    return 1
}

pass=0 fail=0 skip=0 failed=()
# Tests keep their state in folders of their own: one that leaves the service's default state
# folder behind (run as root, a config without spool_dir/dead_letter) pollutes the machine and
# breaks the package test (its service user cannot enter a root-owned /var/lib/mqttflow).
# Checked only when the folder did not exist before the run (no real installation here).
STATE_DIR=/var/lib/mqttflow
state_guard=0
[ -e "$STATE_DIR" ] || state_guard=1
run_one() { # name timeout cmd...
    local name=$1 t=$2; shift 2
    local log="$LOGS/${name//\//_}.log" start end rc
    start=$(date +%s.%N)
    timeout --kill-after=10 "$t" "$@" >"$log" 2>&1
    rc=$?
    if [ $state_guard = 1 ] && [ -e "$STATE_DIR" ]; then
        echo "run.sh: $name left $STATE_DIR behind (a config without spool_dir/dead_letter?): $(find "$STATE_DIR" -maxdepth 2 | head -n 5 | tr '\n' ' ')" >>"$log"
        rm -rf "$STATE_DIR"
        [ $rc = 0 ] && rc=1
    fi
    end=$(date +%s.%N)
    local secs
    secs=$(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.1f", b-a}')
    case $rc in
    0) pass=$((pass + 1)); printf 'PASS  %-50s %6ss\n' "$name" "$secs" ;;
    77) skip=$((skip + 1)); printf 'SKIP  %-50s %6ss  (%s)\n' "$name" "$secs" "$(tail -n 1 "$log")" ;;
    124|137) fail=$((fail + 1)); failed+=("$name"); printf 'FAIL  %-50s %6ss  timeout after %ss\n' "$name" "$secs" "$t" ;;
    *) fail=$((fail + 1)); failed+=("$name"); printf 'FAIL  %-50s %6ss  exit %s\n' "$name" "$secs" "$rc" ;;
    esac
}

for t in $(find "$BUILD/tests" -mindepth 2 -maxdepth 2 -type f -name 'test_*' -perm -u+x 2>/dev/null | sort); do
    name=${t#"$BUILD"/tests/}
    selected "$name" || continue
    run_one "$name" "$UNIT_TIMEOUT" "$t"
done
for t in tests/integration/[0-9]*.sh; do
    [ -e "$t" ] || continue
    name=${t#tests/}
    selected "$name" || continue
    run_one "$name" "$INTEG_TIMEOUT" bash "$t"
done

if [ ${#failed[@]} -gt 0 ]; then
    echo
    for n in "${failed[@]}"; do
        echo "---- last lines of $LOGS/${n//\//_}.log"
        tail -n 25 "$LOGS/${n//\//_}.log"
    done
    echo
fi
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ] && [ $((pass + skip)) -gt 0 ]
