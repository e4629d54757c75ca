#include "sub_ops.h"

#include "mqttc.h"

/* paho's subscriber behind the table: thin casts, subscriber.h holds the contracts */
static int paho_create(const cfg_client *c, const char *instance, const sub_cbs *cb, void **out)
{
    int rc = subscriber_create(c, instance, cb->message, cb->arg, (subscriber **)out);
    if (rc == 0)
        subscriber_set_stats(*out, cb->slot);
    return rc;
}

static int paho_start(void *s)
{
    return subscriber_start(s);
}

static void paho_poll(void *s, int timeout_ms)
{
    subscriber_poll(s, timeout_ms);
}

static bool paho_is_ready(const void *s)
{
    return subscriber_is_ready(s);
}

static bool paho_is_connected(const void *s)
{
    return subscriber_is_connected(s);
}

static bool paho_first_attempt_done(const void *s)
{
    return subscriber_first_attempt_done(s);
}

static bool paho_is_paused(const void *s)
{
    return subscriber_is_paused(s);
}

static void paho_resume(void *s)
{
    subscriber_resume(s);
}

static int paho_stop(void *s, int timeout_ms)
{
    return subscriber_stop(s, timeout_ms);
}

static void paho_destroy(void *s)
{
    subscriber_destroy(s);
}

const sub_ops sub_ops_paho = {
    .name = "paho",
    .batches = false,
    .create = paho_create,
    .start = paho_start,
    .poll = paho_poll,
    .is_ready = paho_is_ready,
    .is_connected = paho_is_connected,
    .first_attempt_done = paho_first_attempt_done,
    .is_paused = paho_is_paused,
    .resume = paho_resume,
    .stop = paho_stop,
    .destroy = paho_destroy,
};

const sub_ops *sub_ops_select(const cfg *conf, const cfg_client *c)
{
    return mqttc_wanted(conf->runtime.mqtt_io, c, "ingress") ? &sub_uring_ops : &sub_ops_paho;
}
