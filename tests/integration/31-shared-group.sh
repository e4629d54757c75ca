# 31-shared-group: two instances of one configuration with shared_group split the load
# (DESIGN §6: "run more instances with shared_group against a clustered broker").
#
# Two supervisors run the same YAML except runtime.instance (as two machines would run one
# file; on one host the instance names must differ). c1 subscribes in/# as $share/it/in/#;
# one echo rule to out/... at QoS 1. 4,000 QoS 1 messages are published. Asserted: every
# message comes out exactly once over the two instances together (the broker hands each to one
# member of the group), both instances took a share (router IN > 0 each) and the shares add up
# to 4,000; neither ingress lost its broker connection to the other (same client_id in both
# files); both stop cleanly.
# shellcheck source=tests/integration/39-pipeline-lib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/39-pipeline-lib.sh"

it_require "$IT_CB/echo.so"
it_broker || lib_fail "broker did not start"

write_conf() {
    it_conf_print 'shared_group: "it"' 'topics: [{name: "in/#", qos: 1}]' -- 1 <<EOF
callbacks:
  echo: {module: "$IT_CB/echo.so", function: "echo"}
rules:
  - {rule: "fwd", topic: "in/#", action: "echo_out", execution_mode: "threaded"}
processing_chains:
  echo_out:
    - {step: "custom_processor", config: {callback: "echo", prefix: "out/"}}
    - {step: "relay", config: {qos: 1}}
EOF
}

confA=$LIB_TMP/a.yaml
write_conf >"$confA"
instA=$IT_INSTANCE
it_start "$confA" 30 mfA
confB=$LIB_TMP/b.yaml
write_conf >"$confB"
instB=$IT_INSTANCE
it_start "$confB" 30 mfB

it_sub sub -p "$MQTT_PORT" -t 'out/#' -q 1 -n 4000 -I 10 -T 50
it_mfpub pub -p "$MQTT_PORT" -q 1 -i 1 -n 4000 -T in/t -k 8
res=$(it_sub_result sub 60)
lib_log "sub: $res"
inA=$(it_metric "$confA" mqttflow_stage_in_total router)
inB=$(it_metric "$confB" mqttflow_stage_in_total router)
lib_log "instance A took $inA, instance B took $inB"
grep -h "lost" "$LIB_TMP/mfA.log" "$LIB_TMP/mfB.log" >&2

f=$LIB_TMP/sub.log
expect_eq "unique over both instances" "$(result_field "$f" unique)" 4000
expect_eq "lost" "$(result_field "$f" lost)" 0
expect_eq "dup (each message to one member of the group)" "$(result_field "$f" dup)" 0
[[ ${inA:-0} -gt 0 && ${inB:-0} -gt 0 ]] || lib_fail "one instance took nothing: A $inA, B $inB"
expect_eq "A + B router IN" "$((inA + inB))" 4000
for c in "$confA" "$confB"; do
    expect_eq "ingress restarts ($c)" "$(it_metric "$c" mqttflow_stage_restarts_total ingress c1)" 0
done
# an ingress that loses its connection says "connection of c1 to ... lost"
if grep -q "connection of c1 .* lost" "$LIB_TMP/mfA.log" "$LIB_TMP/mfB.log"; then
    lib_fail "an ingress lost its connection while both instances ran (the same MQTT client id \"c1\" in both: the broker lets only one session have it)"
fi

IT_INSTANCE=$instB mf_PID=$mfB_PID IT_LOG=$LIB_TMP/mfB.log it_stop "$confB"
IT_INSTANCE=$instA mf_PID=$mfA_PID IT_LOG=$LIB_TMP/mfA.log it_stop "$confA"
lib_log "PASS"
