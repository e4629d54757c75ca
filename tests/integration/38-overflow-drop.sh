# 38-overflow-drop: runtime.overflow: drop sheds QoS 0 messages at a full ingress ring, counts
# them, and never drops a QoS 1 message (DESIGN §2: "The ingress of a QoS 0 subscription may
# instead drop and count, per runtime.overflow: block|drop").
#
# 64KiB rings, one worker whose callback takes 300 us a message; c1 subscribes q0/# at QoS 0
# and q1/# at QoS 1 (one ingress, one ring). 20,000 QoS 0 messages are published as fast as
# mfpub can while 2,000 QoS 1 messages are published at 500/s. Asserted: the ingress counted
# drops (DROPPED > 0); every QoS 0 message it did take in came out (out = ingress IN of q0 =
# 20,000 - DROPPED, nothing lost in between); all 2,000 QoS 1 messages came out, in order.
# shellcheck source=tests/integration/39-pipeline-lib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/39-pipeline-lib.sh"

it_require "$IT_CB/it_slow.so"
it_broker || lib_fail "broker did not start"

it_conf 'topics: [{name: "q0/#", qos: 0}, {name: "q1/#", qos: 1}]' \
    -- 1 'ring_size: "64KiB"' 'overflow: "drop"' < <(it_slow_body slow "#" 300)
it_start "$conf"

it_sub s0 -p "$MQTT_PORT" -t 'out/q0/#' -q 1 -I 10 -T 58
it_sub s1 -p "$MQTT_PORT" -t 'out/q1/#' -q 1 -n 2000 -I 10 -T 58
"$MFPUB" -p "$MQTT_PORT" -q 1 -i 2 -n 2000 -r 500 -t q1/a >"$LIB_TMP/p1.log" 2>&1 &
p1=$!
lib_track "$p1"
it_mfpub p0 -p "$MQTT_PORT" -q 0 -i 1 -n 20000 -t q0/a
it_wait_pub p1 "QoS 1"
for s in s0 s1; do
    res=$(it_sub_result "$s" 60)
    lib_log "$s: $res"
done
it_status "$conf" >&2
in=$(it_metric "$conf" mqttflow_stage_in_total ingress c1)
dropped=$(it_metric "$conf" mqttflow_stage_dropped_total ingress c1)
lib_log "ingress: in $in, dropped $dropped"

u0=$(result_field "$LIB_TMP/s0.log" unique)
[[ ${dropped:-0} -gt 0 ]] || lib_fail "no QoS 0 message was dropped: the test did not fill the ring"
expect_eq "QoS 0 out = ingress IN - QoS 1 messages" "$u0" "$((in - 2000))"
expect_eq "QoS 0 in + dropped" "$((in - 2000 + dropped))" 20000
expect_eq "QoS 0 duplicates" "$(result_field "$LIB_TMP/s0.log" dup)" 0
f=$LIB_TMP/s1.log
expect_eq "QoS 1 unique" "$(result_field "$f" unique)" 2000
expect_eq "QoS 1 lost" "$(result_field "$f" lost)" 0
expect_eq "QoS 1 reorder" "$(result_field "$f" reorder)" 0
it_stop "$conf"
lib_log "PASS"
