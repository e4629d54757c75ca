#!/usr/bin/env bash
# demo.sh: mqttflow live, in under a minute (`make demo`, or run it directly).
#
# Starts two local mosquitto brokers on free loopback ports (broker 1 = client1, the sensors'
# broker; broker 2 = client2, the relay target), runs `mqttflow run` on a copy of
# config/examples/config.yaml pointed at them, prints every output message (alerts/#,
# analysis/# and processed/# on both brokers), publishes simulated sensor readings
# (temperature 20-40 and humidity 20-80, JSON, 10 msg/s), shows `mqttflow status` half-way,
# then stops everything cleanly.
#
#   DEMO_SECONDS=20   how long readings are published (default 20)
#   DEMO_RATE=10      readings per second (default 10, half temperature, half humidity)
#   BUILD=build       the build folder to take the binaries from (built when missing)
#   KEEP_TMP=1        keep the temporary folder (config, logs) afterwards
#   DEMO_CONFIG=...   another example of the same shape (`make demo-python`:
#                     config/examples/python/config.yaml, the callbacks in Python)
set -u
cd "$(dirname "$0")/.." || exit 1
REPO=$(pwd)
BUILD=${BUILD:-build}
SECONDS_TO_RUN=${DEMO_SECONDS:-20}
DEMO_CONFIG=${DEMO_CONFIG:-config/examples/config.yaml}
DEMO_DIR=$(cd "$(dirname "$DEMO_CONFIG")" && pwd)
RATE=${DEMO_RATE:-10}
MQTTFLOW=$REPO/$BUILD/bin/mqttflow
MOSQUITTO=${MOSQUITTO:-$(command -v mosquitto || echo /usr/sbin/mosquitto)}

say() { printf '\033[1m== %s\033[0m\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

for tool in "$MOSQUITTO" mosquitto_pub mosquitto_sub; do
    command -v "$tool" >/dev/null || die "$tool is needed (apt-get install mosquitto mosquitto-clients)"
done

# ---- build what the demo needs, if missing ----
need=("$BUILD/bin/mqttflow" "$BUILD/bin/mqttflow-ingress" "$BUILD/bin/mqttflow-router"
      "$BUILD/bin/mqttflow-worker" "$BUILD/bin/mqttflow-relay")
for cb in config/examples/callbacks/*.c; do need+=("${cb%.c}.so"); done
grep -q 'module: ".*\.py"' "$DEMO_CONFIG" && need+=("$BUILD/bin/mqttflow-python.so")
missing=0
for f in "${need[@]}"; do [[ -x $f || ( -f $f && $f == *.so ) ]] || missing=1; done
if ((missing)); then
    say "building (make BUILD=$BUILD)"
    make -s BUILD="$BUILD" "${need[@]}" || die "build failed"
fi

# wait_for SECONDS CMD...: poll CMD every 50 ms until it succeeds (the event we wait for)
wait_for() {
    local end=$((SECONDS + $1))
    shift
    until "$@"; do
        ((SECONDS < end)) || return 1
        sleep 0.05
    done
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
none_alive() { # PID...: none of them (default: every process we started) runs any more
    local p
    for p in "${@:-${PIDS[@]}}"; do kill -0 "$p" 2>/dev/null && return 1; done
    return 0
}
in_file() { grep -q -- "$2" "$1" 2>/dev/null; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/mqttflow-demo.XXXXXX")
PIDS=()
SUP_PID=
cleanup() {
    local rc=$? i
    trap - EXIT INT TERM
    if [[ -n $SUP_PID ]] && kill -0 "$SUP_PID" 2>/dev/null; then
        # `stop` rather than a signal: after a Ctrl-C the supervisor already has its SIGINT,
        # and a second signal would make it kill its stages instead of draining them
        "$MQTTFLOW" stop -s "$TMP/mqttflow.sock" >/dev/null 2>&1 || kill -TERM "$SUP_PID" 2>/dev/null
        wait "$SUP_PID" 2>/dev/null
    fi
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        kill -TERM "${PIDS[i]}" 2>/dev/null
    done
    # a client that keeps retrying a dead broker may sit on SIGTERM: 3 s, then SIGKILL
    wait_for 3 none_alive || kill -KILL "${PIDS[@]}" 2>/dev/null
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        wait "${PIDS[i]}" 2>/dev/null
    done
    if [[ ${KEEP_TMP:-0} == 1 ]]; then echo "demo files kept in $TMP"; else rm -rf "$TMP"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# a free TCP port on 127.0.0.1 (checked just before use)
free_port() {
    local p i
    for ((i = 0; i < 200; i++)); do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
    done
    return 1
}

start_broker() { # NAME PORT
    cat >"$TMP/$1.conf" <<EOF
listener $2 127.0.0.1
allow_anonymous true
persistence false
set_tcp_nodelay true
log_dest stderr
log_type error
log_type warning
log_type notice
connection_messages true
EOF
    # stderr, not `log_dest file`: mosquitto started as root drops to its own user, which
    # cannot write into our private temporary folder
    "$MOSQUITTO" -c "$TMP/$1.conf" >>"$TMP/$1.log" 2>&1 &
    PIDS+=($!)
    wait_for 10 port_open "$2" || die "mosquitto $1 did not start on port $2 (see $TMP/$1.log)"
}

# ---- two brokers ----
P1=$(free_port) || die "no free port"
P2=$(free_port) || die "no free port"
[[ $P1 != "$P2" ]] || P2=$(free_port)
say "brokers: broker1 (client1, sensors) on 127.0.0.1:$P1, broker2 (client2, relay target) on 127.0.0.1:$P2"
start_broker broker1 "$P1"
start_broker broker2 "$P2"

# ---- the example config, pointed at them ----
INSTANCE=demo$$
CFG=$TMP/config.yaml
sed -e "s|^\(    port: \)1883\$|\1$P1|" \
    -e "s|^\(    port: \)1884\$|\1$P2|" \
    -e "s|module: \"callbacks/|module: \"$REPO/config/examples/callbacks/|" \
    -e "s|module: \"\([A-Za-z0-9_]*\.py\)\"|module: \"$DEMO_DIR/\1\"|" \
    -e "s|^\(  instance: \).*|\1\"$INSTANCE\"\\
  control_socket: \"$TMP/mqttflow.sock\"\\
  spool_dir: \"$TMP/spool\"\\
  dead_letter: { dir: \"$TMP/dead\" }|" \
    "$DEMO_CONFIG" >"$CFG"
if ! grep -q "port: $P1" "$CFG" || ! grep -q "port: $P2" "$CFG"; then
    die "could not patch the example config"
fi

say "mqttflow check $CFG"
"$MQTTFLOW" check "$CFG" || die "the config does not check"

# ---- the subscribers, printing every output message ----
for b in 1 2; do
    port=P$b
    mosquitto_sub -h 127.0.0.1 -p "${!port}" -i "demo-sub$b" -v -q 1 \
        -t 'alerts/#' -t 'analysis/#' -t 'processed/#' \
        > >(sed -u "s/^/  [broker$b] /" | tee -a "$TMP/received.txt") 2>&1 &
    PIDS+=($!)
done
wait_for 10 in_file "$TMP/broker1.log" "as demo-sub1" || die "subscriber 1 did not connect"
wait_for 10 in_file "$TMP/broker2.log" "as demo-sub2" || die "subscriber 2 did not connect"

# ---- the pipeline ----
say "mqttflow run (instance $INSTANCE; stage logs below are prefixed with |)"
"$MQTTFLOW" run "$CFG" 2> >(sed -u 's/^/  | /' >&2) &
SUP_PID=$!
wait_for 30 bash -c "'$MQTTFLOW' status -s '$TMP/mqttflow.sock' | grep -q '^instance .*: running'" ||
    die "mqttflow did not finish starting"

# ---- the sensors ----
say "publishing $RATE readings/s for $SECONDS_TO_RUN s on broker1 (sensors/temperature, sensors/humidity)"
half=$((SECONDS_TO_RUN / 2))
gen() { # KIND MIN MAX: one JSON reading per line, RATE/2 per second
    local kind=$1 lo=$2 hi=$3 i n=$((SECONDS_TO_RUN * RATE / 2)) period
    period=$(awk -v r="$RATE" 'BEGIN{printf "%.3f", 2 / r}')
    for ((i = 0; i < n; i++)); do
        printf '{"sensor":"%s-1","%s":%d.%d,"seq":%d}\n' "$kind" "$kind" \
            $((lo + RANDOM % (hi - lo))) $((RANDOM % 10)) "$i"
        sleep "$period" # the sensor's pace, not a synchronisation
    done
}
gen temperature 20 40 | mosquitto_pub -h 127.0.0.1 -p "$P1" -i demo-pub-t -q 1 -t sensors/temperature -l &
PUB_T=$!
gen humidity 20 80 | mosquitto_pub -h 127.0.0.1 -p "$P1" -i demo-pub-h -q 1 -t sensors/humidity -l &
PUB_H=$!
PIDS+=("$PUB_T" "$PUB_H")

# half-way: the status table (the publishers keep going meanwhile)
# the demo's pace: let readings flow for a while (in the background, so that a Ctrl-C
# interrupts the wait at once and the trap cleans up)
sleep "$half" &
wait $!
say "mqttflow status (half-way)"
"$MQTTFLOW" status -s "$TMP/mqttflow.sock" | sed 's/^/    /'

# the publishers end with their input; one that cannot reach the broker would wait forever
wait_for $((SECONDS_TO_RUN - half + 10)) none_alive "$PUB_T" "$PUB_H" ||
    die "the publishers did not finish (broker gone?)"
# the last readings may still be in flight: wait until the relay has published everything
# the workers produced (the status' relay IN stops moving), at most 5 s
last=
stable() {
    local now
    now=$("$MQTTFLOW" status -s "$TMP/mqttflow.sock" 2>/dev/null | awk '$1 == "relay" {print $7 "/" $8}')
    [[ -n $now && $now == "$last" ]] && return 0
    last=$now
    return 1
}
wait_for 5 stable || true

say "mqttflow stop"
"$MQTTFLOW" stop -s "$TMP/mqttflow.sock" || die "stop failed"
wait "$SUP_PID"
rc=$?
SUP_PID=
left=$(compgen -G "/dev/shm/mqttflow.$INSTANCE.*" | wc -l)
total=$(wc -l <"$TMP/received.txt" 2>/dev/null || echo 0)
alerts=$(grep -c ' alerts/' "$TMP/received.txt" 2>/dev/null || true)
analysis=$(grep -c ' analysis/' "$TMP/received.txt" 2>/dev/null || true)
processed=$(grep -c ' processed/' "$TMP/received.txt" 2>/dev/null || true)
say "done: mqttflow exited $rc; $total output messages ($alerts alerts, $analysis humidity analyses, $processed processed temperature windows); $left shared-memory segments left"
[[ $rc == 0 && $left == 0 ]]
