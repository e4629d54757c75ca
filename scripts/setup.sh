#!/usr/bin/env bash
# Installs the Debian packages mqttflow needs to build, test and run its demo.
# Idempotent and quick when everything is present (dpkg is asked first, apt only when needed).
# Runs apt-get through sudo when not root.
set -euo pipefail

PACKAGES=(
    build-essential clang clang-format       # compiler, libFuzzer, format check
    libpaho-mqtt-dev                         # MQTT client (MQTTAsync)
    libyaml-dev                              # config parser
    liburing-dev                             # relay spool I/O
    libcmocka-dev                            # unit tests
    libjansson-dev                           # JSON payloads (conditions, templates)
    libpcre2-dev                             # rule regexes
    mosquitto mosquitto-clients              # the broker for tests and the demo
    procps psmisc iproute2                   # ps/pkill, fuser, ss in tests
    libmicrohttpd-dev                        # the supervisor's metrics endpoint
    curl python3-prometheus-client           # tests of the metrics endpoint
    cmake libssl-dev                         # the private paho build (scripts/paho.sh)
    python3 pkg-config man-db                # mqttflow.yaml(5) from reference.yaml; install tests
    dpkg-dev                                 # make deb (dpkg-shlibdeps, dpkg-gencontrol, dpkg-deb)
    linux-perf                               # make bench: system calls per stage
    python3-dev libpython3-dev               # Python callbacks: mqttflow-python.so embeds CPython
    python3-venv                             # the venv test of Python callbacks
    python3-paho-mqtt                        # bench: the Python framework's relay (relay_py)
)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "setup: all ${#PACKAGES[@]} packages present"
    exec "$(dirname "$0")/paho.sh"
fi

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
# Debian's mosquitto package may start a system broker on 1883; the tests and the demo start
# their own brokers on free ports and never use it.
# paho.mqtt.c without heap tracking, privately (README.md "paho.mqtt.c"); never fatal
"$(dirname "$0")/paho.sh"
echo "setup: done"
