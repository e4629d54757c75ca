# 20-example-end-to-end: config/examples/config.yaml through the whole pipeline, two brokers.
#
# The example file is copied with its two ports pointed at this test's brokers (client1 = the
# source broker, client2 = the relay target), its module paths made absolute and its runtime:
# section replaced by a private one (2 workers). Asserted:
#  - an over-threshold temperature gives exactly one alert on alerts/temperature (broker 1)
#    with the right temperature; readings at or under 30 give none;
#  - humidity readings are classified dry / comfortable / humid on analysis/humidity;
#  - the 1 s sampler: once the windows of the first readings have all come out (their counts
#    add up to what was published), 5 readings published together give exactly one message
#    on processed/temperature on broker 2 with count 5 and their average, min and max plus
#    processed_at; a single reading after it gives one more window of count 1 (so nothing
#    else came out between them);
#  - mqttflow stop: exit 0, no shared-memory segment left.
# IT_EXAMPLE_CONF names another example with the same behaviour (60-python-example.sh: the
# Python flavour, whose *.py modules are made absolute the same way). A worker maps libpython
# with the Python flavour only.
# shellcheck source=tests/integration/39-pipeline-lib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/39-pipeline-lib.sh"

example=${IT_EXAMPLE_CONF:-$IT_EXAMPLES/config.yaml}
if [[ -z ${IT_EXAMPLE_CONF:-} ]]; then
    it_require "$IT_EXAMPLES/callbacks/temperature_alerts.so" "$IT_EXAMPLES/callbacks/humidity.so" \
        "$IT_EXAMPLES/callbacks/temperature_processing.so" "$MOSQUITTO_PUB" "$MOSQUITTO_SUB"
else
    it_require "$BUILD/bin/mqttflow-python.so" "$MOSQUITTO_PUB" "$MOSQUITTO_SUB"
fi

it_broker || lib_fail "broker 1 did not start"
it_broker b2 || lib_fail "broker 2 did not start"

conf=$LIB_TMP/config.yaml
{
    sed -e "s|^\(    port: \)1883\$|\1$MQTT_PORT|" \
        -e "s|^\(    port: \)1884\$|\1$b2_PORT|" \
        -e "s|module: \"callbacks/|module: \"$IT_EXAMPLES/callbacks/|" \
        -e "s|module: \"\([A-Za-z0-9_]*\.py\)\"|module: \"$(dirname "$example")/\1\"|" \
        "$example" |
        awk '/^runtime:/ { skip = 1; next } /^[a-z_]+:/ { skip = 0 } !skip'
    it_runtime 2
} >"$conf"
grep -q "port: $MQTT_PORT\$" "$conf" && grep -q "port: $b2_PORT\$" "$conf" ||
    lib_fail "could not patch the ports of config/examples/config.yaml (ports 1883/1884 moved?)"
if grep -q 'module: "callbacks/' "$conf"; then
    lib_fail "a module path of the example stayed relative"
fi
"$MQTTFLOW" check "$conf" >"$LIB_TMP/check.log" 2>&1 || {
    cat "$LIB_TMP/check.log" >&2
    lib_fail "mqttflow check refused the patched example"
}

it_start "$conf"
# libpython is mapped by a worker only when the config has Python callbacks
wpid=$(it_metric "$conf" mqttflow_stage_pid worker 0)
[[ -n $wpid && -r /proc/$wpid/maps ]] || lib_fail "no pid for worker 0"
if grep -q libpython "/proc/$wpid/maps"; then py_mapped=1; else py_mapped=0; fi
expect_eq "libpython mapped by worker 0" "$py_mapped" "$([[ -n ${IT_EXAMPLE_CONF:-} ]] && echo 1 || echo 0)"
it_msub out1 "$MQTT_PORT" alerts/probe 'alerts/#' 'analysis/#'
it_msub out2 "$b2_PORT" processed/probe 'processed/#'

pub() { # PORT TOPIC PAYLOAD...: one connection, QoS 1, in order
    local port=$1 topic=$2
    shift 2
    printf '%s\n' "$@" | "$MOSQUITTO_PUB" -h 127.0.0.1 -p "$port" -q 1 -t "$topic" -l ||
        lib_fail "mosquitto_pub to $topic failed"
}
count_lines() { it_lines "$1" "$2" | wc -l; }

# ---- alerts and humidity
pub "$MQTT_PORT" sensors/temperature 25 31.5 30 '{"temperature": 42.25}'
pub "$MQTT_PORT" sensors/humidity 20 45 '{"humidity": 75}'

it_until 20 '[[ $(count_lines out1 alerts/temperature) -ge 2 ]]' ||
    lib_fail "alerts: $(count_lines out1 alerts/temperature) of 2 arrived in 20 s"
it_until 20 '[[ $(count_lines out1 analysis/humidity) -ge 3 ]]' ||
    lib_fail "humidity: $(count_lines out1 analysis/humidity) of 3 analyses arrived in 20 s"

mapfile -t alerts < <(it_lines out1 alerts/temperature)
want_alert() {
    printf '{"alert":"high_temperature","temperature":%s,"threshold":30,"topic":"sensors/temperature","client_id":"client1"}' "$1"
}
expect_eq "alert 1 (31.5; sequential rule keeps order)" "${alerts[0]}" "$(want_alert 31.5)"
expect_eq "alert 2 (42.25)" "${alerts[1]}" "$(want_alert 42.25)"

# threaded rule: the three analyses may come in any order
got_h=$(it_lines out1 analysis/humidity | sort)
want_h=$(printf '%s\n' '{"humidity":20,"class":"dry"}' '{"humidity":45,"class":"comfortable"}' \
    '{"humidity":75,"class":"humid"}' | sort)
expect_eq "humidity analyses" "$got_h" "$want_h"

# ---- sampler windows: the 4 readings above come out in 1 or 2 windows
window_total() { # sum of "count" over processed/temperature so far
    it_lines out2 processed/temperature | sed -n 's/.*"count":\([0-9]*\).*/\1/p' |
        awk '{ s += $1 } END { print s + 0 }'
}
it_until 20 '[[ $(window_total) -ge 4 ]]' ||
    lib_fail "sampler: windows covering $(window_total) of the first 4 readings arrived in 20 s"
expect_eq "readings in the first windows" "$(window_total)" 4
first_windows=$(count_lines out2 processed/temperature)
lib_log "first readings came out in $first_windows window(s)"
[[ $first_windows -le 2 ]] || lib_fail "4 readings sent within a moment gave $first_windows windows"

# no window is open now: 5 readings in one burst make one window
pub "$MQTT_PORT" sensors/temperature 20 21 22 23 24.5
it_until 20 '[[ $(count_lines out2 processed/temperature) -ge $((first_windows + 1)) ]]' ||
    lib_fail "sampler: no window for the 5 readings within 20 s"
# a single reading after it: one more window of count 1
pub "$MQTT_PORT" sensors/temperature 10
it_until 20 '[[ $(count_lines out2 processed/temperature) -ge $((first_windows + 2)) ]]' ||
    lib_fail "sampler: no window for the single reading within 20 s"

mapfile -t windows < <(it_lines out2 processed/temperature)
lib_log "windows: ${windows[*]}"
[[ ${#windows[@]} -eq $((first_windows + 2)) ]] ||
    lib_fail "want $((first_windows + 2)) windows, got ${#windows[@]}: ${windows[*]}"
w5=${windows[first_windows]}
w1=${windows[first_windows + 1]}
[[ $w5 =~ ^\{\"count\":5,\"avg\":22\.100,\"min\":20,\"max\":24\.5,\"processed_at\":[0-9]+\}$ ]] ||
    lib_fail "window of 20 21 22 23 24.5: got '$w5', want count 5, avg 22.100, min 20, max 24.5"
[[ $w1 =~ ^\{\"count\":1,\"avg\":10\.000,\"min\":10,\"max\":10,\"processed_at\":[0-9]+\}$ ]] ||
    lib_fail "window of 10: got '$w1'"

# the readings of the later windows were under the threshold: still exactly 2 alerts
expect_eq "alerts in total" "$(count_lines out1 alerts/temperature)" 2
expect_eq "humidity analyses in total" "$(count_lines out1 analysis/humidity)" 3

it_stop "$conf"
lib_log "PASS"
