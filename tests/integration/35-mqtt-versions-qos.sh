# 35-mqtt-versions-qos: every QoS level end to end, with MQTT 5 and with MQTT 3.1.1 clients.
#
# c1 subscribes q0/# at QoS 0, q1/# at QoS 1 and q2/# at QoS 2 on broker 1 (no in-flight limit,
# see below); c2 is the relay
# target on broker 2 (plain mosquitto defaults: max_inflight_messages 20, which is also the
# Receive Maximum it announces to MQTT 5 clients). Three sequential echo rules relay to c2 at
# the QoS of their input; with 2 workers they use two worker->relay rings. 2,000 messages per
# QoS level at once (QoS 0 at 2,000/s so that no hop is overrun; QoS 2 publishers keep 10 in
# flight, under the broker's limit).
#  A. mqtt_version 5 on c1 and c2: both connect as MQTT 5 (broker logs: "p5"); QoS 0, 1, 2 all
#     arrive, once, in order.
#  B. mqtt_version 3.1.1 on both: QoS 1 and 2 all arrive, once, in order.
# Every check runs; failures are reported together at the end.
# shellcheck source=tests/integration/39-pipeline-lib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/39-pipeline-lib.sh"

it_require "$IT_CB/echo.so"
# Broker 1 (the input) without an in-flight limit: with mosquitto's default of 20, once c1's
# window is full of QoS 1 and QoS 2 deliveries mosquitto 2.0.11 queues some and sends newer
# ones first (its docs: only max_inflight_messages 1 "will guarantee in-order delivery";
# measured: PUBLISH m575 written to c1 after m678). That reorders what reaches the ingress,
# before the pipeline; DESIGN §5 promises arrival order per sequential rule, which is what
# this test checks. Broker 2 keeps the defaults (the relay's side of the limit is tested).
it_broker MQTT "log_type notice" "max_inflight_messages 0" || lib_fail "broker 1 did not start"
it_broker b2 "log_type notice" || lib_fail "broker 2 did not start"
fails=()

write_conf() { # VERSION
    echo "mqtt_clients:"
    it_client c1 "$MQTT_PORT" "mqtt_version: \"$1\"" 'topics:' '  - {name: "q0/#", qos: 0}' \
        '  - {name: "q1/#", qos: 1}' '  - {name: "q2/#", qos: 2}'
    it_client c2 "$b2_PORT" "mqtt_version: \"$1\""
    cat <<EOF
callbacks:
  echo: {module: "$IT_CB/echo.so", function: "echo"}
rules:
EOF
    local q
    for q in 0 1 2; do
        echo "  - {rule: \"r$q\", topic: \"q$q/#\", action: \"to_c2_$q\", execution_mode: \"sequential\"}"
    done
    echo "processing_chains:"
    for q in 0 1 2; do
        cat <<EOF
  to_c2_$q:
    - {step: "custom_processor", config: {callback: "echo", prefix: "out/"}}
    - {step: "relay", config: {target_client_id: "c2", qos: $q}}
EOF
    done
    it_runtime 2
}

run_levels() { # PART QOS...: publish 2,000 per level at once, check each subscriber
    local part=$1 q f pids=() i=0
    shift
    for q in "$@"; do
        it_sub "s$part$q" -p "$b2_PORT" -t "out/q$q/#" -q "$q" -n 2000 -I 10 -T 40
    done
    for q in "$@"; do
        local opt=(-w 10)
        [[ $q == 0 ]] && opt=(-r 2000)
        "$MFPUB" -p "$MQTT_PORT" -q "$q" -i "$((q + 1))" -n 2000 -W 30 "${opt[@]}" -t "q$q/$part" \
            >"$LIB_TMP/p$part$q.log" 2>&1 &
        pids+=("$!")
        lib_track "$!"
    done
    for q in "$@"; do
        wait "${pids[i]}" || fails+=("$part: mfpub QoS $q did not complete")
        i=$((i + 1))
    done
    for q in "$@"; do
        it_sub_result "s$part$q" 60 >/dev/null
        f=$LIB_TMP/s$part$q.log
        lib_log "$part QoS $q: $(grep '^RESULT' "$f" | sed 's/ p50_us.*//')"
        local u l d r
        u=$(result_field "$f" unique) l=$(result_field "$f" lost)
        d=$(result_field "$f" dup) r=$(result_field "$f" reorder)
        [[ $u == 2000 && $l == 0 ]] || fails+=("$part QoS $q: $u of 2000 arrived (lost $l)")
        [[ $d == 0 ]] || fails+=("$part QoS $q: $d duplicates")
        [[ $r == 0 ]] || fails+=("$part QoS $q: $r reordered (sequential rule)")
    done
}

# ---- A: MQTT 5
conf=$LIB_TMP/v5.yaml
write_conf 5 >"$conf"
it_start "$conf" 30 mfA
run_levels A 0 1 2
grep -q "as c1 (p5" "$MQTT_LOG" ||
    fails+=("A: the ingress of c1 did not connect with MQTT 5 ($(grep -o 'as c1 ([^)]*)' "$MQTT_LOG" | head -n 1); $(grep -o 'mqtt_version 5 is not supported[^;]*' "$IT_LOG" | head -n 1))")
grep -q "as c2-[^ ]* (p5" "$b2_LOG" || grep -q "as c2 (p5" "$b2_LOG" ||
    fails+=("A: the relay's c2 did not connect with MQTT 5")
grep -E "WARN|ERROR" "$IT_LOG" | sort | uniq -c | sort -rn | head -n 5 >&2
it_stop "$conf"

# ---- B: MQTT 3.1.1
conf=$LIB_TMP/v311.yaml
write_conf 3.1.1 >"$conf"
it_start "$conf" 30 mfB
run_levels B 1 2
grep -E "WARN|ERROR" "$IT_LOG" | sed 's/^[0-9:.]* //' | sort | uniq -c | sort -rn | head -n 5 >&2
# records the relay could not publish stay in the rings for the next run ("kept N segment(s)"):
# correct at a stop, but this test's instance has no next run: note it and remove them
"$MQTTFLOW" stop "$conf" >/dev/null 2>&1 || fails+=("B: mqttflow stop failed")
it_wait_exit "$mf_PID" 60 || lib_fail "B: the supervisor did not exit"
[[ $IT_RC == 0 ]] || fails+=("B: the supervisor exited with $IT_RC")
if [[ $(it_shm_left "$IT_INSTANCE") != 0 ]]; then
    grep -q "kept .* segment" "$IT_LOG" || fails+=("B: segments left without a 'kept' note")
    fails+=("B: records were still unpublished at the stop ($(grep -o 'kept .*' "$IT_LOG"))")
    rm -f /dev/shm/mqttflow."$IT_INSTANCE".*
fi

if [[ ${#fails[@]} -gt 0 ]]; then
    for m in "${fails[@]}"; do lib_log "FAIL: $m"; done
    lib_fail "${#fails[@]} check(s) failed"
fi
lib_log "PASS"
