# 74-config-change-queued: issue 8 item 5. Records queued under one configuration never
# disappear silently when the next run has another one: those the new configuration cannot run
# (its rules changed, so the rule numbers in the records mean other rules) become dead letters
# with reason "configuration changed", topic and payload intact.
#
# Run 1: one echo rule; the router is stopped (SIGSTOP) and 20 QoS 1 messages are published,
# so they wait in the ingress ring; the supervisor is killed (SIGKILL; its stages die with
# it) and the ring stays. Run 2: the same file with one more rule. Asserted: 20 dead letters
# with reason "configuration changed", each with its payload; clean stop.
# shellcheck source=tests/integration/faultlib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/faultlib.sh"

it_require "$IT_CB/echo.so"
it_broker || lib_fail "broker did not start"

conf=$LIB_TMP/conf.yaml
write_conf() { # EXTRA_RULE_LINE
    {
        echo "mqtt_clients:"
        it_client c1 "$MQTT_PORT" 'topics: [{name: "in/#", qos: 1}]'
        cat <<EOF2
callbacks:
  echo: {module: "$IT_CB/echo.so", function: "echo"}
rules:
  - {rule: "e", topic: "in/#", callback: "echo"}
$1
runtime:
  instance: "$IT_INSTANCE"
  workers: 1
  control_socket: "$LIB_TMP/$IT_INSTANCE.sock"
  spool_dir: "$LIB_TMP/spool"
  dead_letter: {dir: "$LIB_TMP/dead"}
EOF2
    } >"$conf"
}
it_runtime 1 >/dev/null # sets IT_INSTANCE (and its cleanup)
write_conf ""
it_start "$conf"
router=$(it_metric "$conf" mqttflow_stage_pid router)
grep -q mqttflow "/proc/$router/cmdline" || lib_fail "pid $router is not the router"
kill -STOP "$router"
it_mfpub pub -p "$MQTT_PORT" -t in/q -n 20 -q 1 -i 3
it_until 10 '[[ $(it_metric "$conf" mqttflow_stage_in_total ingress c1) == 20 ]]' ||
    lib_fail "the ingress did not take the 20 messages"
kill -KILL "$mf_PID"
wait "$mf_PID" 2>/dev/null
kill -KILL "$router" 2>/dev/null
# the stages die with their supervisor (parent-death signal); the run after waits for that
it_until 10 '! kill -0 '"$router"' 2>/dev/null' || lib_fail "the router outlived its supervisor"

write_conf '  - {rule: "e2", topic: "other/#", callback: "echo"}'
it_start "$conf" 30 mf2
dead=$LIB_TMP/dead/dead-letters.jsonl
n=$(grep -c '"reason": *"configuration changed' "$dead" 2>/dev/null)
grep "queued record" "$IT_LOG" >&2
expect_eq "dead letters with reason configuration changed" "${n:-0}" 20
expect_eq "their topic" "$(grep -c '"topic": *"in/q"' "$dead")" 20
it_stop "$conf"
lib_log "PASS"
