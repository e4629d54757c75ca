/* test_relay through paho: the same tests, the same assertions, with MQTTFLOW_MQTT_IO=paho in
 * the environment the relay inherits. test_relay itself runs the default (runtime.mqtt_io: auto,
 * so relay/conn_uring for its mqtt:// targets); both kinds must deliver the same. */
#include <stdlib.h>

int test_relay_main(void);
#define main test_relay_main
#include "test_relay.c"
#undef main

int main(void)
{
    setenv("MQTTFLOW_MQTT_IO", "paho", 1);
    return test_relay_main();
}
