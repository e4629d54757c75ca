# shellcheck shell=bash
# benchlib.sh: what the shell benchmarks share. Sourced first: set -eu, the repository root as
# the working directory ($ROOT), an absolute exported $BUILD, then
# tests/integration/39-pipeline-lib.sh.
#
#   bench_echo_start NAME QOS   a broker and the benchmarks' one-rule pipeline running on it:
#                               client NAME-$$ on in/# at QOS, one per_topic echo rule to
#                               out/<topic> (echo.so), one worker, WARNING logs; config
#                               $conf ($LIB_TMP/NAME.yaml), supervisor $mf_PID

set -eu
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
export BUILD
# shellcheck source=tests/integration/39-pipeline-lib.sh
. "$ROOT/tests/integration/39-pipeline-lib.sh"

bench_echo_start() {
    local name=$1 qos=$2
    it_broker || lib_fail "broker did not start"
    conf=$LIB_TMP/$name.yaml
    cat >"$conf" <<YAML
mqtt_clients:
  - client_id: "$name-$$"
    broker_url: "mqtt://127.0.0.1"
    port: $MQTT_PORT
    topics:
      - name: "in/#"
        qos: $qos
callbacks:
  echo: { module: "$IT_CB/echo.so", function: "echo" }
rules:
  - { rule: "fwd", topic: "in/#", action: "fwd", execution_mode: "per_topic" }
processing_chains:
  fwd:
    - { step: "custom_processor", config: { callback: "echo", prefix: "out/" } }
logging:
  default_level: "WARNING"
YAML
    # BENCH_RUNTIME: one extra runtime key, e.g. "ingress_coalesce_us: 0" (A/B of a setting)
    it_runtime 1 ${BENCH_RUNTIME:+"$BENCH_RUNTIME"} >>"$conf"
    it_start "$conf"
}
