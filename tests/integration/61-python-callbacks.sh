# 61-python-callbacks: every Python callback style and every bad output, through the pipeline.
#
# Modules written by the test (in $LIB_TMP/py, one also as a package imported by dotted name
# through runtime.python.path):
#   plain      fn(msg): emits "<topic>|<payload>|<qos>|<client_id>|<json a>" on out/plain
#   window     sampler step, fn(msgs): gets a list; emits "<n>:<p1>,<p2>,..." on out/window
#   proc       custom_processor step: param("tag") + payload_view, on out/proc
#   task       the Python framework's task class, no base class: process() calls
#              self.publish_message("c1", "out/task", ...) with self.topic/self.payload
#   dotted     pkg.mod:fn imported by name; init() ran once before any message
#   raises     raises ValueError on payload "boom": logged with rule, callback, traceback;
#              counted; on_error: dead_letter puts the message in the dead-letter store
#   bad_ret / bad_payload / bad_topic / bad_qos: return "x", emit an int payload, emit on
#              a wildcard topic, publish at qos 5: each a clear error naming the rule
#   from_thread  a thread started by the callback calls emit: RuntimeError (one producer)
# Asserted: each output exactly once and right; the errors' log lines; status errors count;
# the dead-letter store has the raising rule's message; clean stop (fini() ran: its log line).
# shellcheck source=tests/integration/39-pipeline-lib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/39-pipeline-lib.sh"

it_require "$BUILD/bin/mqttflow-python.so" "$MOSQUITTO_PUB" "$MOSQUITTO_SUB"
it_broker || lib_fail "broker did not start"

py=$LIB_TMP/py
mkdir -p "$py/lib/pkg"
cat >"$py/styles.py" <<'PY'
import threading

import mqttflow

kept = []


def plain(msg):
    a = msg.json().get("a")
    mqttflow.emit("out/plain", "%s|%s|%d|%s|%s" % (msg.topic, msg.payload.decode(), msg.qos,
                                                  msg.client_id, a))
    kept.append(msg)  # kept past its call: must still read right later


def window(msgs):
    assert isinstance(msgs, list)
    mqttflow.emit("out/window", "%d:%s" % (len(msgs), ",".join(m.payload.decode() for m in msgs)))
    return 0


def proc(msg):
    view = msg.payload_view
    assert isinstance(view, memoryview)
    mqttflow.emit("out/proc", b"%s:%s:%s" % (mqttflow.param("tag").encode(), bytes(view),
                                             kept[0].payload if kept else b"-"))


class Task:
    def __init__(self, topic, payload, userdata, task_config):
        pass

    def process(self):
        self.publish_message("c1", "out/task", "%s=%s" % (self.topic, self.payload["v"]))


def raises(msg):
    if msg.payload == b"boom":
        raise ValueError("no boom allowed")
    mqttflow.emit("out/raises", msg.payload)


def bad_ret(msg):
    return "x"


def bad_payload(msg):
    mqttflow.emit("out/bad", 42)


def bad_topic(msg):
    mqttflow.emit("out/+/bad", b"x")


def bad_qos(msg):
    mqttflow.publish("c1", "out/bad", b"x", qos=5)


def from_thread(msg):
    errs = []

    def other():
        try:
            mqttflow.emit("out/bad", b"from another thread")
        except RuntimeError as e:
            errs.append(str(e))

    t = threading.Thread(target=other)
    t.start()
    t.join()
    mqttflow.emit("out/thread", errs[0] if errs else "no error")
PY
cat >"$py/lib/pkg/__init__.py" <<'PY'
PY
cat >"$py/lib/pkg/mod.py" <<'PY'
import mqttflow

inits = 0


def init():
    global inits
    inits += 1
    mqttflow.log("INFO", "pkg.mod init ran")


def fini():
    mqttflow.log("INFO", "pkg.mod fini ran")


def fn(msg):
    mqttflow.emit("out/dotted", "inits=%d %s" % (inits, msg.payload.decode()))
PY

it_conf 'topics: [{name: "in/#", qos: 1}]' -- 1 "python: { path: [\"py/lib\"] }" <<YAML
callbacks:
  plain: {module: "py/styles.py", function: "plain"}
  window: {module: "py/styles.py", function: "window"}
  proc: {module: "py/styles.py", function: "proc"}
  task: {module: "py/styles.py", function: "Task"}
  dotted: {module: "pkg.mod", function: "fn"}
  raises: {module: "py/styles.py", function: "raises"}
  bad_ret: {module: "py/styles.py", function: "bad_ret"}
  bad_payload: {module: "py/styles.py", function: "bad_payload"}
  bad_topic: {module: "py/styles.py", function: "bad_topic"}
  bad_qos: {module: "py/styles.py", function: "bad_qos"}
  from_thread: {module: "py/styles.py", function: "from_thread"}
rules:
  - {rule: "r_plain", topic: "in/plain", callback: "plain", execution_mode: "sequential"}
  - {rule: "r_window", topic: "in/window", action: "win", execution_mode: "sequential"}
  - {rule: "r_proc", topic: "in/proc", action: "proc_chain", execution_mode: "sequential"}
  - {rule: "r_task", topic: "in/task", callback: "task", execution_mode: "sequential"}
  - {rule: "r_dotted", topic: "in/dotted", callback: "dotted"}
  - {rule: "r_raises", topic: "in/raises", callback: "raises", on_error: "dead_letter"}
  - {rule: "r_bad_ret", topic: "in/bad_ret", callback: "bad_ret"}
  - {rule: "r_bad_payload", topic: "in/bad_payload", callback: "bad_payload"}
  - {rule: "r_bad_topic", topic: "in/bad_topic", callback: "bad_topic"}
  - {rule: "r_bad_qos", topic: "in/bad_qos", callback: "bad_qos"}
  - {rule: "r_thread", topic: "in/thread", callback: "from_thread"}
processing_chains:
  win:
    - {step: "sampler", config: {duration: 1, callback: "window"}}
  proc_chain:
    - {step: "custom_processor", config: {callback: "proc", tag: "T1"}}
YAML
"$MQTTFLOW" check "$conf" >"$LIB_TMP/check.log" 2>&1 || {
    cat "$LIB_TMP/check.log" >&2
    lib_fail "mqttflow check refused the config"
}
it_start "$conf"
it_msub out "$MQTT_PORT" out/probe 'out/#'

pub() { # TOPIC PAYLOAD...
    local topic=$1
    shift
    printf '%s\n' "$@" | "$MOSQUITTO_PUB" -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t "$topic" -l ||
        lib_fail "mosquitto_pub to $topic failed"
}
n() { it_lines out "$1" | wc -l; }

pub in/plain '{"a":1}' '{"a":"x"}'
pub in/window w1 w2 w3
pub in/proc p1
pub in/task '{"v":7}'
pub in/dotted d1 d2
pub in/raises ok1 boom ok2
for b in bad_ret bad_payload bad_topic bad_qos thread; do pub "in/$b" x; done

it_until 20 '[[ $(n out/plain) -ge 2 && $(n out/window) -ge 1 && $(n out/proc) -ge 1 &&
    $(n out/task) -ge 1 && $(n out/dotted) -ge 2 && $(n out/raises) -ge 2 &&
    $(n out/thread) -ge 1 ]]' ||
    lib_fail "not every output arrived: $(cat "$LIB_TMP/out.out")"
it_until 10 '[[ $(it_metric "$conf" mqttflow_stage_errors_total worker 0) -ge 5 ]]' ||
    lib_fail "errors counted: $(it_metric "$conf" mqttflow_stage_errors_total worker 0), want 5"

expect_eq "plain" "$(it_lines out out/plain | tr '\n' ' ')" \
    'in/plain|{"a":1}|1|c1|1 in/plain|{"a":"x"}|1|c1|x '
expect_eq "window (one list of 3)" "$(it_lines out out/window)" "3:w1,w2,w3"
expect_eq "proc (param, payload_view, a message kept past its call)" \
    "$(it_lines out out/proc)" 'T1:p1:{"a":1}'
expect_eq "task class" "$(it_lines out out/task)" "in/task=7"
expect_eq "dotted module, init once" "$(it_lines out out/dotted | tr '\n' ' ')" \
    "inits=1 d1 inits=1 d2 "
expect_eq "raises: the others pass" "$(it_lines out out/raises | tr '\n' ' ')" "ok1 ok2 "
expect_eq "emit from another thread" "$(it_lines out out/thread)" \
    "emit: only the thread that runs the callback may call it, during the call"
expect_eq "nothing published by the bad callbacks" "$(n out/bad)" 0
expect_eq "errors counted" "$(it_metric "$conf" mqttflow_stage_errors_total worker 0)" 5

log=$IT_LOG
want_log() { grep -qF -- "$1" "$log" || lib_fail "no log line with: $1"; }
want_log "rule r_raises, callback raises: raised ValueError: no boom allowed"
want_log 'raise ValueError("no boom allowed")'
want_log "rule r_bad_ret, callback bad_ret: returned 'x': a callback returns None or 0"
want_log "rule r_bad_payload, callback bad_payload: raised TypeError: emit: payload must be bytes or str, not int"
want_log "rule r_bad_topic, callback bad_topic: raised ValueError: emit: topic 'out/+/bad' has a wildcard"
want_log "rule r_bad_qos, callback bad_qos: raised ValueError: publish: qos 5 is outside 0..2"
want_log "pkg.mod init ran"
dead=$(grep -rl "boom" "$LIB_TMP/dead" 2>/dev/null | wc -l)
[[ $dead -ge 1 ]] || lib_fail "the raising rule's message is not in the dead-letter store"

it_stop "$conf"
want_log "pkg.mod fini ran"
lib_log "PASS"
