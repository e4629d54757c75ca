# shellcheck shell=bash
# 39-pipeline-lib.sh: helpers of the whole-pipeline tests (20-3x), on top of lib.sh.
#
# Sourced by those tests (`. "$(dirname "$0")/39-pipeline-lib.sh"`, which also sources lib.sh).
# Run directly (tests/run.sh runs every [0-9]*.sh), it is the smoke test of these helpers: one
# echo rule through the real pipeline, one message in and out, `mqttflow status`, `mqttflow
# stop`, exit 0 and no shared-memory segment left.
#
#   it_broker [NAME=MQTT] [EXTRA_LINE...]  broker_start on a free port, up to 3 ports: another
#                                       test can bind the port free_port chose before our
#                                       mosquitto does; ready once our pid listens on it
#   it_runtime WORKERS [EXTRA_LINE...]  print a runtime: section (unique instance it<pid>_<n>,
#                                       control socket, spool and dead-letter dirs in $LIB_TMP;
#                                       $IT_DEAD_LETTER replaces the dead_letter: mapping)
#   it_start CONF [SECS=30] [NAME=mf]   mqttflow run CONF (lib_spawn NAME; $mf_PID, log
#                                       $IT_LOG = $LIB_TMP/NAME.log); waits until status says
#                                       "running". Another NAME keeps the log of an earlier run
#   it_client ID PORT [FIELD_LINE...]   print one mqtt_clients: entry on 127.0.0.1:PORT
#   it_conf_print CLIENT_FIELD... -- WORKERS [RUNTIME_LINE...] <BODY
#                                       print a config: client c1 on $MQTT_PORT with the
#                                       CLIENT_FIELD lines, BODY (stdin: callbacks, rules,
#                                       chains...), then it_runtime WORKERS RUNTIME_LINE...
#   it_conf CLIENT_FIELD... -- WORKERS [RUNTIME_LINE...] <BODY
#                                       the same written to $conf ($LIB_TMP/conf.yaml)
#   it_slow_body RULE TOPIC US          print the body of a config: one sequential rule through
#                                       it_slow.so (US us a message) to out/..., QoS 1 out
#   it_wait_pub NAME [WHAT]             wait for mfpub $NAME (log $LIB_TMP/NAME.log): fails
#                                       the test unless it completed
#   it_sub_results SECS NAME...         lib_log each mfsub NAME's RESULT line
#   it_relay_conf WORKERS               write $conf: c1 on in/#, one rule relaying to out/x
#   it_status CONF / it_prom CONF       the status table / Prometheus text
#   it_metric CONF METRIC STAGE [ID]    one value of the Prometheus text (e.g. it_metric "$c"
#                                       mqttflow_stage_in_total worker 0)
#   it_sub NAME ARGS...                 mfsub ARGS -R ready in the background (log
#                                       $LIB_TMP/NAME.log, $NAME_PID), waits for its ready file
#   it_wait_exit PID SECS               waits for our child PID to end: 0 and $IT_RC, or 1 on
#                                       timeout
#   it_stop CONF                        mqttflow stop CONF, then asserts the supervisor exits 0
#                                       and leaves no /dev/shm/mqttflow.<instance>.* behind
#   it_shm_left INSTANCE                prints the number of segments of INSTANCE
#   it_msub NAME PORT PROBE FILTER...   mosquitto_sub -v -q 1 on FILTERs (one "topic payload" line
#                                       per message in $LIB_TMP/NAME.out); ready once a probe
#                                       published on topic PROBE came back
#   it_until SECS 'EXPR'                like wait_for, but EXPR (shell text) is evaluated again on
#                                       every try (wait_for's arguments are expanded once)
#   it_lines NAME TOPIC                 the payloads NAME received on TOPIC, one a line
#   it_echo_conf [CLEAN_SESSION=false]  the echo pipeline of 24/26/27/40 running on the broker
#                                       of it_broker (echo.so required): config $conf,
#                                       c1 on in/#, a sequential (in/seq/#) and a threaded
#                                       (in/par/#) echo rule to out/..., QoS 1 out, 2 workers
#   it_echo_traffic N RATE IDLE TOTAL [MFPUB_ARG...]
#                                       its load: mfsub s_seq and s_par (-I IDLE -T TOTAL), two
#                                       mfpub of N at RATE msg/s in the background ($pub_seq,
#                                       $pub_par)
#   it_echo_load N                      the load of 26/27: broker, it_echo_conf false, then N at
#                                       1,000 msg/s
#   it_echo_load_check N                waits for that load and asserts: nothing lost on either
#                                       rule, no bad payload, the sequential rule in order; stops
#   it_poison_load KIND CALLBACK WORD STEADY_N STEADY_RATE BAD_N BAD_RATE BAD_SEQ [RUNTIME_LINE...]
#                                       the load of 23/28: config $conf, two sequential rules on
#                                       2 workers: "steady" (echo, in/steady/#) and "KINDy"
#                                       (CALLBACK.so, in/KIND/# to out/KIND); STEADY_N messages
#                                       to steady in the background ($pub_steady), then BAD_N JSON
#                                       ones to KINDy, seq BAD_SEQ carrying WORD (mfsub s_steady,
#                                       s_KIND)
#   it_poison_check KIND STEADY_N BAD_N BAD_SEQ
#                                       steady got everything once and in order; KINDy all but
#                                       BAD_SEQ, which never came out
#   it_workers_restarted                which of the 2 workers restarted: $IT_RESTARTED and
#                                       $IT_NOT_RESTARTED (arrays of worker indexes)
# Needs $IT_INSTANCE set by it_runtime (one instance per test script).

# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

IT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
IT_CB=$IT_ROOT/$BUILD/tests/callbacks
[[ $BUILD == /* ]] && IT_CB=$BUILD/tests/callbacks
IT_EXAMPLES=$IT_ROOT/config/examples
IT_INSTANCE=""
MOSQUITTO_PUB=${MOSQUITTO_PUB:-$(command -v mosquitto_pub || echo /usr/bin/mosquitto_pub)}
MOSQUITTO_SUB=${MOSQUITTO_SUB:-$(command -v mosquitto_sub || echo /usr/bin/mosquitto_sub)}
IT_RC=0
IT_N=0
IT_INSTANCES=()
IT_LOG=$LIB_TMP/mf.log

# On exit: stop what we started (lib.sh's cleanup), then remove the segments of this script's
# instances. A supervisor stopped while records could not be published keeps its rings for
# its next run ("kept N segment(s)"); a test instance has no next run. The names carry this
# script's pid, so nobody else's segments are touched.
it_cleanup() {
    local rc=$? i inst
    trap - EXIT
    for ((i = ${#LIB_PIDS[@]} - 1; i >= 0; i--)); do
        kill -0 "${LIB_PIDS[i]}" 2>/dev/null && lib_stop_pid "${LIB_PIDS[i]}" 3
    done
    for inst in "${IT_INSTANCES[@]}"; do
        rm -f /dev/shm/mqttflow."$inst".*
    done
    (exit "$rc")
    lib_cleanup
}
trap it_cleanup EXIT

# skip (77) unless the binaries, tools and mosquitto exist
it_require() {
    local f
    for f in "$MQTTFLOW" "$MF_INGRESS" "$MF_ROUTER" "$MF_WORKER" "$MF_RELAY" "$MFPUB" "$MFSUB" \
        "$MOSQUITTO" "$@"; do
        if [[ ! -x $f && ! -e $f ]]; then
            echo "SKIP: $f not built or not installed"
            exit 77
        fi
    done
}

# our mosquitto (pid $1) listens on port $2
it_listens() {
    ss -Hltnp "sport = :$2" 2>/dev/null | grep -q "pid=$1,"
}

it_broker() {
    local name=${1:-MQTT} i pidvar portvar
    shift
    pidvar=${name}_PID
    portvar=${name}_PORT
    for i in 1 2 3; do
        if broker_start "$name" "" "$@" &&
            wait_for 10 it_listens "${!pidvar}" "${!portvar}"; then
            return 0
        fi
        lib_log "mosquitto $name could not have port ${!portvar} (attempt $i)"
        kill -0 "${!pidvar}" 2>/dev/null && lib_stop_pid "${!pidvar}" 3
    done
    return 1
}

it_runtime() {
    local workers=$1 l
    shift
    IT_N=$((IT_N + 1))
    IT_INSTANCE="it$$_$IT_N"
    IT_INSTANCES+=("$IT_INSTANCE")
    mkdir -p "$LIB_TMP/spool" "$LIB_TMP/dead"
    echo "runtime:"
    echo "  instance: \"$IT_INSTANCE\""
    echo "  workers: $workers"
    echo "  control_socket: \"$LIB_TMP/$IT_INSTANCE.sock\""
    echo "  spool_dir: \"$LIB_TMP/spool\""
    echo "  dead_letter: ${IT_DEAD_LETTER:-"{ dir: \"$LIB_TMP/dead\" }"}"
    for l in "$@"; do echo "  $l"; done
}

# it_client ID PORT [FIELD_LINE...]: one entry of mqtt_clients: on 127.0.0.1:PORT, the
# FIELD_LINEs (e.g. 'topics: [{name: "in/#", qos: 1}]') under it
it_client() {
    local l
    echo "  - client_id: \"$1\""
    echo "    broker_url: \"mqtt://127.0.0.1\""
    echo "    port: $2"
    shift 2
    for l in "$@"; do echo "    $l"; done
}

# it_conf_print CLIENT_FIELD... -- WORKERS [RUNTIME_LINE...] <BODY: print a config: client c1
# on $MQTT_PORT with the CLIENT_FIELD lines (e.g. 'topics: [{name: "in/#", qos: 1}]'), then BODY
# from stdin (more clients, callbacks, rules, chains), then it_runtime WORKERS RUNTIME_LINE...
# ($IT_DEAD_LETTER works as for it_runtime). Run it in this shell (not in $(...)): it_runtime
# records the instance for the cleanup.
it_conf_print() {
    local fields=()
    while [[ $# -gt 0 && $1 != -- ]]; do
        fields+=("$1")
        shift
    done
    [[ $# -ge 2 ]] || lib_fail "it_conf_print: no '-- WORKERS' after the client fields"
    shift
    echo "mqtt_clients:"
    it_client c1 "$MQTT_PORT" "${fields[@]}"
    cat
    it_runtime "$@"
}

# it_conf CLIENT_FIELD... -- WORKERS [RUNTIME_LINE...] <BODY: it_conf_print into $conf
# ($LIB_TMP/conf.yaml)
it_conf() {
    conf=$LIB_TMP/conf.yaml
    it_conf_print "$@" >"$conf"
}

# reconnect quickly to a broker that comes back (client field of the outage tests)
IT_RECONNECT='reconnect: {min_delay: 0.1, max_delay: 1}'

# it_broker_b2: broker 1 ($MQTT_PORT) and broker 2 ($b2_PORT, persistence on: a subscriber's
# persistent session there survives broker_restart b2), as the two-broker tests start them
it_broker_b2() {
    it_broker || lib_fail "broker 1 did not start"
    mkdir -p "$LIB_TMP/b2db"
    it_broker b2 "persistence true" "persistence_location $LIB_TMP/b2db/" ||
        lib_fail "broker 2 did not start"
}

# it_echo_chain NAME [TARGET]: print processing chain NAME: echo.so to out/<topic>, relayed at
# QoS 1 to client TARGET (none: to the client the message came from)
it_echo_chain() {
    echo "  $1:"
    echo '    - {step: "custom_processor", config: {callback: "echo", prefix: "out/"}}'
    if [[ -n ${2:-} ]]; then
        echo "    - {step: \"relay\", config: {target_client_id: \"$2\", qos: 1}}"
    else
        echo '    - {step: "relay", config: {qos: 1}}'
    fi
}

# it_echo_rules RULE...: print callbacks: (echo.so), rules: (each RULE one entry, a flow
# mapping such as '{rule: "e", topic: "in/#", action: "out"}') and the processing_chains: key;
# it_echo_chain prints the chains under it
it_echo_rules() {
    local r
    echo "callbacks:"
    echo "  echo: {module: \"$IT_CB/echo.so\", function: \"echo\"}"
    echo "rules:"
    for r in "$@"; do echo "  - $r"; done
    echo "processing_chains:"
}

# it_conf_to TARGET RULES WORKERS CLIENT_FIELD...: write $conf of the two-broker tests: c1 on
# broker 1 (CLIENT_FIELDs), client TARGET on broker 2 ($IT_RECONNECT), echo.so, and for each
# RULE:TOPIC:CLIENT word of RULES (e.g. "up:in/up/#:c1 dn:in/dn/#:t2") a sequential rule RULE
# on TOPIC through it_echo_chain to_CLIENT CLIENT
it_conf_to() {
    local target=$1 rules=$2 workers=$3
    shift 3
    it_conf "$@" -- "$workers" < <(it_conf_to_body "$target" "$rules")
}

it_conf_to_body() { # TARGET RULES: what it_conf_to writes after client c1
    local r name topic to chains=""
    it_client "$1" "$b2_PORT" "$IT_RECONNECT"
    echo "callbacks:"
    echo "  echo: {module: \"$IT_CB/echo.so\", function: \"echo\"}"
    echo "rules:"
    for r in $2; do
        IFS=: read -r name topic to <<<"$r"
        echo "  - {rule: \"$name\", topic: \"$topic\", action: \"to_$to\", execution_mode: \"sequential\"}"
        [[ " $chains " == *" $to "* ]] || chains+=" $to"
    done
    echo "processing_chains:"
    for to in $chains; do it_echo_chain "to_$to" "$to"; done
}

# it_slow_body RULE TOPIC US: the body (for it_conf's stdin) of the back-pressure tests: one
# sequential rule RULE on TOPIC through it_slow.so (US microseconds a message) to out/<topic>,
# relayed at QoS 1
it_slow_body() {
    cat <<EOF
callbacks:
  slow: {module: "$IT_CB/it_slow.so", function: "it_slow"}
rules:
  - {rule: "$1", topic: "$2", action: "slow_out", execution_mode: "sequential"}
processing_chains:
  slow_out:
    - {step: "custom_processor", config: {callback: "slow", us: $3, prefix: "out/"}}
    - {step: "relay", config: {qos: 1}}
EOF
}

# it_wait_pub NAME [WHAT]: waits for the background mfpub whose pid is in $NAME and whose log is
# $LIB_TMP/NAME.log; fails the test ("mfpub WHAT did not complete" and the log's last lines)
# unless it exited 0
it_wait_pub() {
    local pidvar=$1
    wait "${!pidvar}" ||
        lib_fail "mfpub${2:+ $2} did not complete: $(tail -n 2 "$LIB_TMP/$1.log")"
}

# it_sub_results SECS NAME...: logs the RESULT line of each mfsub NAME (it_sub_result SECS)
it_sub_results() {
    local secs=$1 s
    shift
    for s in "$@"; do lib_log "$s: $(it_sub_result "$s" "$secs")"; done
}

# it_relay_conf WORKERS: write $conf: client c1 on in/# (QoS 1) and one rule "r" relaying every
# message to out/x on c1 (no callback)
it_relay_conf() {
    it_conf 'topics: [{name: "in/#", qos: 1}]' -- "$1" <<EOF
processing_chains:
  fwd:
    - {step: "relay", config: {target_client_id: "c1", target_topic: "out/x"}}
rules:
  - {rule: "r", source_client_id: "c1", topic: "in/#", action: "fwd"}
EOF
}

it_status() {
    "$MQTTFLOW" status "$1" 2>&1
}

it_prom() {
    "$MQTTFLOW" status --prom "$1" 2>&1
}

# it_metric CONF METRIC STAGE [ID]: the value, or empty
it_metric() {
    local id=${4:-}
    it_prom "$1" | awk -v m="$2" -v s="stage=\"$3\"" -v i="id=\"$id\"" \
        'index($0, m "{") == 1 && index($0, s) && index($0, i) { print $NF; exit }'
}

it_shm_left() {
    local n=0 f
    for f in /dev/shm/mqttflow."$1".*; do
        [[ -e $f ]] && n=$((n + 1))
    done
    echo "$n"
}

# status answers and its first line says "instance <name>: running"
it_is_running() {
    it_status "$1" | head -n 1 | grep -q "^instance $IT_INSTANCE: running"
}

it_start() {
    local conf=$1 secs=${2:-30} name=${3:-mf} end pidvar
    [[ -n $IT_INSTANCE ]] || lib_fail "it_start: no it_runtime in the config"
    lib_spawn "$name" "$MQTTFLOW" run "$conf"
    pidvar=${name}_PID
    mf_PID=${!pidvar}
    IT_LOG=$LIB_TMP/$name.log
    end=$((SECONDS + secs))
    until it_is_running "$conf"; do
        if ! kill -0 "$mf_PID" 2>/dev/null; then
            wait "$mf_PID"
            lib_log "mqttflow run exited with $? before it was running; its log:"
            cat "$IT_LOG" >&2
            lib_fail "the pipeline did not start"
        fi
        if ((SECONDS >= end)); then
            cat "$IT_LOG" >&2
            it_status "$conf" >&2
            lib_fail "the pipeline was not running after ${secs}s"
        fi
        sleep 0.1
    done
    lib_log "pipeline $IT_INSTANCE running (supervisor pid $mf_PID)"
}

it_sub() {
    local name=$1
    shift
    rm -f "$LIB_TMP/$name.ready"
    lib_spawn "$name" "$MFSUB" "$@" -R "$LIB_TMP/$name.ready"
    wait_file "$LIB_TMP/$name.ready" 15 || {
        cat "$LIB_TMP/$name.log" >&2
        lib_fail "mfsub $name did not subscribe"
    }
}

# it_wait_exit PID SECS: our child ended within SECS: 0 and IT_RC = its status; 1 on timeout
it_wait_exit() {
    local pid=$1 secs=$2 end
    end=$((SECONDS + secs))
    while kill -0 "$pid" 2>/dev/null && [[ $(ps -o stat= -p "$pid" 2>/dev/null) != Z* ]]; do
        ((SECONDS >= end)) && return 1
        sleep 0.05
    done
    wait "$pid"
    IT_RC=$?
    return 0
}

# it_assert_clean_exit [SECS=60]: the supervisor ($mf_PID) exits 0 within SECS, no segment left
it_assert_clean_exit() {
    local secs=${1:-60} left
    it_wait_exit "$mf_PID" "$secs" || {
        tail -n 30 "$IT_LOG" >&2
        lib_fail "the supervisor did not exit within ${secs}s of the stop"
    }
    if [[ $IT_RC != 0 ]]; then
        tail -n 30 "$IT_LOG" >&2
        lib_fail "the supervisor exited with $IT_RC, want 0"
    fi
    left=$(it_shm_left "$IT_INSTANCE")
    [[ $left == 0 ]] || {
        ls -l /dev/shm/mqttflow."$IT_INSTANCE".* >&2
        lib_fail "$left /dev/shm/mqttflow.$IT_INSTANCE.* segment(s) left after the stop"
    }
    if grep -E 'Sanitizer|runtime error:' "$IT_LOG" >&2; then
        lib_fail "sanitizer report in the pipeline's log"
    fi
}

it_stop() {
    local out
    out=$("$MQTTFLOW" stop "$1" 2>&1) || lib_fail "mqttflow stop failed: $out"
    it_assert_clean_exit 60
}

# it_mfpub NAME ARGS...: run mfpub in the foreground (log $LIB_TMP/NAME.log), fail unless it
# completed every message
it_mfpub() {
    local name=$1
    shift
    "$MFPUB" "$@" >"$LIB_TMP/$name.log" 2>&1 || {
        cat "$LIB_TMP/$name.log" >&2
        lib_fail "mfpub $name did not complete"
    }
}

# it_sub_result NAME SECS: wait for mfsub NAME to end (it ends on -n or idle); prints its RESULT
it_sub_result() {
    local name=$1 secs=$2 pidvar
    pidvar=${name}_PID
    it_wait_exit "${!pidvar}" "$secs" || lib_fail "mfsub $name still running after ${secs}s"
    grep '^RESULT ' "$LIB_TMP/$name.log" | tail -n 1
}

it_msub() {
    local name=$1 port=$2 probe=$3 end
    shift 3
    local args=() f
    for f in "$@"; do args+=(-t "$f"); done
    : >"$LIB_TMP/$name.out"
    "$MOSQUITTO_SUB" -h 127.0.0.1 -p "$port" -q 1 -v "${args[@]}" >"$LIB_TMP/$name.out" \
        2>"$LIB_TMP/$name.err" &
    lib_track $!
    printf -v "${name}_PID" '%s' "$!"
    end=$((SECONDS + 15))
    until grep -q "^$probe probe" "$LIB_TMP/$name.out"; do
        ((SECONDS >= end)) && lib_fail "mosquitto_sub $name: no probe back on $probe"
        "$MOSQUITTO_PUB" -h 127.0.0.1 -p "$port" -q 1 -t "$probe" -m probe
        sleep 0.2
    done
}

it_until() {
    local secs=$1
    shift
    wait_for "$secs" eval "$*"
}

it_lines() {
    awk -v t="$2" 'index($0, t " ") == 1 { print substr($0, length(t) + 2) }' "$LIB_TMP/$1.out"
}

# ---- shared loads of the fault scripts (23/28 and 26/27) ----

it_echo_conf() {
    local clean=${1:-false}
    it_conf "clean_session: $clean" 'topics: [{name: "in/#", qos: 1}]' -- 2 < <(
        it_echo_rules \
            '{rule: "seq", topic: "in/seq/#", action: "echo_out", execution_mode: "sequential"}' \
            '{rule: "par", topic: "in/par/#", action: "echo_out", execution_mode: "threaded"}'
        it_echo_chain echo_out
    )
    it_start "$conf"
}

it_echo_traffic() {
    local n=$1 rate=$2 idle=$3 total=$4
    shift 4
    it_sub s_seq -p "$MQTT_PORT" -t 'out/in/seq/#' -q 1 -n "$n" -I "$idle" -T "$total"
    it_sub s_par -p "$MQTT_PORT" -t 'out/in/par/#' -q 1 -n "$n" -I "$idle" -T "$total"
    "$MFPUB" -p "$MQTT_PORT" -q 1 -i 1 -n "$n" -r "$rate" -t in/seq/a "$@" \
        >"$LIB_TMP/pub_seq.log" 2>&1 &
    pub_seq=$!
    lib_track "$pub_seq"
    "$MFPUB" -p "$MQTT_PORT" -q 1 -i 2 -n "$n" -r "$rate" -T in/par/t -k 4 "$@" \
        >"$LIB_TMP/pub_par.log" 2>&1 &
    pub_par=$!
    lib_track "$pub_par"
}

it_echo_load() {
    it_require "$IT_CB/echo.so"
    it_broker || lib_fail "broker did not start"
    it_echo_conf false
    it_echo_traffic "$1" 1000 20 58
}

it_echo_load_check() {
    local n=$1 s f
    it_wait_pub pub_seq "(seq)"
    it_wait_pub pub_par "(par)"
    it_sub_results 60 s_seq s_par
    it_status "$conf" >&2
    for s in s_seq s_par; do
        f=$LIB_TMP/$s.log
        expect_eq "$s lost" "$(result_field "$f" lost)" 0
        expect_eq "$s unique" "$(result_field "$f" unique)" "$n"
        expect_eq "$s badsum" "$(result_field "$f" badsum)" 0
        lib_log "$s duplicates (allowed): $(result_field "$f" dup)"
    done
    expect_eq "sequential rule reordered" "$(result_field "$LIB_TMP/s_seq.log" reorder)" 0
    it_stop "$conf"
}

it_poison_load() {
    local kind=$1 cb=$2 word=$3 steady_n=$4 steady_rate=$5 bad_n=$6 bad_rate=$7 bad_seq=$8
    local i vals=""
    shift 8
    it_require "$IT_CB/echo.so" "$IT_CB/$cb.so"
    it_broker || lib_fail "broker did not start"
    it_conf 'topics: [{name: "in/#", qos: 1}]' -- 2 "$@" <<EOF
callbacks:
  echo: {module: "$IT_CB/echo.so", function: "echo"}
  $kind: {module: "$IT_CB/$cb.so", function: "$cb"}
rules:
  - {rule: "${kind}y", topic: "in/$kind/#", action: "${kind}_chain", execution_mode: "sequential"}
  - {rule: "steady", topic: "in/steady/#", action: "steady_chain", execution_mode: "sequential"}
processing_chains:
  ${kind}_chain:
    - {step: "custom_processor", config: {callback: "$kind", topic: "out/$kind"}}
  steady_chain:
    - {step: "custom_processor", config: {callback: "echo", prefix: "out/"}}
EOF
    it_start "$conf"
    it_sub s_steady -p "$MQTT_PORT" -t 'out/in/steady/#' -q 1 -n "$steady_n" -I 20 -T 55
    it_sub "s_$kind" -p "$MQTT_PORT" -t "out/$kind" -q 1 -n $((bad_n - 1)) -I 20 -T 55 -D
    for ((i = 0; i < bad_n; i++)); do
        if ((i == bad_seq)); then vals+="\"$word\""; else vals+=$i; fi
        ((i < bad_n - 1)) && vals+=,
    done
    "$MFPUB" -p "$MQTT_PORT" -q 1 -i 1 -n "$steady_n" -r "$steady_rate" -t in/steady/a \
        >"$LIB_TMP/pub_steady.log" 2>&1 &
    pub_steady=$!
    lib_track "$pub_steady"
    it_mfpub "pub_$kind" -p "$MQTT_PORT" -q 1 -i 2 -n "$bad_n" -r "$bad_rate" -t "in/$kind/a" \
        -j -V "$vals"
}

it_poison_check() {
    local kind=$1 steady_n=$2 bad_n=$3 bad_seq=$4 f
    wait "$pub_steady" || lib_fail "mfpub (steady) did not complete"
    lib_log "steady: $(it_sub_result s_steady 60)"
    lib_log "${kind}y: $(it_sub_result "s_$kind" 60)"
    lib_log "status:"$'\n'"$(it_status "$conf")"
    f=$LIB_TMP/s_steady.log
    expect_eq "steady unique" "$(result_field "$f" unique)" "$steady_n"
    expect_eq "steady lost" "$(result_field "$f" lost)" 0
    expect_eq "steady dup" "$(result_field "$f" dup)" 0
    expect_eq "steady reorder" "$(result_field "$f" reorder)" 0
    f=$LIB_TMP/s_$kind.log
    expect_eq "${kind}y unique (all but seq $bad_seq)" "$(result_field "$f" unique)" $((bad_n - 1))
    expect_eq "${kind}y gaps (seq $bad_seq only)" "$(result_field "$f" lost)" 1
    if grep -q "\"seq\":$bad_seq," "$f"; then
        lib_fail "the ${kind}y rule's bad message (seq $bad_seq) came out"
    fi
    lib_log "${kind}y duplicates (re-run after a kill, allowed): $(result_field "$f" dup)"
}

it_workers_restarted() {
    local w r
    IT_RESTARTED=() IT_NOT_RESTARTED=()
    for w in 0 1; do
        r=$(it_metric "$conf" mqttflow_stage_restarts_total worker "$w")
        [[ -n $r ]] || lib_fail "no restart count for worker $w in the status"
        if [[ $r -ge 1 ]]; then IT_RESTARTED+=("$w"); else IT_NOT_RESTARTED+=("$w"); fi
        lib_log "worker $w: restarts $r, dead $(it_metric "$conf" mqttflow_stage_dead_total worker "$w")"
    done
}

# ---- run directly: the smoke test of the helpers ----
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    it_require "$IT_CB/echo.so"
    it_broker || lib_fail "no broker"
    it_conf 'topics:' '  - name: "in/#"' '    qos: 1' -- 1 <<EOF
callbacks:
  echo:
    module: "$IT_CB/echo.so"
    function: "echo"
rules:
  - rule: "echo_all"
    topic: "in/#"
    action: "echo_chain"
processing_chains:
  echo_chain:
    - step: "custom_processor"
      config: {callback: "echo", prefix: "out/"}
EOF
    "$MQTTFLOW" check "$conf" >"$LIB_TMP/check.log" 2>&1 || {
        cat "$LIB_TMP/check.log" >&2
        lib_fail "mqttflow check refused the config"
    }
    it_start "$conf"
    [[ $(it_shm_left "$IT_INSTANCE") -gt 0 ]] || lib_fail "no segment of $IT_INSTANCE while running"
    it_sub sub -p "$MQTT_PORT" -t 'out/#' -q 1 -n 100 -I 10
    it_mfpub pub -p "$MQTT_PORT" -t in/a -n 100 -q 1 -i 7
    res=$(it_sub_result sub 30)
    lib_log "mfsub: $res"
    expect_eq "unique" "$(result_field "$LIB_TMP/sub.log" unique)" 100
    expect_eq "lost" "$(result_field "$LIB_TMP/sub.log" lost)" 0
    expect_eq "reorder" "$(result_field "$LIB_TMP/sub.log" reorder)" 0
    expect_eq "router in" "$(it_metric "$conf" mqttflow_stage_in_total router)" 100
    it_stop "$conf"
    lib_log "PASS"
fi
