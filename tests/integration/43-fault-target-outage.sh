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
it_broker_b2
DOWN=5
((FL_LONG)) && DOWN=30
ROUNDS=${FAULT_ROUNDS:-1}

it_conf_to t2 "dn:in/dn/#:t2 up:in/up/#:c1" 2 "$IT_RECONNECT" 'topics: [{name: "in/#", qos: 1}]'
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
    fl_time_until 30 '[[ $(grep -c "client t2: connected" "$IT_LOG") -gt $conns ]]' \
        "the relay did not reconnect to broker 2"
    lib_log "relay reconnected to broker 2 after $FL_MS ms; spool segments seen: $n_seg"
done

it_wait_pub p_dn "dn"
it_wait_pub p_up "up"
it_sub_results $T s_up s_dn
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
