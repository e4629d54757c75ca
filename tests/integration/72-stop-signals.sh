# 72-stop-signals: issue 8 item 7. One stop request delivered twice within a millisecond (a
# wrapper such as timeout(1), an init system forwarding SIGTERM to the group) is one stop:
# the instance drains and stops cleanly (exit 0, no segment left, the workers' state segment
# included). A second signal at least a second later still forces (a stage that cannot stop:
# a callback hanging in the worker), and the rings and the workers' state are then kept and
# the log says so.
# shellcheck source=tests/integration/39-pipeline-lib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/39-pipeline-lib.sh"

it_require "$IT_CB/echo.so" "$IT_CB/hang_on.so"
it_broker || lib_fail "broker did not start"

it_conf 'topics: [{name: "in/#", qos: 1}]' -- 1 "callback_timeout_ms: 60000" <<EOF2
callbacks:
  echo: {module: "$IT_CB/echo.so", function: "echo"}
  hang: {module: "$IT_CB/hang_on.so", function: "hang_on"}
rules:
  - {rule: "e", topic: "in/e", action: "out", execution_mode: "sequential"}
  - {rule: "h", topic: "in/h", callback: "hang", execution_mode: "sequential"}
processing_chains:
  out:
    - {step: "sampler", config: {duration: 60}}
    - {step: "custom_processor", config: {callback: "echo", prefix: "out/"}}
EOF2
it_start "$conf"
it_mfpub pub -p "$MQTT_PORT" -t in/e -n 10 -q 1 -i 1
it_until 10 '[[ $(it_metric "$conf" mqttflow_stage_in_total worker 0) == 10 ]]' ||
    lib_fail "the worker did not take the 10 messages"
[[ -e /dev/shm/mqttflow.$IT_INSTANCE.w0.state ]] || lib_fail "no worker state segment"

# the same request twice, a few ms apart: the second once the first was taken (two pending
# SIGTERMs would merge into one signal). A drained instance stops within a few ms, so the
# router is held (SIGSTOP) until the second was answered: otherwise the second signal could
# find the supervisor gone and the test would prove nothing.
router=$(it_metric "$conf" mqttflow_stage_pid router)
[[ -n $router && $router -gt 0 ]] || lib_fail "no router pid"
grep -q mqttflow "/proc/$router/cmdline" || lib_fail "pid $router is not the router"
kill -STOP "$router"
kill -TERM "$mf_PID"
it_until 5 'grep -q "SIGTERM received" "$IT_LOG"' || lib_fail "the first SIGTERM was not taken"
kill -TERM "$mf_PID"
it_until 5 'grep -q "the same request, ignored" "$IT_LOG"' ||
    lib_fail "the second SIGTERM was not reported"
kill -CONT "$router"
it_assert_clean_exit 30
grep -q "killing every stage" "$IT_LOG" && lib_fail "a doubled SIGTERM was taken as a second stop"

# a stage that cannot stop: a second signal 1 s later forces, and what is left is kept
it_start "$conf" 30 mf2
"$MOSQUITTO_PUB" -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t in/h -m HANG || lib_fail "publish failed"
it_until 10 '[[ $(it_metric "$conf" mqttflow_stage_in_total worker 0) -ge 1 ]]' ||
    lib_fail "the hanging message did not reach the worker"
kill -TERM "$mf_PID"
sleep 1.2 # the operator's second Ctrl-C, a second later (the scenario, not a synchronisation)
kill -TERM "$mf_PID"
it_wait_exit "$mf_PID" 20 || lib_fail "the forced stop did not end the supervisor"
grep -q "second stop signal: killing every stage" "$IT_LOG" || lib_fail "no forced stop"
grep -q "kept .* segment(s) for its next run" "$IT_LOG" || lib_fail "the stop did not say what it kept"
lib_log "PASS"
