# 47-fault-window-crash: issue 4 fault test 8. kill -9 of a worker holding an open 5 s
# sampler window: the window still closes on time after the restart and its output counts
# every message of the window.
#
# The scenario and its assertions are 30-window-survives-crash's (5 readings, 3 before the
# kill and 2 after, window out 5 s after the first reading, at most 1.5 s late, count 5, no
# partial window); this script runs it ROUNDS times and records the figure row: messages =
# readings published, lost = readings missing from the first window (0 when 30 passes),
# restart time = how late the window closed against its 5 s deadline (from 30's log).
# Quick: 1 run. SOAK=1: 3 runs. FAULT_ROUNDS=N: N.
# shellcheck source=tests/integration/faultlib.sh
. "$(dirname "$0")/faultlib.sh"

it_require "$IT_EXAMPLES/callbacks/temperature_processing.so" "$MOSQUITTO_PUB" "$MOSQUITTO_SUB"
ROUNDS=$(fl_rounds 1 3)
fails=()
runs=0
for ((r = 1; r <= ROUNDS; r++)); do
    KEEP_TMP=0 bash "$(dirname "$0")/30-window-survives-crash.sh" >"$LIB_TMP/run$r.log" 2>&1
    rc=$?
    [[ $rc == 77 ]] && {
        tail -n 1 "$LIB_TMP/run$r.log"
        exit 77
    }
    runs=$((runs + 1))
    took=$(sed -n 's/.*first window out \([0-9]*\) ms after the first reading.*/\1/p' "$LIB_TMP/run$r.log")
    [[ -n $took ]] && FL_RT+=($((took > 5000 ? took - 5000 : 0)))
    lib_log "run $r: exit $rc, first window out ${took:-?} ms after its first reading"
    if [[ $rc != 0 ]]; then
        tail -n 15 "$LIB_TMP/run$r.log" >&2
        fails+=("run $r of 30-window-survives-crash failed (exit $rc)")
    fi
done
# 5 readings per run in the crashed window, then 1 more; lost = runs that failed x 5 (upper bound)
fl_row "8 kill -9 worker with open 5 s window (lateness)" "$runs" $((6 * runs)) \
    $((5 * ${#fails[@]})) 0 0
((${#fails[@]} == 0)) || lib_fail "$(printf '%s; ' "${fails[@]}")"
lib_log "PASS"
