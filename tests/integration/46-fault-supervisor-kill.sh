# 46-fault-supervisor-kill: issue 4 fault test 7. kill -9 of the supervisor: no orphan stage
# (parent-death signal), and the next `mqttflow run` of the same instance resumes from the
# rings it finds, so queued messages survive: 0 lost.
#
# c1 (clean_session: false), 1 worker running it_slow (3 ms per message: slower than the
# publisher, so records queue in the rings), QoS 1 out. FL_RATE msg/s. ROUNDS times: once
# the router of the current run has taken in 2 s of load (the worker is behind by then),
# the supervisor is killed (-9);
# asserted: every stage pid it had is gone within 3 s and the instance's segments are still
# in /dev/shm; then `mqttflow run` again: it starts, its log says it resumes queued records
# from the rings. At the end every message has arrived: unique N, 0 lost, none reordered
# (duplicates are reported); clean stop (no segment left). Restart time: kill -> the new run
# says "running" (its start included).
# Quick: 1 kill. SOAK=1: 3. FAULT_ROUNDS=N: N.
# shellcheck source=tests/integration/faultlib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/faultlib.sh"

it_require "$IT_CB/it_slow.so"
it_broker || lib_fail "broker did not start"
ROUNDS=$(fl_rounds 1 3)

it_conf 'clean_session: false' 'topics: [{name: "in/#", qos: 1}]' -- 1 < <(it_slow_body seq "in/#" 3000)
it_start "$conf" 30 mf0

N=$((FL_RATE * (3 * ROUNDS + 3)))
T=$((N / 300 + 120))
it_sub s_out -p "$MQTT_PORT" -t 'out/#' -q 1 -n $N -I 40 -T $T
"$MFPUB" -p "$MQTT_PORT" -q 1 -i 1 -n $N -r "$FL_RATE" -t in/a -W $T >"$LIB_TMP/pub.log" 2>&1 &
pub=$!
lib_track $pub

fails=()
resumed=0
for ((r = 1; r <= ROUNDS; r++)); do
    # each run's counters start at 0: kill once this run has taken 2 s of load in
    mark=$((FL_RATE * 2))
    it_until 60 '[[ $(it_metric "$conf" mqttflow_stage_in_total router) -ge $mark ]]' ||
        lib_fail "the router did not reach $mark"
    mapfile -t pids < <(it_prom "$conf" | awk 'index($0, "mqttflow_stage_pid{") == 1 && $NF > 0 { print $NF }')
    lib_log "router in $(it_metric "$conf" mqttflow_stage_in_total router), worker in $(it_metric "$conf" mqttflow_stage_in_total worker 0); pids ${pids[*]}"
    t0=$(fl_now_ms)
    kill -KILL "$mf_PID"
    wait "$mf_PID" 2>/dev/null
    alive() {
        local p n=0
        for p in "${pids[@]}"; do
            [[ -e /proc/$p ]] && [[ $(awk '{ print $3 }' "/proc/$p/stat" 2>/dev/null) != Z ]] &&
                grep -q mqttflow "/proc/$p/cmdline" 2>/dev/null && n=$((n + 1))
        done
        echo $n
    }
    it_until 3 '[[ $(alive) == 0 ]]' || fails+=("round $r: $(alive) stage(s) still alive 3 s after kill -9 of the supervisor")
    ((${#pids[@]} >= 5)) || fails+=("round $r: only ${#pids[@]} pids in the status")
    [[ $(it_shm_left "$IT_INSTANCE") -gt 0 ]] || fails+=("round $r: the segments are gone after the kill")
    it_start "$conf" 30 "mf$r"
    t1=$(fl_now_ms)
    FL_RT+=($((t1 - t0)))
    if grep -q "resuming [0-9]* queued record" "$LIB_TMP/mf$r.log"; then
        resumed=$((resumed + 1))
        grep "resuming" "$LIB_TMP/mf$r.log" >&2
    fi
done
((resumed == ROUNDS)) || fails+=("$((ROUNDS - resumed)) run(s) did not say they resume queued records")
it_wait_pub pub
lib_log "s_out: $(it_sub_result s_out $T)"
it_status "$conf" >&2
f=$LIB_TMP/s_out.log
[[ $(result_field "$f" unique) == "$N" ]] || fails+=("unique $(result_field "$f" unique) of $N")
[[ $(result_field "$f" lost) == 0 ]] || fails+=("lost $(result_field "$f" lost)")
[[ $(result_field "$f" reorder) == 0 ]] || fails+=("reordered $(result_field "$f" reorder)")
[[ $(result_field "$f" badsum) == 0 ]] || fails+=("badsum $(result_field "$f" badsum)")
fl_sub_sum s_out
fl_row "7 kill -9 supervisor, next run resumes" "$ROUNDS" "$N" "$FL_LOST" "$FL_DUP" "$FL_REORDER"
((${#fails[@]} == 0)) || lib_fail "$(printf '%s; ' "${fails[@]}")"
it_stop "$conf"
lib_log "PASS"
