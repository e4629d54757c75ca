# 80-rule-error-counts: issue 8 items 11 and 12. The router's per-rule counts of messages a
# rule could not judge (its regex stopped at the match limit; its condition met a payload that
# is not JSON) are shown by `mqttflow status --rules` (REGEX_LIMIT, JSON_INVALID) and /metrics
# (mqttflow_rule_regex_limit_total, mqttflow_rule_json_invalid_total), not only in the log,
# and they count across a restart of the router.
#
# Rule "slow": regex ^s/(a+)+$ (catastrophic backtracking on s/aaa...ab); rule "cond":
# condition payload.t > 1 on j/#. 5 such topics and 5 payloads that are not JSON: the counts
# are 5 and 5 (and 0 for the other rule); the router is killed (SIGKILL), respawned, and 1
# more of each makes them 6 and 6.
# shellcheck source=tests/integration/39-pipeline-lib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/39-pipeline-lib.sh"

it_require "$IT_CB/echo.so"
it_broker || lib_fail "broker did not start"

conf=$LIB_TMP/conf.yaml
{
    echo "mqtt_clients:"
    it_client c1 "$MQTT_PORT" 'topics: [{name: "s/#", qos: 1}, {name: "j/#", qos: 1}]'
    it_echo_rules '{rule: "slow", topic: "s/#", regex: "^s/(a+)+$", action: "out"}' \
        '{rule: "cond", topic: "j/#", condition: "payload.t > 1", action: "out"}'
    it_echo_chain out
    it_runtime 1
} >"$conf"
it_start "$conf"
it_until 20 'grep -q "subscribed to" "$IT_LOG"' || lib_fail "c1 never subscribed"

bad_topic=s/$(printf 'a%.0s' {1..40})b
# send N: N catastrophic topics and N payloads that are not JSON, QoS 1
send() {
    local i
    for ((i = 0; i < $1; i++)); do
        "$MOSQUITTO_PUB" -p "$MQTT_PORT" -q 1 -t "$bad_topic" -m x || lib_fail "publish failed"
        "$MOSQUITTO_PUB" -p "$MQTT_PORT" -q 1 -t j/x -m '{"t":' || lib_fail "publish failed"
    done
}
# counts_are LIMIT INVALID: what /metrics says of rule slow and rule cond
counts_are() {
    W_LIMIT=$1 W_INVALID=$2
    it_until 20 '[[ $(rule_metric mqttflow_rule_regex_limit_total slow) == "$W_LIMIT" &&
        $(rule_metric mqttflow_rule_json_invalid_total cond) == "$W_INVALID" ]]' ||
        lib_fail "want regex_limit $1 and json_invalid $2: $(it_prom "$conf" | grep -E 'regex_limit|json_invalid')"
}
rule_metric() {
    it_prom "$conf" | awk -v m="$1{" -v r="rule=\"$2\"" 'index($0, m) == 1 && index($0, r) { print $NF }'
}

send 5
counts_are 5 5
expect_eq "regex_limit of rule cond" "$(rule_metric mqttflow_rule_regex_limit_total cond)" 0
expect_eq "json_invalid of rule slow" "$(rule_metric mqttflow_rule_json_invalid_total slow)" 0
rules=$("$MQTTFLOW" status --rules "$conf" 2>&1)
echo "$rules" >&2
grep -q "REGEX_LIMIT JSON_INVALID" <<<"$rules" || lib_fail "status --rules has no columns for them"
read -r -a row < <(grep '^slow ' <<<"$rules")
expect_eq "status --rules: slow's REGEX_LIMIT" "${row[7]}" 5
read -r -a row < <(grep '^cond ' <<<"$rules")
expect_eq "status --rules: cond's JSON_INVALID" "${row[8]}" 5

# a new router process adds to them
router=$(it_metric "$conf" mqttflow_stage_pid router)
[[ -n $router && $router -gt 0 ]] || lib_fail "no router pid"
kill -KILL "$router"
it_until 30 'r=$(it_metric "$conf" mqttflow_stage_pid router); [[ -n $r && $r -gt 0 && $r != "$router" ]]' ||
    lib_fail "the router was not respawned"
send 1
counts_are 6 6
it_stop "$conf"
lib_log "PASS"
