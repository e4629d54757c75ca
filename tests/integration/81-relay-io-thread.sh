# 81-relay-io-thread: the relay's fallback I/O path, an I/O thread per io_uring connection
# (relay/conn_uring.h), through a target broker's outage, so that CI covers it as well as the
# default one-thread path (which needs IORING_OP_FUTEX_WAITV, Linux 6.7; on an older kernel the
# fallback is the only path and 33 runs it too). It is 33-spool-target-down with
# MQTTFLOW_RELAY_IO_THREAD=1 in the stages' environment, plus one check: the relay logged that
# it took the fallback path.
export MQTTFLOW_RELAY_IO_THREAD=1
RELAY_PATH_EXPECT="io_uring connections on I/O threads of their own (MQTTFLOW_RELAY_IO_THREAD=1)"
# shellcheck source=tests/integration/33-spool-target-down.sh
. "$(dirname "$0")/33-spool-target-down.sh"
