/* test_ingress through paho: the same tests, the same assertions, with MQTTFLOW_MQTT_IO=paho
 * in the environment the ingress inherits. test_ingress itself runs the default
 * (runtime.mqtt_io: auto, so the io_uring path for its mqtt:// broker); deliveries and
 * acknowledgements must be the same through both. */
#include <stdlib.h>

int test_ingress_main(void);
#define main test_ingress_main
#include "test_ingress.c"
#undef main

int main(void)
{
    setenv("MQTTFLOW_MQTT_IO", "paho", 1);
    return test_ingress_main();
}
