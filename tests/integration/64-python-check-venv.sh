# 64-python-check-venv: `mqttflow check` on broken Python, a module that fails at a worker's
# start, and a callback importing a package from a virtual environment.
#
#  - check: a syntax error is reported as FILE:LINE:COL of the .py file, a missing function at
#    the module with the YAML position, a module that cannot be found at the YAML's
#    `module:`; exit 2 (a config error), and a check of the fixed config exits 0;
#  - a module edited into one whose top level raises at import (`mqttflow run` would refuse
#    it as check does, so the edit comes while running): `mqttflow restart worker 0` fails,
#    worker 0 is FAILED (exit 2, "not restarted"), `mqttflow status` shows the exception
#    with its file and line, the log holds the traceback; it is not respawned (RESTARTS stays
#    at the one requested) while the other stages run; a message published meanwhile waits;
#    once the file is fixed, `mqttflow restart worker 0` brings it up and the message flows;
#  - a venv made by `python3 -m venv --without-pip` with a package written into its
#    site-packages: runtime.python.venv lets a callback import it (the message comes out
#    transformed by the package).
# shellcheck source=tests/integration/39-pipeline-lib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/39-pipeline-lib.sh"

PY3=/usr/bin/python3
[[ -x $PY3 ]] || PY3=$(command -v python3)
it_require "$BUILD/bin/mqttflow-python.so" "$MOSQUITTO_PUB" "$PY3"

# ---- check
d=$LIB_TMP/chk
mkdir -p "$d"
printf 'import mqttflow\n\ndef f(msg):\n    return (1,\n\ndef g(msg):\n    pass\n' >"$d/bad.py"
printf 'def present(msg):\n    pass\n' >"$d/ok.py"
cat >"$d/c.yaml" <<'YAML'
mqtt_clients:
  - client_id: "c1"
    broker_url: "mqtt://127.0.0.1"
    topics: [{name: "in/#", qos: 1}]
callbacks:
  syntax: {module: "bad.py", function: "f"}
  missing: {module: "ok.py", function: "absent"}
  nomodule: {module: "no_such_pkg.mod", function: "x"}
rules:
  - {rule: "r1", topic: "in/a", callback: "syntax"}
  - {rule: "r2", topic: "in/b", callback: "missing"}
  - {rule: "r3", topic: "in/c", callback: "nomodule"}
YAML
"$MQTTFLOW" check "$d/c.yaml" >"$LIB_TMP/check.out" 2>&1
rc=$?
cat "$LIB_TMP/check.out" >&2
expect_eq "check exit status" "$rc" 2
grep -qF "$d/bad.py:4:12: SyntaxError: '(' was never closed" "$LIB_TMP/check.out" ||
    lib_fail "no FILE:LINE:COL syntax error for bad.py"
grep -qE "^$d/ok.py:1:1: no function 'absent' in module .*c.yaml:7:" "$LIB_TMP/check.out" ||
    lib_fail "no missing-function error for ok.py"
grep -qE "c.yaml:8:[0-9]+: callbacks.nomodule: ModuleNotFoundError: No module named 'no_such_pkg'" \
    "$LIB_TMP/check.out" || lib_fail "no module-not-found error at the YAML position"
printf 'import mqttflow\n\ndef f(msg):\n    return None\n' >"$d/bad.py"
sed -i -e 's/function: "absent"/function: "present"/' -e '/nomodule/d' "$d/c.yaml"
"$MQTTFLOW" check "$d/c.yaml" >"$LIB_TMP/check2.out" 2>&1 ||
    lib_fail "check of the fixed config failed: $(cat "$LIB_TMP/check2.out")"

# ---- import failure at a worker's start, then the venv
it_broker || lib_fail "broker did not start"
venv=$LIB_TMP/venv
"$PY3" -m venv --without-pip "$venv" || lib_fail "python3 -m venv failed"
sp=$(echo "$venv"/lib/python3*/site-packages)
[[ -d $sp ]] || lib_fail "no site-packages in the venv"
mkdir -p "$sp/shouty"
printf 'def shout(b):\n    return b.upper() + b"!"\n' >"$sp/shouty/__init__.py"
cat >"$LIB_TMP/usevenv.py" <<'PY'
import shouty

import mqttflow


def fn(msg):
    mqttflow.emit("out/venv", shouty.shout(msg.payload))
PY
printf 'import mqttflow\n\nx = 1\nboom = x\n\ndef fn(msg):\n    mqttflow.emit("out/late", msg.payload)\n' \
    >"$LIB_TMP/late.py"
it_conf 'topics: [{name: "in/#", qos: 1}]' -- 1 "python: { venv: \"$venv\" }" <<YAML
callbacks:
  late: {module: "late.py", function: "fn"}
  usevenv: {module: "usevenv.py", function: "fn"}
rules:
  - {rule: "late", topic: "in/late", callback: "late", execution_mode: "sequential"}
YAML
it_start "$conf"
sed -i 's|^boom = x$|boom = x / 0|' "$LIB_TMP/late.py"
if out=$("$MQTTFLOW" restart -c "$conf" worker 0 2>&1); then
    lib_fail "restart of a worker whose module cannot be imported succeeded: $out"
fi
lib_log "restart answered: $out"
it_until 10 '[[ $(it_status "$conf" | awk '\''$1 == "worker" && $2 == "0" { print $5 }'\'') == failed ]]' ||
    lib_fail "worker 0 is not failed: $(it_status "$conf")"
status=$(it_status "$conf")
lib_log "status:"$'\n'"$status"
grep -qE "^worker 0: failed: exit 2: configuration error, not restarted: .*late.py:4:[0-9]+: ZeroDivisionError: division by zero" \
    <<<"$status" || lib_fail "status does not show the import error"
grep -q "boom = x / 0" "$IT_LOG" || lib_fail "the log has no traceback line of the import error"
"$MOSQUITTO_PUB" -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t in/late -m hello || lib_fail "publish failed"
it_msub out "$MQTT_PORT" out/probe 'out/#'
it_until 10 '[[ $(it_metric "$conf" mqttflow_stage_in_total router) -ge 1 ]]' ||
    lib_fail "the router did not take the message in"
expect_eq "worker 0 restarts while failed (the requested one)" \
    "$(it_metric "$conf" mqttflow_stage_restarts_total worker 0)" 1
expect_eq "worker 0 still failed" "$(it_status "$conf" | awk '$1 == "worker" && $2 == "0" { print $5 }')" failed
expect_eq "router still running" \
    "$(it_status "$conf" | awk '$1 == "router" { print $4 }')" running
expect_eq "nothing came out while failed" "$(it_lines out out/late)" ""

# fixed, restarted by hand: the message published meanwhile is processed
sed -i 's|^boom = x / 0$|boom = x|' "$LIB_TMP/late.py"
out=$("$MQTTFLOW" restart -c "$conf" worker 0 2>&1) || lib_fail "restart worker 0 failed: $out"
it_until 15 '[[ $(it_lines out out/late) == hello ]]' ||
    lib_fail "the message held while worker 0 was failed did not come out: $(cat "$LIB_TMP/out.out")"
it_stop "$conf"

# ---- the venv's package, through a running pipeline
sed -i 's|^  - {rule: "late".*|  - {rule: "v", topic: "in/v", callback: "usevenv"}|' "$conf"
it_start "$conf" 30 mf2
"$MOSQUITTO_PUB" -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t in/v -m quiet || lib_fail "publish failed"
it_until 15 '[[ $(it_lines out out/venv) == "QUIET!" ]]' ||
    lib_fail "no transformed message from the venv's package: $(cat "$LIB_TMP/out.out")"
it_stop "$conf"
lib_log "PASS"
