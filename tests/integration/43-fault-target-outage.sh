# 43-fault-target-outage: issue 4 fault test 4. The target broker is stopped for DOWN s under
# load, then started again: everything is delivered after it is back, in order per target,
# 0 lost, and the other target keeps flowing meanwhile.
#
# Broker 1: source c1 (in/#) and target of rule "up"; broker 2: target t2 of rule "dn"
# (persistence on, so the test's persistent subscriber there keeps its session over the
# restart). One sequential echo rule per target, QoS 1, FL_RATE msg/s each, for DOWN + 8 s.
# Broker 2 goes down 2 s into the load. Asserted: "up" gets all its messages with 0 lost,
# 0 reordered, and keeps arriving while broker 2 is down; "dn" gets all of them, 0 lost,
# 0 reordered (duplicates of publishes cut by the outage are allowed and reported); the
# relay never restarted; clean stop. The restart time is from broker 2 accepting connections
# again to the relay's log saying it reconnected to t2.
# Quick: DOWN = 5 s. SOAK=1: 30 s. FAULT_ROUNDS=N: N outages (one after another).
# shellcheck source=tests/integration/faultlib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/faultlib.sh"

it_require "$IT_CB/echo.so"
it_broker || lib_fail "broker 1 did not start"
mkdir -p "$LIB_TMP/b2db"
it_broker b2 "persistence true" "persistence_location $LIB_TMP/b2db/" ||
    lib_fail "broker 2 did not start"
DOWN=5
((FL_LONG)) && DOWN=30
ROUNDS=${FAULT_ROUNDS:-1}

conf=$LIB_TMP/conf.yaml
{
    cat <<EOF2
mqtt_clients:
  - client_id: "c1"
    broker_url: "mqtt://127.0.0.1"
    port: $MQTT_PORT
    reconnect: {min_delay: 0.1, max_delay: 1}
    topics: [{name: "in/#", qos: 1}]
  - client_id: "t2"
    broker_url: "mqtt://127.0.0.1"
    port: $b2_PORT
    reconnect: {min_delay: 0.1, max_delay: 1}
callbacks:
  echo: {module: "$IT_CB/echo.so", function: "echo"}
rules:
  - {rule: "dn", topic: "in/dn/#", action: "to_t2", execution_mode: "sequential"}
  - {rule: "up", topic: "in/up/#", action: "to_c1", execution_mode: "sequential"}
processing_chains:
  to_t2:
    - {step: "custom_processor", config: {callback: "echo", prefix: "out/"}}
    - {step: "relay", config: {target_client_id: "t2", qos: 1}}
  to_c1:
    - {step: "custom_processor", config: {callback: "echo", prefix: "out/"}}
    - {step: "relay", config: {target_client_id: "c1", qos: 1}}
EOF2
    it_runtime 2
} >"$conf"
it_start "$conf"

SECS=$((ROUNDS * (DOWN + 4) + 4))
N=$((FL_RATE * SECS))
T=$((SECS + 120))
it_sub s_dn -p "$b2_PORT" -c "it$$-sdn" -P -t 'out/#' -q 1 -n $N -I $((DOWN + 30)) -T $T
it_sub s_up -p "$MQTT_PORT" -t 'out/in/up/#' -q 1 -n $N -I 30 -T $T
"$MFPUB" -p "$MQTT_PORT" -q 1 -i 1 -n $N -r "$FL_RATE" -t in/dn/a -W $T >"$LIB_TMP/p_dn.log" 2>&1 &
p_dn=$!
lib_track $p_dn
"$MFPUB" -p "$MQTT_PORT" -q 1 -i 2 -n $N -r "$FL_RATE" -t in/up/a -W $T >"$LIB_TMP/p_up.log" 2>&1 &
p_up=$!
lib_track $p_up

fails=()
spooled=0
for ((r = 0; r < ROUNDS; r++)); do
    sleep 2 # load before the outage (a time of the scenario, not a synchronisation)
    conns=$(grep -c "client t2: connected" "$IT_LOG")
    broker_stop b2
    lib_log "broker 2 down for ${DOWN}s (relay out $(it_metric "$conf" mqttflow_stage_out_total relay))"
    in_up0=$(it_metric "$conf" mqttflow_stage_out_total relay)
    sleep "$DOWN"
    n_seg=$(find "$LIB_TMP/spool" -name '*.seg' 2>/dev/null | wc -l)
    ((n_seg > spooled)) && spooled=$n_seg
    in_up1=$(it_metric "$conf" mqttflow_stage_out_total relay)
    ((in_up1 > in_up0)) || fails+=("the relay published nothing to broker 1 while broker 2 was down")
    broker_restart b2 || lib_fail "broker 2 did not come back"
    t0=$(fl_now_ms)
    it_until 30 '[[ $(grep -c "client t2: connected" "$IT_LOG") -gt $conns ]]' ||
        lib_fail "the relay did not reconnect to broker 2"
    t1=$(fl_now_ms)
    FL_RT+=($((t1 - t0)))
    lib_log "relay reconnected to broker 2 after $((t1 - t0)) ms; spool segments seen: $n_seg"
done

wait $p_dn || lib_fail "mfpub dn did not complete: $(tail -n 2 "$LIB_TMP/p_dn.log")"
wait $p_up || lib_fail "mfpub up did not complete: $(tail -n 2 "$LIB_TMP/p_up.log")"
for s in s_up s_dn; do
    lib_log "$s: $(it_sub_result "$s" $T)"
done
it_status "$conf" >&2
for s in s_up s_dn; do
    f=$LIB_TMP/$s.log
    [[ $(result_field "$f" unique) == "$N" ]] || fails+=("$s unique $(result_field "$f" unique) of $N")
    [[ $(result_field "$f" lost) == 0 ]] || fails+=("$s lost $(result_field "$f" lost)")
    [[ $(result_field "$f" reorder) == 0 ]] || fails+=("$s reordered $(result_field "$f" reorder)")
    [[ $(result_field "$f" badsum) == 0 ]] || fails+=("$s badsum $(result_field "$f" badsum)")
done
[[ $(it_metric "$conf" mqttflow_stage_restarts_total relay) == 0 ]] || fails+=("the relay restarted")
fl_sub_sum s_up s_dn
fl_row "4 target broker down ${DOWN}s under load" "$ROUNDS" $((2 * N)) "$FL_LOST" "$FL_DUP" "$FL_REORDER"
((${#fails[@]} == 0)) || lib_fail "$(printf '%s; ' "${fails[@]}")"
it_stop "$conf"
lib_log "PASS"
