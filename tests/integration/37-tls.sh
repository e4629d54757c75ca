# 37-tls: the pipeline talks TLS to its brokers (DESIGN §3: mqtts:// and tls: {ca, cert, key,
# verify} on clients; reference.yaml).
#
# A throw-away CA and a server certificate for 127.0.0.1 (openssl). One mosquitto with a plain
# listener (the test's own mfpub/mfsub) and a TLS listener (the pipeline's clients). c1
# subscribes in/# over mqtts:// with tls: {ca: <ca>, verify: true}; the relay target c2 is the
# same broker over TLS too. One sequential echo rule relays to c2 as out/... at QoS 1.
# Asserted: the pipeline starts, 1,000 QoS 1 messages arrive once and in order, and the broker
# log shows the ingress (c1) and the relay connecting on the TLS port; clean stop.
# shellcheck source=tests/integration/39-pipeline-lib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/39-pipeline-lib.sh"

command -v openssl >/dev/null || {
    echo "SKIP: openssl not installed"
    exit 77
}
it_require "$IT_CB/echo.so"

pki=$LIB_TMP/pki
mkdir -p "$pki"
(
    cd "$pki" &&
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=mqttflow-it-ca" \
            -keyout ca.key -out ca.pem &&
        openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server.key \
            -out server.csr &&
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >san.ext &&
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
            -extfile san.ext -out server.pem
) >"$LIB_TMP/openssl.log" 2>&1 || {
    cat "$LIB_TMP/openssl.log" >&2
    lib_fail "could not make the test certificates"
}
tls_port=$(free_port) || lib_fail "no free port"
it_broker MQTT "log_type notice" "listener $tls_port 127.0.0.1" "cafile $pki/ca.pem" \
    "certfile $pki/server.pem" "keyfile $pki/server.key" || lib_fail "broker did not start"
wait_for 10 port_is_open "$tls_port" || lib_fail "the TLS listener did not open"

conf=$LIB_TMP/conf.yaml
{
    cat <<EOF
mqtt_clients:
  - client_id: "c1"
    broker_url: "mqtts://127.0.0.1"
    port: $tls_port
    tls: {ca: "$pki/ca.pem", verify: true}
    topics: [{name: "in/#", qos: 1}]
  - client_id: "c2"
    broker_url: "mqtts://127.0.0.1"
    port: $tls_port
    tls: {ca: "$pki/ca.pem", verify: true}
callbacks:
  echo: {module: "$IT_CB/echo.so", function: "echo"}
rules:
  - {rule: "fwd", topic: "in/#", action: "to_c2", execution_mode: "sequential"}
processing_chains:
  to_c2:
    - {step: "custom_processor", config: {callback: "echo", prefix: "out/"}}
    - {step: "relay", config: {target_client_id: "c2", qos: 1}}
EOF
    it_runtime 1
} >"$conf"
"$MQTTFLOW" check "$conf" >"$LIB_TMP/check.log" 2>&1 || {
    cat "$LIB_TMP/check.log" >&2
    lib_fail "mqttflow check refused the TLS config"
}
it_start "$conf"

it_sub sub -p "$MQTT_PORT" -t 'out/#' -q 1 -n 1000 -I 10 -T 40
it_mfpub pub -p "$MQTT_PORT" -q 1 -i 1 -n 1000 -t in/a
res=$(it_sub_result sub 60)
lib_log "sub: $res"
f=$LIB_TMP/sub.log
expect_eq "unique" "$(result_field "$f" unique)" 1000
expect_eq "lost" "$(result_field "$f" lost)" 0
expect_eq "dup" "$(result_field "$f" dup)" 0
expect_eq "reorder" "$(result_field "$f" reorder)" 0
# "New connection from 127.0.0.1:P on port TLS." then "New client connected from 127.0.0.1:P as ID"
conns=$(awk -v p=" on port $tls_port." '
    /New connection from/ && index($0, p) { sub(/.*from /, ""); sub(/ on port.*/, ""); tls[$0] = 1 }
    /New client connected from/ { a = $0; sub(/.*connected from /, "", a); sub(/ as .*/, "", a)
                                  if (a in tls) print }' "$MQTT_LOG")
lib_log "clients on the TLS port: $(grep -o 'as [^ ]*' <<<"$conns" | tr '\n' ' ')"
grep -q "as c1 " <<<"$conns" || lib_fail "the ingress of c1 did not connect on the TLS port"
grep -q "as c2" <<<"$conns" || lib_fail "the relay's c2 did not connect on the TLS port"
it_stop "$conf"
lib_log "PASS"
