# 62-python-faults: a Python callback that segfaults (ctypes) or loops forever (GIL held) takes
# down only its own worker; the message is retried, then dead-lettered; the others flow.
#
# Three sequential rules on 3 workers (spread by rank: one per worker), all Python:
#   crashy  in/crash/#   ctypes.string_at(0) on a payload containing "CRASH" (SIGSEGV)
#   hangy   in/hang/#    `while True: pass` on a payload containing "HANG" (the watchdog,
#                        runtime.callback_timeout_ms 400, kills the worker)
#   steady  in/steady/#  forwards
# At the same time: 2,000 messages to steady at 400/s; 100 JSON messages each to crashy and
# hangy of which seq 50 is the poison. Asserted:
#  - steady: all 2,000 arrive, no duplicate, in order; its worker never restarted;
#  - crashy and hangy: every message but the poison arrives; the poison never; each worker
#    restarted and dead-lettered exactly one record (after max_attempts 3);
#  - the log names SIGSEGV and the watchdog's callback timeout; every worker runs again;
#    clean stop.
# shellcheck source=tests/integration/39-pipeline-lib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/39-pipeline-lib.sh"

it_require "$BUILD/bin/mqttflow-python.so"
it_broker || lib_fail "broker did not start"

cat >"$LIB_TMP/faults.py" <<'PY'
import ctypes
import signal

import mqttflow


def crash(msg):
    if b"CRASH" in msg.payload:
        # as tests/callbacks/segv_every.c: a sanitizer build's handler would turn the death
        # into an exit status, and the test asserts that the worker died of SIGSEGV
        signal.signal(signal.SIGSEGV, signal.SIG_DFL)
        ctypes.string_at(0)  # reads address 0: SIGSEGV inside a C extension
    mqttflow.emit("out/crash", msg.payload)


def hang(msg):
    if b"HANG" in msg.payload:
        while True:
            pass
    mqttflow.emit("out/hang", msg.payload)


def forward(msg):
    mqttflow.emit("out/" + msg.topic, msg.payload)
PY
it_conf 'topics: [{name: "in/#", qos: 1}]' -- 3 "max_attempts: 3" "callback_timeout_ms: 400" <<YAML
callbacks:
  crash: {module: "faults.py", function: "crash"}
  hang: {module: "faults.py", function: "hang"}
  forward: {module: "faults.py", function: "forward"}
rules:
  - {rule: "crashy", topic: "in/crash/#", callback: "crash", execution_mode: "sequential"}
  - {rule: "hangy", topic: "in/hang/#", callback: "hang", execution_mode: "sequential"}
  - {rule: "steady", topic: "in/steady/#", callback: "forward", execution_mode: "sequential"}
YAML
it_start "$conf"

it_sub s_steady -p "$MQTT_PORT" -t 'out/in/steady/#' -q 1 -n 2000 -I 20 -T 60
it_sub s_crash -p "$MQTT_PORT" -t 'out/crash' -q 1 -n 99 -I 20 -T 60 -D
it_sub s_hang -p "$MQTT_PORT" -t 'out/hang' -q 1 -n 99 -I 20 -T 60 -D

values() { # POISON: 100 values, seq 50 = POISON
    local i v=""
    for ((i = 0; i < 100; i++)); do
        if ((i == 50)); then v+="\"$1\""; else v+=$i; fi
        ((i < 99)) && v+=,
    done
    echo "$v"
}
"$MFPUB" -p "$MQTT_PORT" -q 1 -i 1 -n 2000 -r 400 -t in/steady/a >"$LIB_TMP/pub_steady.log" 2>&1 &
pub_steady=$!
lib_track "$pub_steady"
"$MFPUB" -p "$MQTT_PORT" -q 1 -i 2 -n 100 -r 50 -t in/crash/a -j -V "$(values CRASH)" \
    >"$LIB_TMP/pub_crash.log" 2>&1 &
pub_crash=$!
lib_track "$pub_crash"
it_mfpub pub_hang -p "$MQTT_PORT" -q 1 -i 3 -n 100 -r 50 -t in/hang/a -j -V "$(values HANG)"
wait "$pub_crash" || lib_fail "mfpub (crash) did not complete"
wait "$pub_steady" || lib_fail "mfpub (steady) did not complete"

it_sub_results 90 s_steady s_crash s_hang
status=$(it_status "$conf")
lib_log "status:"$'\n'"$status"

f=$LIB_TMP/s_steady.log
expect_eq "steady unique" "$(result_field "$f" unique)" 2000
expect_eq "steady lost" "$(result_field "$f" lost)" 0
expect_eq "steady dup" "$(result_field "$f" dup)" 0
expect_eq "steady reorder" "$(result_field "$f" reorder)" 0
for k in crash hang; do
    f=$LIB_TMP/s_$k.log
    expect_eq "$k unique (all but the poison)" "$(result_field "$f" unique)" 99
    expect_eq "$k gaps (the poison only)" "$(result_field "$f" lost)" 1
    if grep -q '"seq":50,' "$f"; then lib_fail "the $k poison message (seq 50) came out"; fi
done

restarted=0
for w in 0 1 2; do
    r=$(it_metric "$conf" mqttflow_stage_restarts_total worker "$w")
    d=$(it_metric "$conf" mqttflow_stage_dead_total worker "$w")
    lib_log "worker $w: restarts $r, dead $d"
    [[ -n $r ]] || lib_fail "no restart count for worker $w"
    if [[ $r -ge 1 ]]; then
        restarted=$((restarted + 1))
        expect_eq "dead-lettered records of restarted worker $w" "$d" 1
    else
        expect_eq "dead-lettered records of steady worker $w" "$d" 0
    fi
done
expect_eq "workers that restarted (crashy's and hangy's)" "$restarted" 2
grep -q SIGSEGV "$IT_LOG" || lib_fail "the log does not say a worker died of SIGSEGV"
grep -q "past runtime.callback_timeout_ms" "$IT_LOG" ||
    lib_fail "the log does not show the watchdog stopping the Python loop"
it_until 10 '[[ $(it_status "$conf" | awk '\''$1 == "worker" && $5 != "running"'\'' | wc -l) == 0 ]]' ||
    lib_fail "not every worker is running again: $(it_status "$conf")"

it_stop "$conf"
lib_log "PASS"
