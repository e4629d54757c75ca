# 73-shm-too-small: issue 8 item 6. Rings larger than the free space of /dev/shm are refused
# by `check` and by `run` with one clear error naming /dev/shm and the sizes, exit 2 (a
# configuration error: not respawned), and `run` creates no segment. Before, both passed and
# the stages died with SIGBUS in a loop once the rings filled.
# The rings asked for: runtime.ring_size 1 GiB x (1 ingress + 2 x W workers), with W chosen
# so that the total is above the free space of this machine's /dev/shm.
# shellcheck source=tests/integration/39-pipeline-lib.sh
. "$(dirname "$0")/39-pipeline-lib.sh"

it_require "$IT_CB/echo.so"
free=$(df -B1 --output=avail /dev/shm | tail -n 1 | tr -d ' ')
[[ $free =~ ^[0-9]+$ ]] || lib_fail "cannot read the free space of /dev/shm"
W=$((free / (2 << 30) + 1))
((W <= 64)) || {
    echo "SKIP: /dev/shm has $free bytes free, more than 64 workers of 1 GiB rings can exceed"
    exit 77
}
conf=$LIB_TMP/conf.yaml
{
    cat <<EOF2
mqtt_clients:
  - {client_id: "c1", broker_url: "mqtt://127.0.0.1", port: 1, topics: [{name: "in/#", qos: 1}]}
callbacks:
  echo: {module: "$IT_CB/echo.so", function: "echo"}
rules:
  - {rule: "e", topic: "in/#", callback: "echo"}
EOF2
    it_runtime "$W" 'ring_size: "1GiB"'
} >"$conf"

"$MQTTFLOW" check "$conf" >"$LIB_TMP/check.log" 2>&1
expect_eq "check exit code" $? 2
grep -q "/dev/shm has [0-9]* bytes free" "$LIB_TMP/check.log" ||
    lib_fail "check did not name /dev/shm and the sizes: $(cat "$LIB_TMP/check.log")"

"$MQTTFLOW" run "$conf" >"$LIB_TMP/run.log" 2>&1
expect_eq "run exit code" $? 2
grep -q "/dev/shm has [0-9]* bytes free" "$LIB_TMP/run.log" ||
    lib_fail "run did not name /dev/shm and the sizes: $(cat "$LIB_TMP/run.log")"
expect_eq "segments left by run" "$(it_shm_left "$IT_INSTANCE")" 0
grep /dev/shm "$LIB_TMP/run.log" >&2
lib_log "PASS"
