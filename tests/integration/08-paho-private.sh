#!/usr/bin/env bash
# 03-paho-private: the binaries load mqttflow's private paho build (scripts/paho.sh, staged by
# make into $BUILD/lib/mqttflow), never the system's libpaho while the private one is there.
#   - every binary that needs paho carries RUNPATH $ORIGIN/../lib/mqttflow (the stages) or
#     $ORIGIN/../../lib/mqttflow (tests and tools);
#   - the rpath wins over the system's library: a copy of the stage binaries in a tree of
#     their own, with a stand-in library in tree/lib/mqttflow, resolves it there, and
#     `mqttflow version` says "private build"; without it, the system's (the fallback);
#   - the build's own binaries resolve the staged library when make staged one (else the
#     system's, the documented fallback, said in this log), and so do running stages:
#     /proc/PID/maps of the ingress and the relay of a live pipeline.
. "$(dirname "$0")/39-pipeline-lib.sh"

it_require
unset LD_LIBRARY_PATH LD_PRELOAD
SO=libpaho-mqtt3as.so.1
bindir=$IT_ROOT/$BUILD/bin
[[ $BUILD == /* ]] && bindir=$BUILD/bin
staged=$bindir/../lib/mqttflow/$SO
system=$(ldconfig -p | awk -v so="$SO" '$1 == so { print $NF; exit }')
[[ -n $system ]] || lib_fail "no system $SO in the loader's cache"
system=$(realpath "$system")

needs_paho() { readelf -d "$1" 2>/dev/null | grep -q "NEEDED.*\[$SO\]"; }
runpath() { readelf -d "$1" | sed -n 's/.*(RUNPATH).*\[\(.*\)\]/\1/p'; }
# the path the loader resolves $SO to for binary $1 (resolved)
resolves() {
    local p
    p=$(ldd "$1" | awk -v so="$SO" '$1 == so { print $3 }')
    [[ -n $p && $p != not ]] && realpath "$p"
}

# 1. the rpath of every binary that needs paho
n=0
for b in "$bindir"/* "$bindir"/../tests/*/*; do
    [[ -f $b && -x $b ]] && needs_paho "$b" || continue
    n=$((n + 1))
    case $b in
    "$bindir"/../tests/*) want='$ORIGIN/../../lib/mqttflow' ;;
    *) want='$ORIGIN/../lib/mqttflow' ;;
    esac
    [[ :$(runpath "$b"): == *":$want:"* ]] || lib_fail "$b: RUNPATH '$(runpath "$b")' lacks $want"
done
needs_paho "$MF_INGRESS" && needs_paho "$MF_RELAY" || lib_fail "the ingress or the relay does not link paho"
lib_log "$n binaries link paho, each with the rpath"

# 2. the rpath wins over the system's library: a tree of our own with a stand-in library
tree=$LIB_TMP/tree
mkdir -p "$tree/bin" "$tree/lib/mqttflow"
cp "$MF_INGRESS" "$MF_RELAY" "$MQTTFLOW" "$tree/bin/"
expect_eq "tree without a private library: ingress" "$(resolves "$tree/bin/mqttflow-ingress")" "$system"
"$tree/bin/mqttflow" version | grep -q "^paho.mqtt.c loaded from: .*(the system's" ||
    lib_fail "version does not say the system's: $("$tree/bin/mqttflow" version)"
cp "$system" "$tree/lib/mqttflow/$SO"
for s in mqttflow-ingress mqttflow-relay; do
    expect_eq "tree with a private library: $s" "$(resolves "$tree/bin/$s")" "$tree/lib/mqttflow/$SO"
done
"$tree/bin/mqttflow" version | grep -q "^paho.mqtt.c loaded from: $tree/bin/../lib/mqttflow/$SO (mqttflow's private build)" ||
    lib_fail "version does not name the private build: $("$tree/bin/mqttflow" version)"

# 3. the build's own binaries
if [[ -f $staged ]]; then
    expect=$(realpath "$staged") says="(mqttflow's private build)"
    lib_log "private paho staged: $expect"
else
    expect=$system says="(the system's"
    lib_log "no private paho staged in $BUILD (scripts/paho.sh could not build it): the fallback, $system, is expected"
fi
"$MQTTFLOW" version | grep -qF "$says" || lib_fail "mqttflow version does not say $says: $("$MQTTFLOW" version)"
for b in "$bindir"/*; do
    [[ -f $b && -x $b ]] && needs_paho "$b" || continue
    expect_eq "$(basename "$b") resolves" "$(resolves "$b")" "$expect"
done

# 4. running stages map that library and no other paho
it_broker || lib_fail "broker did not start"
it_relay_conf 1
it_start "$conf"
status=$(it_status "$conf")
for stage in ingress relay; do
    pid=$(awk -v s="$stage" '$1 == s { print ($2 ~ /^[0-9]+$/) ? $2 : $3; exit }' <<<"$status")
    [[ $pid =~ ^[0-9]+$ ]] || lib_fail "no pid of the $stage in: $status"
    maps=$(awk '$6 ~ /libpaho/ { print $6 }' "/proc/$pid/maps" | sort -u)
    expect_eq "$stage (pid $pid) maps" "$maps" "$expect"
done
it_stop "$conf"

lib_log "PASS"
