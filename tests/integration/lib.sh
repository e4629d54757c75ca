# shellcheck shell=bash disable=SC2034
# lib.sh: helpers shared by the integration and fault tests (source it; bash only).
#
#   . "$(dirname "$0")/lib.sh"          # sets -u, a private temp dir and an EXIT trap
#   broker_start                        # mosquitto on a free port: $MQTT_PORT, $MQTT_PID
#   broker_start b2                     # a second one: $b2_PORT, $b2_PID (any name [A-Za-z_]+)
#   lib_spawn NAME CMD...               # start CMD in the background, tracked: $NAME_PID (log
#                                       #   $LIB_TMP/NAME.log); killed by the cleanup
#   "$MFSUB" -H 127.0.0.1 -p "$MQTT_PORT" -t 'out/#' -n 1000 -R "$LIB_TMP/sub.ready" ... &
#   wait_file "$LIB_TMP/sub.ready" 10   # event, not sleep
#
# Works with or without `set -e` in the test. Cleanup (trap on EXIT, INT, TERM) kills only the processes this script started through
# lib_spawn / broker_start / lib_track (TERM, then KILL after 3 s), and removes $LIB_TMP
# unless KEEP_TMP=1. Nothing here uses pkill/killall.
#
# Binaries: $BUILD (default "build") -> $MFPUB $MFSUB $MQTTFLOW $MF_INGRESS $MF_ROUTER
# $MF_WORKER $MF_RELAY.

set -u

BUILD=${BUILD:-build}
MFPUB=$BUILD/tests/tools/mfpub
MFSUB=$BUILD/tests/tools/mfsub
MQTTFLOW=$BUILD/bin/mqttflow
MF_INGRESS=$BUILD/bin/mqttflow-ingress
MF_ROUTER=$BUILD/bin/mqttflow-router
MF_WORKER=$BUILD/bin/mqttflow-worker
MF_RELAY=$BUILD/bin/mqttflow-relay
MOSQUITTO=${MOSQUITTO:-$(command -v mosquitto || echo /usr/sbin/mosquitto)}

LIB_TMP=$(mktemp -d "${TMPDIR:-/tmp}/mqttflow-it.XXXXXX")
LIB_PIDS=()

# log to stderr with the test's name
lib_log() {
    echo "[$(basename "$0")] $*" >&2
}

# fail the test: message, exit 1 (the EXIT trap cleans up)
lib_fail() {
    lib_log "FAIL: $*"
    exit 1
}

# remember a pid to kill at cleanup
lib_track() {
    LIB_PIDS+=("$1")
}

# stop one pid we started: TERM, wait up to $2 seconds (default 3), then KILL. Returns the
# process's exit status when it was our child, else 0.
lib_stop_pid() {
    local pid=$1 secs=${2:-3} i rc=0
    if ! kill -0 "$pid" 2>/dev/null; then
        wait "$pid" 2>/dev/null && return 0 || return $?
    fi
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < secs * 20; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        # a zombie child still answers kill -0: reap it if it has exited
        if [[ $(ps -o stat= -p "$pid" 2>/dev/null) == Z* ]]; then break; fi
        sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null && [[ $(ps -o stat= -p "$pid" 2>/dev/null) != Z* ]]; then
        lib_log "pid $pid ignored SIGTERM for ${secs}s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null && rc=0 || rc=$?
    return $rc
}

lib_cleanup() {
    local rc=$? pid
    set +e # a test may run with -e: the cleanup must always get through every pid
    trap - EXIT INT TERM
    for ((i = ${#LIB_PIDS[@]} - 1; i >= 0; i--)); do
        pid=${LIB_PIDS[i]}
        kill -0 "$pid" 2>/dev/null && lib_stop_pid "$pid" 3
    done
    if [[ ${KEEP_TMP:-0} == 1 || $rc != 0 ]]; then
        lib_log "logs kept in $LIB_TMP"
    else
        rm -rf "$LIB_TMP"
    fi
    exit "$rc"
}
trap lib_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# a TCP port on 127.0.0.1 that nothing listens on (a race with other tests is possible but
# unlikely: ports are random in 20000-60999 and checked just before use)
free_port() {
    local p i
    for ((i = 0; i < 200; i++)); do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 41000))
        if [[ -z $(ss -Hltn "sport = :$p" 2>/dev/null) ]] &&
            ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    lib_log "free_port: no free port found"
    return 1
}

# whether something accepts TCP connections on 127.0.0.1:$1
port_is_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_for SECONDS CMD...: run CMD every 50 ms until it succeeds; 1 on timeout
wait_for() {
    local secs=$1 end
    shift
    end=$((SECONDS + secs))
    while ! "$@"; do
        ((SECONDS >= end)) && return 1
        sleep 0.05
    done
    return 0
}

# wait_file PATH [SECONDS=10]: until PATH exists (mfsub -R ready files); 1 on timeout
wait_file() {
    wait_for "${2:-10}" test -e "$1"
}

# broker_start [NAME=MQTT] [PORT] [EXTRA_CONF_LINE...]: start mosquitto on 127.0.0.1, on PORT
# (or a free port when empty); sets ${NAME}_PORT, ${NAME}_PID, ${NAME}_CONF, ${NAME}_LOG and
# waits (10 s) until it accepts connections. Extra lines are appended to the config and
# override the defaults, e.g. for a broker whose sessions and queued messages survive
# broker_restart:
#   broker_start MQTT "" "persistence true" "persistence_location $LIB_TMP/"
# Returns 1 when it did not come up.
broker_start() {
    local name=${1:-MQTT} port=${2:-} conf log pid
    shift 2 2>/dev/null || shift $#
    [[ -n $port ]] || port=$(free_port) || return 1
    conf=$LIB_TMP/$name.conf
    log=$LIB_TMP/$name.log
    {
        echo "listener $port 127.0.0.1"
        echo "allow_anonymous true"
        echo "max_queued_messages 0"
        echo "max_queued_bytes 0"
        echo "set_tcp_nodelay true"
        echo "persistence false"
        echo "log_dest stderr"
        echo "log_type error"
        echo "log_type warning"
        # as root, mosquitto would switch to user "mosquitto", which cannot write into our
        # 0700 temp dir (persistence_location for restart tests)
        [[ $EUID != 0 ]] || echo "user root"
        local l
        for l in "$@"; do echo "$l"; done
    } >"$conf"
    "$MOSQUITTO" -c "$conf" >>"$log" 2>&1 &
    pid=$!
    lib_track "$pid"
    printf -v "${name}_PORT" '%s' "$port"
    printf -v "${name}_PID" '%s' "$pid"
    printf -v "${name}_CONF" '%s' "$conf"
    printf -v "${name}_LOG" '%s' "$log"
    if ! wait_for 10 port_is_open "$port"; then
        lib_log "mosquitto $name did not accept connections on $port (log: $log)"
        cat "$log" >&2
        return 1
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        lib_log "mosquitto $name exited (port $port taken?)"
        cat "$log" >&2
        return 1
    fi
    return 0
}

# broker_stop [NAME=MQTT]: SIGTERM and reap it (its port stays in ${NAME}_PORT)
broker_stop() {
    local name=${1:-MQTT} pidvar
    pidvar=${name}_PID
    [[ -n ${!pidvar:-} ]] || return 0
    lib_stop_pid "${!pidvar}" 5 || true
    printf -v "$pidvar" '%s' ""
    return 0
}

# broker_kill [NAME=MQTT]: SIGKILL (a crash), reaped
broker_kill() {
    local name=${1:-MQTT} pidvar
    pidvar=${name}_PID
    [[ -n ${!pidvar:-} ]] || return 0
    kill -KILL "${!pidvar}" 2>/dev/null || true
    wait "${!pidvar}" 2>/dev/null || true
    printf -v "$pidvar" '%s' ""
    return 0
}

# broker_restart [NAME=MQTT] [DOWN_SECONDS=0]: stop, stay down, start again on the same port
# with the same config
broker_restart() {
    local name=${1:-MQTT} down=${2:-0} portvar conf pid
    portvar=${name}_PORT
    broker_stop "$name"
    [[ $down == 0 ]] || sleep "$down"
    conf=${name}_CONF
    "$MOSQUITTO" -c "${!conf}" >>"$LIB_TMP/$name.log" 2>&1 &
    pid=$!
    lib_track "$pid"
    printf -v "${name}_PID" '%s' "$pid"
    wait_for 10 port_is_open "${!portvar}" || {
        lib_log "mosquitto $name did not come back on ${!portvar}"
        return 1
    }
}

# lib_spawn NAME CMD...: start CMD in the background (stdout+stderr to $LIB_TMP/NAME.log),
# tracked for cleanup; sets ${NAME}_PID
lib_spawn() {
    local name=$1
    shift
    "$@" >"$LIB_TMP/$name.log" 2>&1 &
    lib_track $!
    printf -v "${name}_PID" '%s' "$!"
}

# result_field FILE KEY: the value of KEY=... on the last "RESULT " line of FILE (mfpub/mfsub)
result_field() {
    grep '^RESULT ' "$1" | tail -n 1 | tr ' ' '\n' | sed -n "s/^$2=//p"
}

# expect_eq WHAT GOT WANT: fail the test unless equal
expect_eq() {
    [[ $2 == "$3" ]] || lib_fail "$1: got '$2', want '$3'"
}
