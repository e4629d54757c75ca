#!/usr/bin/env bash
# Builds mqttflow's private paho.mqtt.c: Debian's own source package of the installed
# libpaho-mqtt-dev, built the way Debian builds it plus -DPAHO_HIGH_PERFORMANCE=TRUE, installed
# into a directory of mqttflow's own ($PAHO_DIR). The Makefile copies it into the build tree
# (BUILD/lib/mqttflow) and the binaries find it there through their rpath; the system's paho is
# never touched. Called by scripts/setup.sh; README.md "paho.mqtt.c" says why.
#
# Debian's build keeps paho's heap tracking (every malloc/free through one global mutex) and
# its function tracing; without them the same code runs 1.3-1.6x faster
# (../shared/bench/BASELINES.md).
#
# Quick when the build is present: the stamp ($PAHO_DIR/BUILD-INFO) names the source version
# and the options; a different installed libpaho-mqtt-dev (a Debian update) rebuilds.
# Never fatal: when the source cannot be had (no network, an archive that does not serve it)
# it warns, remembers that for a day ($PAHO_DIR.unavailable) and exits 0, and `make` then links
# Debian's paho with a warning of its own. MQTTFLOW_PAHO=system skips it all.
set -euo pipefail

PAHO_DIR=${PAHO_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mqttflow/paho}
LIB=libpaho-mqtt3as.so.1 # the only variant mqttflow links (async, TLS)

say() { echo "paho: $*"; }
warn() {
    echo "paho: WARNING: $*" >&2
    echo "paho: WARNING: make will link Debian's libpaho-mqtt (heap tracking on, slower)." >&2
}

if [ "${MQTTFLOW_PAHO:-}" = system ]; then
    say "MQTTFLOW_PAHO=system: no private build"
    exit 0
fi

# the source package and version of the installed -dev package (whose headers mqttflow compiles
# against), so the private library is the same code as the system's one
srcpkg= srcver=
read -r srcpkg srcver < <(dpkg-query -W -f='${source:Package} ${source:Version}\n' libpaho-mqtt-dev 2>/dev/null) || true
if [ -z "$srcver" ]; then
    warn "libpaho-mqtt-dev is not installed (scripts/setup.sh installs it)"
    exit 0
fi
OPTS=(-DPAHO_HIGH_PERFORMANCE=TRUE -DPAHO_WITH_SSL=TRUE -DPAHO_BUILD_SHARED=TRUE
    -DPAHO_BUILD_STATIC=FALSE -DPAHO_BUILD_SAMPLES=FALSE -DPAHO_BUILD_DOCUMENTATION=FALSE
    -DPAHO_ENABLE_TESTING=FALSE)
want="$srcpkg $srcver ${OPTS[*]}"

if [ -f "$PAHO_DIR/lib/$LIB" ] && [ "$(cat "$PAHO_DIR/BUILD-INFO" 2>/dev/null)" = "$want" ]; then
    say "private build of $srcpkg $srcver present ($PAHO_DIR)"
    exit 0
fi
memo=$PAHO_DIR.unavailable
if [ -f "$memo" ] && [ "$(cat "$memo")" = "$want" ] && [ -n "$(find "$memo" -mmin -1440)" ]; then
    warn "the source of $srcpkg $srcver could not be had today; not retrying before $(date -d "$(stat -c %y "$memo") + 1 day" '+%F %R') (delete $memo to retry now)"
    exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
unavailable() {
    mkdir -p "$(dirname "$memo")"
    echo "$want" >"$memo"
    cp "$work/log" "$memo.log" 2>/dev/null || true
    warn "$1 (log: $memo.log)"
    exit 0
}
t0=$(date +%s)

# Debian 12 ships with binary package sources only. Derive the matching source entries from
# the system's own (same URIs, suites, components and keys; Types deb-src) into a private apt
# state under $work, so neither /etc/apt nor the system's package lists change.
apt_dir=$work/apt
mkdir -p "$apt_dir/sources.d" "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    # deb822: keep every stanza that has deb among its types, with Types set to deb-src
    awk 'function flush() { if (keep) printf "%s\n", buf; buf = ""; keep = 0 }
         /^[[:space:]]*$/ { flush(); next }
         /^#/ { next }
         /^Types:/ { if ($0 ~ /[[:space:]]deb([[:space:]]|$)/) keep = 1; buf = buf "Types: deb-src\n"; next }
         { buf = buf $0 "\n" }
         END { flush() }' "$f" >"$apt_dir/sources.d/$(basename "$f")"
done
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    sed -n 's/^[[:space:]]*deb[[:space:]]/deb-src /p' "$f" >"$apt_dir/sources.d/$(basename "$f").list"
done
APT=(apt-get -q -o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$apt_dir/sources.d"
    -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache")
# apt drops root to its sandbox user, which cannot enter a private temporary directory
[ "$(id -u)" -ne 0 ] || APT+=(-o APT::Sandbox::User=root)

say "building $srcpkg $srcver with PAHO_HIGH_PERFORMANCE into $PAHO_DIR"
# a repository without source indexes only warns; apt-get source below is the judge
"${APT[@]}" update >"$work/log" 2>&1 || true
(cd "$work" && "${APT[@]}" source "$srcpkg=$srcver") >>"$work/log" 2>&1 ||
    unavailable "could not fetch the source package $srcpkg $srcver (no deb-src access?)"
src=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name "$srcpkg-*" | head -n 1)
[ -n "$src" ] || unavailable "no unpacked source of $srcpkg"

# Debian's own flags (hardening, -O2 -g) and Debian's own -DPAHO_* options from its rules;
# ours come after them and win.
debian_opts=$(grep -o -- '-DPAHO_[A-Z_]*=[A-Za-z0-9]*' "$src/debian/rules" 2>/dev/null | tr '\n' ' ' || true)
export CFLAGS LDFLAGS
CFLAGS=$(dpkg-buildflags --get CFLAGS)
LDFLAGS=$(dpkg-buildflags --get LDFLAGS)
# shellcheck disable=SC2086 # debian_opts is a list of words
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=None $debian_opts "${OPTS[@]}" >>"$work/log" 2>&1 ||
    unavailable "cmake failed to configure $srcpkg"
cmake --build "$work/build" --target paho-mqtt3as -j "$(nproc)" >>"$work/log" 2>&1 ||
    unavailable "the build of $srcpkg failed"

# install: the library under its soname and the stamp, swapped in whole
built=$(find "$work/build" -name "$LIB" | head -n 1)
[ -n "$built" ] || unavailable "the build made no $LIB"
rm -rf "$PAHO_DIR.new"
mkdir -p "$PAHO_DIR.new/lib"
cp -L "$built" "$PAHO_DIR.new/lib/$LIB"
cp "$src/debian/copyright" "$PAHO_DIR.new/copyright" 2>/dev/null || true
echo "$want" >"$PAHO_DIR.new/BUILD-INFO"
rm -rf "$PAHO_DIR.old" "$memo" "$memo.log"
[ ! -e "$PAHO_DIR" ] || mv "$PAHO_DIR" "$PAHO_DIR.old"
mv "$PAHO_DIR.new" "$PAHO_DIR"
rm -rf "$PAHO_DIR.old"
say "done in $(($(date +%s) - t0)) s: $PAHO_DIR/lib/$LIB"
