#include "mqtt_why.h"

#include <stddef.h>
#include <string.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* One table of refusals: the 3.1.1 CONNACK return codes and the MQTT 5 reason codes that mean
 * the same thing share a row. */
static const struct {
    int v311;   /* CONNACK return code, 0 = none */
    int reason; /* MQTT 5 reason code, 0 = none */
    const char *why;
} refusals[] = {
    {1, 0x84,
     "the broker refused the protocol version (connection refused: unacceptable protocol "
     "version); set mqtt_version to one the broker supports"},
    {2, 0x85,
     "the broker refused the client id (identifier rejected); use a client_id of letters and "
     "digits the broker accepts"},
    {3, 0x88,
     "the broker is up but refuses connections for now (server unavailable); it is retried"},
    {4, 0x86,
     "the broker refused the user name or password (bad user name or password); check "
     "username and the secret in password_env / password_file"},
    {5, 0x87,
     "the broker refused the credentials: not authorized (no or wrong username/password, or "
     "the broker's ACL denies this client); set username and password_env / password_file"},
    {0, 0x8A, "the broker has banned this client; see the broker's configuration"},
    {0, 0x8C, "the broker refused the authentication method"},
    {0, 0x9F, "the broker refuses connections at this rate (connection rate exceeded)"},
};

int mqtt_why_code(int code, const char *message)
{
    return message && strstr(message, "connect timeout") ? MQTT_WHY_NO_CONNACK : code;
}

const char *mqtt_why_connect(int code, int reason, const char *message)
{
    if (code == MQTT_WHY_NO_CONNACK)
        message = "connect timeout";
    for (size_t i = 0; i < N(refusals); i++)
        if ((reason && refusals[i].reason == reason) || (code > 0 && refusals[i].v311 == code))
            return refusals[i].why;
    if (message && strstr(message, "connect timeout"))
        return "no CONNACK within the connect timeout: something accepted the TCP connection "
               "but did not answer as an MQTT broker (a TLS port reached with mqtt://, a proxy, "
               "or a broker too busy to answer); check broker_url, port and tls";
    /* paho says "TCP/TLS connect failure" for a refused TCP connect, plain or not */
    if (message && !strstr(message, "TCP/TLS connect failure") &&
        (strstr(message, "TLS") || strstr(message, "SSL")))
        return "the TLS handshake failed; check tls.ca, the broker's certificate and its name";
    return "the broker could not be reached (TCP connect failed: not running, wrong host or "
           "port, or a firewall); it is retried with backoff";
}

const char *mqtt_why_lost(double up_s, unsigned repeats)
{
    if (repeats >= 2)
        return "the broker closed each of the last connections seconds after it was made: "
               "most likely another client with the same client id takes the session over "
               "(a broker keeps one connection per client id); give each client its own "
               "client_id (with shared_group the instance name is appended)";
    if (up_s < 5)
        return "the broker closed the connection soon after it was made without a reason (a "
               "client with the same client id taking the session over, or a broker ACL); "
               "see the broker's log";
    return "the broker or the network closed the connection without a reason (broker "
           "restart, keepalive timeout, another client with the same client id); see the "
           "broker's log";
}

static const struct {
    int reason;
    const char *why;
} disconnects[] = {
    {0x8E, "session taken over: another client connected with the same client id; give each "
           "client its own client_id"},
    {0x8D, "keepalive timeout: the broker heard nothing for 1.5 x keepalive"},
    {0x8B, "the broker is shutting down"},
    {0x89, "the broker is busy"},
    {0x87, "not authorized"},
    {0x90, "the broker refused a topic name"},
    {0x93, "receive maximum exceeded"},
    {0x95, "packet too large for the broker"},
    {0x97, "quota exceeded"},
    {0x98, "administrative action"},
};

const char *mqtt_why_disconnect_reason(int reason)
{
    for (size_t i = 0; i < N(disconnects); i++)
        if (disconnects[i].reason == reason)
            return disconnects[i].why;
    return "the broker disconnected this client (see its reason code)";
}
