# 33-spool-target-down: a target broker that is down does not hold up the other targets; what
# is for it is spooled under runtime.spool_dir and replayed in order when it is back (DESIGN
# §1 relay "spooling to disk while a target broker is down", §5 QoS 1 out).
#
# One worker (so both rules share one worker->relay ring). Broker 1: source c1 (in/#), also
# the target of rule "up"; broker 2: target "dn" of rule "dn" (persistence on: the test's
# subscriber there is a persistent session that must survive the broker's restart).
# Broker 2 is stopped, then 1,000 messages go to each rule at 500/s. Asserted (every check
# runs, failures are reported together):
#  - all 1,000 of "up" arrive on broker 1 while broker 2 is still down;
#  - the spool dir holds data while broker 2 is down;
#  - broker 2 started again: all 1,000 of "dn" arrive, in order, none lost;
#  - clean stop.
# shellcheck source=tests/integration/39-pipeline-lib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/39-pipeline-lib.sh"

it_require "$IT_CB/echo.so"
it_broker_b2

it_conf_to dn "up:in/up/#:c1 dn:in/dn/#:dn" 1 'topics: [{name: "in/#", qos: 1}]'
it_start "$conf"

fails=()
it_sub sub_dn -p "$b2_PORT" -c "it$$-dn" -P -t 'out/#' -q 1 -n 1000 -I 40 -T 58
broker_stop b2
lib_log "broker 2 stopped"
it_sub sub_up -p "$MQTT_PORT" -t 'out/#' -q 1 -n 1000 -I 10 -T 30
"$MFPUB" -p "$MQTT_PORT" -q 1 -i 1 -n 1000 -r 500 -t in/up/a >"$LIB_TMP/pub_up.log" 2>&1 &
pub_up=$!
lib_track "$pub_up"
it_mfpub pub_dn -p "$MQTT_PORT" -q 1 -i 2 -n 1000 -r 500 -t in/dn/a
wait "$pub_up" || lib_fail "mfpub (up) did not complete"

res=$(it_sub_result sub_up 40)
lib_log "sub_up (broker 2 down): $res"
[[ $(result_field "$LIB_TMP/sub_up.log" unique) == 1000 ]] ||
    fails+=("rule up: $(result_field "$LIB_TMP/sub_up.log" unique) of 1000 arrived while broker 2 was down (head-of-line blocking behind the down target)")
spooled=$(find "$LIB_TMP/spool" -type f -size +0 2>/dev/null | wc -l)
lib_log "spool files while broker 2 is down: $spooled"
[[ $spooled -gt 0 ]] || fails+=("nothing spooled under runtime.spool_dir while broker 2 was down")
it_status "$conf" >&2

broker_restart b2 || lib_fail "broker 2 did not come back"
lib_log "broker 2 back"
res=$(it_sub_result sub_dn 60)
lib_log "sub_dn: $res"
f=$LIB_TMP/sub_dn.log
[[ $(result_field "$f" unique) == 1000 && $(result_field "$f" lost) == 0 ]] ||
    fails+=("rule dn: unique $(result_field "$f" unique), lost $(result_field "$f" lost) after broker 2 came back, want 1000 and 0")
[[ $(result_field "$f" reorder) == 0 ]] || fails+=("rule dn: $(result_field "$f" reorder) reordered")

# 81-relay-io-thread sources this with the path the relay must have logged (relay/pump.c)
if [[ -n ${RELAY_PATH_EXPECT:-} ]] && ! grep -qF "$RELAY_PATH_EXPECT" "$IT_LOG"; then
    fails+=("the relay did not log \"$RELAY_PATH_EXPECT\"")
fi
it_stop "$conf"
if [[ ${#fails[@]} -gt 0 ]]; then
    for m in "${fails[@]}"; do lib_log "FAIL: $m"; done
    lib_fail "${#fails[@]} check(s) failed"
fi
lib_log "PASS"
