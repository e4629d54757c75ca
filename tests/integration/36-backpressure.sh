# 36-backpressure: full rings make the producers wait; nothing is dropped (DESIGN §2 "Full ring:
# the producer waits (backpressure reaches the broker through TCP)", overflow: block).
#
# runtime.ring_size 64KiB (the smallest), one worker whose callback (it_slow) takes 300 us a
# message, 1 KiB payloads: a ring holds about 60 of them, so the worker's input ring, then the
# ingress ring fill up and the ingress has to stop reading its socket. 5,000 QoS 1 messages
# published as fast as mfpub can. Asserted: a ring was seen full (RING fill >= 50% in status
# while the load runs), all 5,000 arrive in order, nothing counted as dropped, clean stop.
# shellcheck source=tests/integration/39-pipeline-lib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/39-pipeline-lib.sh"

it_require "$IT_CB/it_slow.so"
it_broker || lib_fail "broker did not start"

it_conf 'topics: [{name: "in/#", qos: 1}]' -- 1 'ring_size: "64KiB"' 'overflow: "block"' < <(it_slow_body slow "in/#" 300)
it_start "$conf"

it_sub sub -p "$MQTT_PORT" -t 'out/#' -q 1 -n 5000 -I 15 -T 55
"$MFPUB" -p "$MQTT_PORT" -q 1 -i 1 -n 5000 -s 1024 -t in/a >"$LIB_TMP/pub.log" 2>&1 &
pub=$!
lib_track "$pub"

# while the load runs: the highest ring fill any stage shows
max_fill=0
while kill -0 "$pub" 2>/dev/null && [[ $(ps -o stat= -p "$pub") != Z* ]]; do
    f=$(it_prom "$conf" | awk '/^mqttflow_stage_ring_fill_ratio/ { if ($NF > m) m = $NF } END { printf "%d", m * 100 }')
    ((f > max_fill)) && max_fill=$f
    sleep 0.1
done
it_wait_pub pub
lib_log "pub: $(grep '^RESULT' "$LIB_TMP/pub.log")"
lib_log "highest ring fill seen during the load: $max_fill%"
res=$(it_sub_result sub 60)
lib_log "sub: $res"
it_status "$conf" >&2

f=$LIB_TMP/sub.log
expect_eq "unique" "$(result_field "$f" unique)" 5000
expect_eq "lost" "$(result_field "$f" lost)" 0
expect_eq "reorder" "$(result_field "$f" reorder)" 0
expect_eq "badsum" "$(result_field "$f" badsum)" 0
[[ $max_fill -ge 50 ]] || lib_fail "no ring was ever half full: the test did not cause backpressure"
for s in "ingress c1" router "worker 0" relay; do
    # shellcheck disable=SC2086 # "worker 0" is STAGE ID
    d=$(it_metric "$conf" mqttflow_stage_dropped_total $s)
    expect_eq "$s dropped" "${d:-0}" 0
done
it_stop "$conf"
lib_log "PASS"
