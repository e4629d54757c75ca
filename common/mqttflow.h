/* mqttflow.h: the public callback API, version 1 (DESIGN §4). The one header a callback
 * module needs:
 *
 *     cc -shared -fPIC -I<mqttflow>/common -o cb.so cb.c
 *
 * A module is a shared object loaded by a worker process with dlopen. It exports one or more
 * functions of type mf_callback, named in the YAML (`callbacks: NAME: {module, function}`),
 * Including this header exports `mf_api_version` from the module (a weak definition, so any
 * number of files may include it); a worker refuses a module whose value differs from its own.
 *
 * Threading and lifetime: a worker runs one callback at a time on one thread. Every pointer a
 * callback receives (msgs, their topic/payload/client_id, the ctx, the strings returned by
 * mf_param) is valid only until the callback returns; copy what you keep. A crash, an abort or
 * a hang (past runtime.callback_timeout_ms) kills only the worker that runs it; the message is
 * retried on the restarted worker, then dead-lettered after runtime.max_attempts.
 *
 * Room to grow: new functions are only ever added; a change to an existing signature or to
 * mf_msg bumps MF_API_VERSION.
 */
#ifndef MQTTFLOW_H
#define MQTTFLOW_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MF_API_VERSION 1

/* One MQTT message, read-only. */
typedef struct mf_msg {
    const char *topic;   /* NUL-terminated */
    const void *payload; /* payload_len bytes, followed by one NUL byte */
    size_t payload_len;
    int qos, retain;
    const char *client_id; /* source client */
    uint64_t received_ns;  /* wall clock at ingress, ns since the epoch */
} mf_msg;

/* Opaque per-invocation context: which rule/step is running, where emitted messages go. */
typedef struct mf_ctx mf_ctx;

/* One signature for every callback: n == 1 for a message, n >= 0 for a sampler window.
 * Return 0 for success. Non-zero is an error: logged with rule and callback name, counted,
 * and the message handled per the rule's `on_error: log|dead_letter`. */
typedef int (*mf_callback)(mf_ctx *ctx, const mf_msg *msgs, size_t n);

/* Hand a message to the next step of the chain. At the end of a chain, or from a simple
 * callback rule, the message is published on the rule's source client (topic as given) with
 * the QoS and retain flag of the message being processed, unless a relay step sets them.
 * topic must be a valid MQTT topic name (no wildcards); payload may be NULL when len == 0.
 * Returns 0, -EINVAL (bad topic: empty, wildcards, control characters U+0000-U+001F or
 * U+007F-U+009F, not UTF-8, over 65535 bytes; or len > runtime.max_payload), -ENOSPC when the
 * per-invocation output limit is reached, or -EPERM when called in a process the callback
 * forked (only the worker may write its output ring). The data is copied before the call
 * returns. */
int mf_emit(mf_ctx *ctx, const char *topic, const void *payload, size_t len);

/* Publish straight through the relay on the client named client_id (any configured client).
 * qos 0 or 1; retain 0 or 1. Returns 0, -EINVAL (unknown client, bad topic, bad qos, too
 * large), -ENOSPC or -EPERM as mf_emit. The data is copied before the call returns. */
int mf_publish(mf_ctx *ctx, const char *client_id, const char *topic, const void *payload,
               size_t len, int qos, int retain);

/* Levels for mf_log, the same as the `logging:` section's names. */
enum { MF_LOG_DEBUG = 10, MF_LOG_INFO = 20, MF_LOG_WARNING = 30, MF_LOG_ERROR = 40 };

/* Log through the worker's logger, tagged with rule and callback name. Never fails; a line
 * longer than 4 KiB is truncated. */
void mf_log(mf_ctx *ctx, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A value of the running step's `config:` map (as a string, numbers as written in the YAML),
 * or NULL when the key is absent. Valid until the callback returns. */
const char *mf_param(mf_ctx *ctx, const char *key);

/* Optional per-module hooks, looked up by these names. mf_init runs once when the worker
 * loads the module (non-zero refuses to start the worker); mf_fini once when it unloads. */
typedef int (*mf_init_fn)(mf_ctx *ctx);
typedef void (*mf_fini_fn)(mf_ctx *ctx);

/* The version stamp a worker checks with dlsym(module, "mf_api_version"). Weak, so every file
 * of a module may include this header; a module built without it is refused by name. */
__attribute__((weak, visibility("default"))) extern const int mf_api_version;
__attribute__((weak, visibility("default"))) const int mf_api_version = MF_API_VERSION;

#ifdef __cplusplus
}
#endif

#endif
