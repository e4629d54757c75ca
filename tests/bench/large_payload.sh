#!/usr/bin/env bash
# large_payload.sh: one large message through the pipeline against the same message published
# straight to the target broker, in the same run (issue 8 "Also noticed": 100 MiB took 31 s
# through the pipeline against 1.5 s direct). Not a test: prints the two times and their
# ratio.
#   SIZE=bytes (default 15 MiB)  RING / MAXP: runtime.ring_size / max_payload (64MiB / 16MiB;
#   100 MiB needs RING=512MiB MAXP=101MiB)  BUILD=build
#   tests/bench/large_payload.sh
# shellcheck source=tests/integration/39-pipeline-lib.sh
. "$(dirname "$0")/../integration/39-pipeline-lib.sh"
SIZE=${SIZE:-$((15 * 1024 * 1024))}
it_broker || lib_fail "broker did not start"
it_broker b2 || lib_fail "broker 2 did not start"
it_conf 'topics: [{name: "in/#", qos: 1}]' -- \
    1 "ring_size: \"${RING:-64MiB}\"" "max_payload: \"${MAXP:-16MiB}\"" <<EOF2
$(it_client t2 "$b2_PORT")
callbacks:
  echo: {module: "$IT_CB/echo.so", function: "echo"}
rules:
  - {rule: "e", topic: "in/#", action: "out"}
processing_chains:
$(it_echo_chain out t2)
EOF2
it_start "$conf"
head -c "$SIZE" /dev/urandom >"$LIB_TMP/big.bin"
elapsed() { # PORT_PUB TOPIC_PUB FILTER_SUB: seconds from publish to receipt on b2
    "$MOSQUITTO_SUB" -h 127.0.0.1 -p "$b2_PORT" -q 1 -t "$3" -C 1 -R >/dev/null &
    local s=$! t0 t1
    sleep 0.5 # the subscription is made (mosquitto_sub has no ready event)
    t0=$(date +%s%N)
    "$MOSQUITTO_PUB" -h 127.0.0.1 -p "$1" -q 1 -t "$2" -f "$LIB_TMP/big.bin"
    wait "$s"
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000000))
}
direct=$(elapsed "$b2_PORT" d/x 'd/#')
pipe=$(elapsed "$MQTT_PORT" in/x 'out/#')
echo "large_payload: $SIZE bytes: direct $direct ms, pipeline $pipe ms, ratio $(echo "scale=2; $pipe / $direct" | bc)"
it_stop "$conf"
