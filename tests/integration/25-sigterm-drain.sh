# 25-sigterm-drain: SIGTERM to `mqttflow run` drains the pipeline: nothing the ingress took is
# lost, exit 0, no shared-memory segment left.
#
# One sequential rule whose callback (tests/callbacks/it_slow.c) takes 500 us a message, so a
# backlog builds up in the rings behind the single worker; QoS 1 in and out.
#  A. "stop the publisher first": 6,000 messages published as fast as mfpub can (all
#     acknowledged), then, as soon as the ingress has taken all 6,000 (status), SIGTERM while
#     most of them are still in the rings (asserted: the relay had published fewer than
#     6,000). The supervisor must exit 0, leave no /dev/shm/mqttflow.<instance>.*, and all
#     6,000 must arrive (lost 0, in order).
#  B. under load: mfpub keeps publishing at 3,000/s; once the ingress has taken 3,000, the
#     count K it has taken is read and SIGTERM sent. Exit 0, no segment, and what arrived is a
#     gap-free prefix (lost 0) of at least K messages (each one the ingress acknowledged to
#     the broker must come out; a message the broker had not yet handed to the ingress when
#     it disconnected is the broker's to drop with a clean session).
# shellcheck source=tests/integration/39-pipeline-lib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/39-pipeline-lib.sh"

it_require "$IT_CB/it_slow.so"
it_broker || lib_fail "broker did not start"

write_conf() {
    it_conf_print 'topics: [{name: "in/#", qos: 1}]' -- 1 < <(it_slow_body slow "in/#" 500)
}

sigterm_and_check() { # CONF: SIGTERM the supervisor, exit 0 within 60 s, no segment left
    local t0=$SECONDS
    kill -TERM "$mf_PID"
    it_assert_clean_exit 60
    lib_log "supervisor drained and exited 0 in $((SECONDS - t0)) s"
    grep -q "instance $IT_INSTANCE stopped" "$LIB_TMP/mf.log" ||
        lib_fail "no 'instance $IT_INSTANCE stopped' in the supervisor's log"
}

# ---- A: publisher done, backlog in the rings
conf=$LIB_TMP/confA.yaml
write_conf >"$conf"
it_start "$conf"
it_sub subA -p "$MQTT_PORT" -t 'out/#' -q 1 -n 6000 -I 15 -T 55
it_mfpub pubA -p "$MQTT_PORT" -q 1 -i 1 -n 6000 -t in/a
lib_log "pubA: $(grep '^RESULT' "$LIB_TMP/pubA.log")"
it_until 20 '[[ $(it_metric "$conf" mqttflow_stage_in_total ingress c1) -ge 6000 ]]' ||
    lib_fail "the ingress took $(it_metric "$conf" mqttflow_stage_in_total ingress c1) of 6000"
relay_out=$(it_metric "$conf" mqttflow_stage_out_total relay)
sigterm_and_check "$conf"
lib_log "A: backlog at SIGTERM: $((6000 - relay_out)) messages not yet published"
[[ $relay_out -lt 6000 ]] || lib_fail "no backlog at SIGTERM: the drain was not exercised"
res=$(it_sub_result subA 60)
lib_log "subA: $res"
expect_eq "A unique" "$(result_field "$LIB_TMP/subA.log" unique)" 6000
expect_eq "A lost" "$(result_field "$LIB_TMP/subA.log" lost)" 0
expect_eq "A reorder" "$(result_field "$LIB_TMP/subA.log" reorder)" 0
expect_eq "A badsum" "$(result_field "$LIB_TMP/subA.log" badsum)" 0
lib_log "A duplicates: $(result_field "$LIB_TMP/subA.log" dup)"

# ---- B: SIGTERM while the publisher keeps going
conf=$LIB_TMP/confB.yaml
write_conf >"$conf"
it_start "$conf"
it_sub subB -p "$MQTT_PORT" -t 'out/#' -q 1 -I 8 -T 55
"$MFPUB" -p "$MQTT_PORT" -q 1 -i 2 -n 15000 -r 3000 -t in/b >"$LIB_TMP/pubB.log" 2>&1 &
pubB=$!
lib_track "$pubB"
it_until 20 '[[ $(it_metric "$conf" mqttflow_stage_in_total ingress c1) -ge 3000 ]]' ||
    lib_fail "the ingress did not take 3000 messages"
k=$(it_metric "$conf" mqttflow_stage_in_total ingress c1)
relay_out=$(it_metric "$conf" mqttflow_stage_out_total relay)
kill -0 "$pubB" 2>/dev/null || lib_fail "the publisher had finished before the SIGTERM"
sigterm_and_check "$conf"
lib_log "B: ingress had taken $k, relay had published $relay_out at SIGTERM"
res=$(it_sub_result subB 60)
lib_log "subB: $res"
u=$(result_field "$LIB_TMP/subB.log" unique)
expect_eq "B lost (gaps)" "$(result_field "$LIB_TMP/subB.log" lost)" 0
expect_eq "B badsum" "$(result_field "$LIB_TMP/subB.log" badsum)" 0
expect_eq "B reorder" "$(result_field "$LIB_TMP/subB.log" reorder)" 0
[[ $u -ge $k ]] || lib_fail "B: $u messages arrived, but the ingress had taken $k before SIGTERM"
lib_log "B duplicates: $(result_field "$LIB_TMP/subB.log" dup)"
lib_stop_pid "$pubB" 3
lib_log "PASS"
