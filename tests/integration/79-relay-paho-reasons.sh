# 79-relay-paho-reasons: issue 8 "Clearer errors" on the relay's paho path (TLS, WebSocket or
# runtime.mqtt_io: paho): its log lines name paho's real reason, as the ingress's do, instead
# of a generic "could not be reached" or "no cause given".
#
# MQTTFLOW_MQTT_IO=paho. Source c1 on broker 1; three MQTT 5 targets, one rule each:
#   t2 on broker 2, which needs a password (password_file), given a wrong one: the connect
#      line says the broker refused the credentials, with mosquitto's reason 0x87 (not
#      authorized);
#   t3 on a port where nothing listens: the line carries paho's "TCP/TLS connect failure";
#   t4 on broker 1: another client connects with the relay's client id (t4-relay-<instance>)
#      and, as the relay does, reconnects whenever it is thrown out: the two take the session
#      from each other, and the relay's lost line says so (mosquitto 2.0 closes the old
#      connection without an MQTT 5 DISCONNECT, so the relay judges by connections that end
#      within seconds of their connect, as the ingress does; a broker that sends reason 0x8E
#      is named by it).
# shellcheck source=tests/integration/39-pipeline-lib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/39-pipeline-lib.sh"

it_require "$IT_CB/echo.so" /usr/bin/mosquitto_passwd
export MQTTFLOW_MQTT_IO=paho

it_broker || lib_fail "broker 1 did not start"
pwfile=$LIB_TMP/passwd
touch "$pwfile"
chmod 600 "$pwfile"
mosquitto_passwd -b "$pwfile" u right-secret || lib_fail "mosquitto_passwd failed"
it_broker B2 "allow_anonymous false" "password_file $pwfile" || lib_fail "broker 2 did not start"
NOPORT=$(free_port) || lib_fail "no free port"
printf 'wrong-secret' >"$LIB_TMP/t2.pw"
chmod 600 "$LIB_TMP/t2.pw"

conf=$LIB_TMP/conf.yaml
{
    echo "mqtt_clients:"
    it_client c1 "$MQTT_PORT" 'topics: [{name: "in/#", qos: 1}]'
    quick='reconnect: {min_delay: 0.2, max_delay: 1}'
    it_client t2 "$B2_PORT" 'mqtt_version: 5' 'username: "u"' \
        "password_file: \"$LIB_TMP/t2.pw\"" "$quick"
    it_client t3 "$NOPORT" 'mqtt_version: 5' "$quick"
    it_client t4 "$MQTT_PORT" 'mqtt_version: 5' "$quick"
    it_echo_rules '{rule: "r2", topic: "in/2", action: "to2"}' \
        '{rule: "r3", topic: "in/3", action: "to3"}' '{rule: "r4", topic: "in/4", action: "to4"}'
    for t in 2 3 4; do it_echo_chain "to$t" "t$t"; done
    it_runtime 1
} >"$conf"
it_start "$conf"

# connect_fail_says ID TEXT...: the relay's first connect-failure line of client ID contains
# every TEXT
connect_fail_says() {
    local id=$1 line want
    shift
    CF_ID=$id
    it_until 20 'grep -q "client $CF_ID: connect to .* failed" "$IT_LOG"' ||
        lib_fail "no connect failure of $id: $(grep relay "$IT_LOG" | tail -n 5)"
    line=$(grep -m1 "client $id: connect to .* failed" "$IT_LOG")
    lib_log "$id: $line"
    for want in "$@"; do
        [[ $line == *"$want"* ]] || lib_fail "$id's line does not say \"$want\": $line"
    done
}
# t2: refused credentials, named with the broker's reason code
connect_fail_says t2 "refused the credentials: not authorized" "reason 0x87"
# t3: nothing listens; paho's own message is passed on
connect_fail_says t3 "could not be reached" "TCP/TLS connect failure"

# t4: another client takes the relay's session over, again and again
it_until 20 'grep -q "client t4: connected to" "$IT_LOG"' ||
    lib_fail "t4 never connected: $(grep relay "$IT_LOG" | tail -n 5)"
timeout 15 "$MOSQUITTO_SUB" -V mqttv5 -p "$MQTT_PORT" -i "t4-relay-$IT_INSTANCE" -t x \
    >/dev/null 2>&1 &
lib_track $!
it_until 20 'grep -q "client t4: connection to .* lost.*another client with the same client id takes the session over" "$IT_LOG"' ||
    lib_fail "t4's lost lines do not name the takeover: $(grep 'client t4' "$IT_LOG" | tail -n 4)"
lib_log "t4: $(grep -m1 "client t4: connection to .* lost.*takes the session over" "$IT_LOG")"
it_stop "$conf"
lib_log "PASS"
