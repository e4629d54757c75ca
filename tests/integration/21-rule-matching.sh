# 21-rule-matching: which rules a message reaches, through the real pipeline.
#
# Two source clients on two brokers (c1 on broker 1: home/#, plant/#, json/#; c2 on broker 2:
# home/#, misc/#) and a publish-only client "out" on broker 1. Every rule runs the echo
# callback with its own topic prefix and relays to "out", so each rule's output is counted by
# its own mfsub:
#   plus   c1, home/+/temp                       -> plus/...
#   hash   c1, home/#                            -> hash/...   (home/x/temp matches both)
#   regex  c1, plant/#, regex ^plant/line[12]/   -> regex/...
#   cond   c1, json/#, payload.temp > 30         -> cond/...
#   only2  c2, home/#                            -> c2/...     (c1's home messages never)
# Published: c1 home/kitchen/temp 100, home/kitchen/humidity 50, plant/line1/speed 30,
# plant/line3/speed 20 (regex fails), json/sensor 40 with temp 10,40,10,40,... (20 pass);
# c2 home/garden/temp 60, misc/x 10 (no rule). Asserted: each output's exact unique count,
# sources and no duplicates; cond's messages all have temp 40; the router's counters in
# `mqttflow status`: in 310, out 360 (one message -> 2 records for plus+hash), unmatched
# (DROPPED) 50; the workers took in 360 and the relay published 360.
# shellcheck source=tests/integration/39-pipeline-lib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/39-pipeline-lib.sh"

it_require "$IT_CB/echo.so"
it_broker || lib_fail "broker 1 did not start"
it_broker b2 || lib_fail "broker 2 did not start"

conf=$LIB_TMP/conf.yaml
{
    echo "mqtt_clients:"
    it_client c1 "$MQTT_PORT" 'topics:' '  - {name: "home/#", qos: 1}' \
        '  - {name: "plant/#", qos: 1}' '  - {name: "json/#", qos: 1}'
    it_client c2 "$b2_PORT" 'topics:' '  - {name: "home/#", qos: 1}' '  - {name: "misc/#", qos: 1}'
    it_client out "$MQTT_PORT"
    cat <<EOF
callbacks:
  echo:
    module: "$IT_CB/echo.so"
    function: "echo"
rules:
  - {rule: "plus", source_client_id: "c1", topic: "home/+/temp", action: "to_plus",
     execution_mode: "threaded"}
  - {rule: "hash", source_client_id: "c1", topic: "home/#", action: "to_hash",
     execution_mode: "threaded"}
  - {rule: "regex", source_client_id: "c1", topic: "plant/#", regex: "^plant/line[12]/",
     action: "to_regex", execution_mode: "threaded"}
  - {rule: "cond", source_client_id: "c1", topic: "json/#", condition: "payload.temp > 30",
     action: "to_cond", execution_mode: "threaded"}
  - {rule: "only2", source_client_id: "c2", topic: "home/#", action: "to_c2",
     execution_mode: "threaded"}
processing_chains:
EOF
    for p in plus hash regex cond c2; do
        cat <<EOF
  to_$p:
    - {step: "custom_processor", config: {callback: "echo", prefix: "$p/"}}
    - {step: "relay", config: {target_client_id: "out", qos: 1}}
EOF
    done
    it_runtime 2
} >"$conf"
"$MQTTFLOW" check "$conf" >"$LIB_TMP/check.log" 2>&1 || {
    cat "$LIB_TMP/check.log" >&2
    lib_fail "mqttflow check refused the config"
}
it_start "$conf"

# no -n: each ends 6 s after its last message, so extra messages would be counted too
for p in plus hash regex c2; do
    it_sub "s_$p" -p "$MQTT_PORT" -t "$p/#" -q 1 -I 8 -T 50
done
it_sub s_cond -p "$MQTT_PORT" -t "cond/#" -q 1 -I 8 -T 50 -D

it_mfpub p1 -p "$MQTT_PORT" -q 1 -i 1 -n 100 -t home/kitchen/temp
it_mfpub p2 -p "$MQTT_PORT" -q 1 -i 2 -n 50 -t home/kitchen/humidity
it_mfpub p3 -p "$MQTT_PORT" -q 1 -i 3 -n 30 -t plant/line1/speed
it_mfpub p4 -p "$MQTT_PORT" -q 1 -i 4 -n 20 -t plant/line3/speed
it_mfpub p5 -p "$MQTT_PORT" -q 1 -i 5 -n 40 -t json/sensor -j -J temp -V 10,40
it_mfpub p6 -p "$b2_PORT" -q 1 -i 6 -n 60 -t home/garden/temp
it_mfpub p7 -p "$b2_PORT" -q 1 -i 7 -n 10 -t misc/x

it_until 20 '[[ $(it_metric "$conf" mqttflow_stage_in_total router) == 310 ]]' ||
    lib_fail "router in: $(it_metric "$conf" mqttflow_stage_in_total router), want 310"

check_sub() { # NAME UNIQUE SOURCES
    local res
    res=$(it_sub_result "$1" 60)
    lib_log "$1: $res"
    expect_eq "$1 unique" "$(result_field "$LIB_TMP/$1.log" unique)" "$2"
    expect_eq "$1 dup" "$(result_field "$LIB_TMP/$1.log" dup)" 0
    expect_eq "$1 sources" "$(result_field "$LIB_TMP/$1.log" sources)" "$3"
    expect_eq "$1 badsum+other" \
        "$(($(result_field "$LIB_TMP/$1.log" badsum) + $(result_field "$LIB_TMP/$1.log" other)))" 0
    if [[ $2 -gt 0 && $(result_field "$LIB_TMP/$1.log" lost) != 0 ]] && [[ $1 != s_cond ]]; then
        lib_fail "$1 lost $(result_field "$LIB_TMP/$1.log" lost)"
    fi
}
check_sub s_plus 100 1  # src 1 only: + matched one level, c2's home/garden/temp excluded
check_sub s_hash 150 2  # src 1 and 2
check_sub s_regex 30 1  # line1 only
check_sub s_c2 60 1     # src 6 only
check_sub s_cond 20 1   # the 20 messages with temp 40
n40=$(grep -c '^cond/json/sensor	{.*"temp":40}$' "$LIB_TMP/s_cond.log")
expect_eq "cond outputs carrying temp 40 on cond/json/sensor" "$n40" 20

status=$(it_status "$conf")
lib_log "status:"$'\n'"$status"
# STAGE PID CPU STATE RESTARTS RING IN OUT IN/S OUT/S ERRORS DROPPED
read -r r_in r_out r_err r_drop < <(awk '$1 == "router" { print $7, $8, $11, $12 }' <<<"$status")
expect_eq "router IN" "$r_in" 310
expect_eq "router OUT (plus+hash copies)" "$r_out" 360
expect_eq "router DROPPED (unmatched)" "$r_drop" 50
expect_eq "router ERRORS" "$r_err" 0
expect_eq "workers IN (sum)" "$(awk '$1 == "worker" { s += $8 } END { print s + 0 }' <<<"$status")" 360
expect_eq "relay OUT" "$(awk '$1 == "relay" { print $8 }' <<<"$status")" 360

it_stop "$conf"
lib_log "PASS"
