# 50-observe-http: the supervisor's HTTP endpoint (runtime.metrics.listen) and the status
# views for scripts (docs/metrics.md).
#
# One instance with two rules (echo -> out/#, and "failing", whose callback returns an error),
# the endpoint on a free port. Asserted:
# - /healthz and /readyz answer 200 once running; /metrics is parsed by Debian's
#   python3-prometheus-client, has HELP and TYPE for every family, the per-stage, per-rule,
#   per-client and instance families, and the same families and series as `status --prom`
#   (one source for both);
# - after 120 messages to the echo rule and 30 to the failing one: mqttflow_rule_matched_total,
#   `status --rules` and `status --json` (parsed by python3's json) say 120/30 matched and
#   processed, 0/30 errors, and a p50 for each;
# - 404 for another path, 405 for POST, a garbage request line gets a 4xx and the endpoint
#   goes on answering;
# - 200 idle connections plus 20 that stall mid-header: `mqttflow status` and /metrics still
#   answer while they are open;
# - with the output broker stopped, /readyz answers 503 naming the client, /healthz stays 200;
#   back when the broker is;
# - a worker killed 7 times in a row (restart intensity) is failed: /healthz 503 naming it;
#   `mqttflow restart worker 0` brings 200 back;
# - `status --watch` draws the table and quits on SIGINT with exit 0; on a pty it uses the
#   alternate screen, quits on q and gives the terminal its mode back.
# shellcheck source=tests/integration/39-pipeline-lib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/39-pipeline-lib.sh"

it_require "$IT_CB/echo.so"
command -v curl >/dev/null || { echo "SKIP: curl not installed"; exit 77; }
# Debian's python3 (where python3-prometheus-client is), not another one first in PATH
PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3
"$PY" -c 'import prometheus_client' 2>/dev/null ||
    { echo "SKIP: python3-prometheus-client not installed"; exit 77; }
it_broker || lib_fail "broker did not start"
port=$(free_port) || lib_fail "no free port"
url=http://127.0.0.1:$port

it_conf 'topics:' '  - {name: "in/#", qos: 1}' -- 1 "metrics: {listen: \"127.0.0.1:$port\"}" <<EOF
callbacks:
  echo: {module: "$IT_CB/echo.so", function: "echo"}
  fail: {module: "$IT_CB/echo.so", function: "fail"}
rules:
  - {rule: "echo_rule", topic: "in/echo/#", action: "echo_chain"}
  - {rule: "failing", topic: "in/fail/#", action: "fail_chain"}
processing_chains:
  echo_chain:
    - {step: "custom_processor", config: {callback: "echo", prefix: "out/"}}
  fail_chain:
    - {step: "custom_processor", config: {callback: "fail"}}
EOF
it_start "$conf"

# http_code PATH [CURL_ARGS...]: the status code (body in $LIB_TMP/body)
http_code() {
    local path=$1
    shift
    curl -s -m 10 -o "$LIB_TMP/body" -w '%{http_code}' "$@" "$url$path"
}

it_until 20 '[[ $(http_code /readyz) == 200 ]]' || lib_fail "/readyz: $(http_code /readyz) $(cat "$LIB_TMP/body")"
expect_eq "/healthz" "$(http_code /healthz)" 200

it_sub sub -p "$MQTT_PORT" -t 'out/#' -q 1 -n 120 -I 10
it_mfpub p1 -p "$MQTT_PORT" -t in/echo/a -n 120 -q 1 -i 1
it_mfpub p2 -p "$MQTT_PORT" -t in/fail/a -n 30 -q 1 -i 2
it_sub_result sub 30 >/dev/null
expect_eq "echo outputs" "$(result_field "$LIB_TMP/sub.log" unique)" 120
it_until 20 '[[ $(it_metric "$conf" mqttflow_stage_in_total worker 0) == 150 ]]' ||
    lib_fail "worker in: $(it_metric "$conf" mqttflow_stage_in_total worker 0), want 150"

# /metrics through the real parser; its families and series = those of status --prom
expect_eq "/metrics" "$(http_code /metrics)" 200
cp "$LIB_TMP/body" "$LIB_TMP/metrics.txt"
it_prom "$conf" >"$LIB_TMP/prom.txt"
"$PY" - "$LIB_TMP/metrics.txt" "$LIB_TMP/prom.txt" <<'EOF' || lib_fail "/metrics did not parse as expected"
import sys
from prometheus_client.parser import text_string_to_metric_families

def load(path):
    text = open(path).read()
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name = line.split()[2]
            assert "# HELP " + name + " " in text, "no HELP for " + name
    return fams

http, cli = load(sys.argv[1]), load(sys.argv[2])
series = lambda fams: {(s.name, tuple(sorted(s.labels.items()))) for f in fams.values() for s in f.samples}
assert set(http) == set(cli), (set(http) ^ set(cli))
assert series(http) == series(cli), series(http) ^ series(cli)
for name in http:
    assert name.startswith("mqttflow_"), name

def value(fam, **labels):
    for s in http[fam].samples:
        if all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise AssertionError("no sample %s %s" % (fam, labels))

# prometheus_client drops the _total suffix from a counter family's name
assert value("mqttflow_stage_in", stage="router") == 150
assert value("mqttflow_stage_out", stage="relay") == 120
assert value("mqttflow_rule_matched", rule="echo_rule") == 120
assert value("mqttflow_rule_matched", rule="failing") == 30
assert value("mqttflow_rule_processed", rule="echo_rule") == 120
assert value("mqttflow_rule_errors", rule="failing") == 30
assert value("mqttflow_rule_errors", rule="echo_rule") == 0
assert http["mqttflow_rule_processing_seconds"].type == "histogram"
assert value("mqttflow_rule_processing_seconds", rule="echo_rule") is not None
assert value("mqttflow_client_connected", client="c1") == 1
assert value("mqttflow_up") == 1
assert "mqttflow_stage_cpu_seconds" in http and "mqttflow_stage_ring_fill_ratio" in http
assert "mqttflow_spool_bytes" in http and "mqttflow_dead_letters" in http
assert http["mqttflow_stage_restarts"].type == "counter"
print("metrics ok:", len(http), "families")
EOF

# --rules and --json, against what was sent
"$MQTTFLOW" status --rules "$conf" >"$LIB_TMP/rules.txt" || lib_fail "status --rules failed"
lib_log "rules:"$'\n'"$(cat "$LIB_TMP/rules.txt")"
read -r m p e d p50 < <(awk '$1 == "echo_rule" { print $2, $3, $4, $5, $6 }' "$LIB_TMP/rules.txt")
expect_eq "echo_rule matched/processed/errors/dead" "$m $p $e $d" "120 120 0 0"
[[ $p50 != - ]] || lib_fail "echo_rule has no p50"
read -r m p e d < <(awk '$1 == "failing" { print $2, $3, $4, $5 }' "$LIB_TMP/rules.txt")
expect_eq "failing matched/processed/errors/dead" "$m $p $e $d" "30 30 30 0"
"$MQTTFLOW" status --json "$conf" >"$LIB_TMP/status.json" || lib_fail "status --json failed"
"$PY" - "$LIB_TMP/status.json" "$IT_INSTANCE" <<'EOF' || lib_fail "status --json: $(cat "$LIB_TMP/status.json")"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["instance"] == sys.argv[2] and s["phase"] == "running"
st = {(x["kind"], x["id"]): x for x in s["stages"]}
assert st[("router", "")]["in"] == 150 and st[("relay", "")]["out"] == 120
assert st[("worker", "0")]["state"] == "running" and st[("worker", "0")]["ring_fill_pct"] is not None
assert st[("ingress", "c1")]["connected"] == 1 and st[("router", "")]["connected"] is None
assert isinstance(st[("worker", "0")]["cpu_seconds"], float)
r = {x["name"]: x for x in s["rules"]}
assert (r["echo_rule"]["matched"], r["echo_rule"]["processed"], r["echo_rule"]["errors"]) == (120, 120, 0)
assert r["failing"]["errors"] == 30 and r["echo_rule"]["p50_ms"] > 0
assert r["echo_rule"]["p99_ms"] >= r["echo_rule"]["p50_ms"]
assert s["clients"] == [{"id": "c1", "connected": True}]
EOF

# bad requests
expect_eq "unknown path" "$(http_code /nope)" 404
expect_eq "POST" "$(http_code /metrics -X POST -d x=1)" 405
exec 5<>"/dev/tcp/127.0.0.1/$port"
printf 'BLAH\x01\x02 /metrics HTTP/9.9\r\n\r\n' >&5
read -r -t 10 line <&5 || true
exec 5<&- 5>&-
[[ $line =~ ^HTTP/1\.[01]\ (4|5)[0-9][0-9] ]] || lib_fail "garbage request: answer '$line'"
expect_eq "/healthz after bad requests" "$(http_code /healthz)" 200

# 200 idle connections and 20 that stall mid-header, held open by one python process
rm -f "$LIB_TMP/held"
"$PY" - "$port" "$LIB_TMP/held" <<'EOF' &
import socket, sys, time
socks = []
for i in range(220):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    if i >= 200:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never finished
    socks.append(s)
open(sys.argv[2], "w").write("%d\n" % len(socks))
time.sleep(60)
EOF
holder=$!
lib_track "$holder"
wait_file "$LIB_TMP/held" 20 || lib_fail "could not open 220 connections"
it_status "$conf" | head -n 1 | grep -q "running" || lib_fail "status does not answer beside 220 connections"
expect_eq "/metrics beside 220 open connections" "$(http_code /metrics)" 200
grep -q '^mqttflow_stage_in_total{.*stage="router"' "$LIB_TMP/body" || lib_fail "/metrics body"
kill "$holder"
wait "$holder" 2>/dev/null

# readiness follows the broker; health does not
broker_stop MQTT
it_until 20 '[[ $(http_code /readyz) == 503 ]]' || lib_fail "/readyz still $(http_code /readyz) without the broker"
grep -q "c1" "$LIB_TMP/body" || lib_fail "/readyz 503 does not name the client: $(cat "$LIB_TMP/body")"
expect_eq "/healthz without the broker" "$(http_code /healthz)" 200
it_broker || lib_fail "broker did not restart"
# it_broker may have taken another port: the clients reconnect to the configured one only
# when it was free again; readiness is asserted only in that case
if [[ $MQTT_PORT == "$(grep -m1 '^    port:' "$conf" | awk '{print $2}')" ]]; then
    it_until 30 '[[ $(http_code /readyz) == 200 ]]' || lib_fail "/readyz: $(cat "$LIB_TMP/body")"
fi

# health: a worker killed until the restart intensity fails it
worker_pid() {
    "$MQTTFLOW" status --json "$conf" | "$PY" -c 'import json,sys
print(next(x["pid"] for x in json.load(sys.stdin)["stages"] if x["kind"] == "worker"))'
}
for _ in 1 2 3 4 5 6 7; do
    pid=$(worker_pid)
    [[ $pid -gt 0 ]] || break # failed already: no process
    kill -9 "$pid"
    # the next one, or none when the intensity limit failed the stage
    it_until 10 'p=$(worker_pid); [[ $p != "$pid" && $p != 0 ]] || [[ $(http_code /healthz) == 503 && $(cat "$LIB_TMP/body") == *failed* ]]' || true
done
it_until 10 '[[ $(http_code /healthz) == 503 ]]' || lib_fail "/healthz $(http_code /healthz) with the worker down"
grep -q "worker 0: " "$LIB_TMP/body" || lib_fail "/healthz 503 does not name the worker: $(cat "$LIB_TMP/body")"
lib_log "healthz: $(cat "$LIB_TMP/body")"
"$MQTTFLOW" restart worker 0 -c "$conf" >/dev/null || lib_fail "restart worker 0"
it_until 10 '[[ $(http_code /healthz) == 200 ]]' || lib_fail "/healthz $(http_code /healthz) after the restart"

# --watch: draws, quits on SIGINT with 0
"$MQTTFLOW" status --watch "$conf" </dev/null >"$LIB_TMP/watch.out" 2>&1 &
wpid=$!
it_until 10 'grep -q "^worker 0 " "$LIB_TMP/watch.out"' || lib_fail "--watch drew nothing: $(cat "$LIB_TMP/watch.out")"
kill -INT "$wpid"
it_wait_exit "$wpid" 10 || lib_fail "--watch did not quit on SIGINT"
expect_eq "--watch exit code" "$IT_RC" 0
grep -q "CPU%" "$LIB_TMP/watch.out" || lib_fail "--watch: no CPU% column"

# --watch on a terminal: the alternate screen, q quits with 0, the terminal's mode restored
"$PY" - "$MQTTFLOW" "$conf" <<'EOF' || lib_fail "--watch on a pty"
import os, select, subprocess, sys, termios, time
master, slave = os.openpty()
before = termios.tcgetattr(slave)
p = subprocess.Popen([sys.argv[1], "status", "--watch", sys.argv[2]], stdin=slave, stdout=slave,
                     stderr=slave, close_fds=True)
out, end = b"", time.time() + 15
while b"worker 0 " not in out and time.time() < end:
    if select.select([master], [], [], 0.5)[0]:
        out += os.read(master, 65536)
assert b"\x1b[?1049h" in out and b"worker 0 " in out, out[-400:]
assert not termios.tcgetattr(slave)[3] & termios.ICANON  # keys one by one while it runs
os.write(master, b"q")
assert p.wait(timeout=10) == 0
after = termios.tcgetattr(slave)
assert after[3] == before[3], (after[3], before[3])  # ECHO and ICANON back
EOF

it_stop "$conf"
lib_log "PASS"
