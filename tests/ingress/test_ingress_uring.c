/* test_ingress through the io_uring data path: the same tests, the same assertions, with
 * MQTTFLOW_MQTT_IO=uring in the environment the ingress inherits (the WebSocket test stays on
 * paho, which sub_ops_select keeps for ws://). Deliveries and acknowledgements must match
 * the paho run (test_ingress) exactly. */
#include <stdlib.h>

int test_ingress_main(void);
#define main test_ingress_main
#include "test_ingress.c"
#undef main

int main(void)
{
    setenv("MQTTFLOW_MQTT_IO", "uring", 1);
    return test_ingress_main();
}
