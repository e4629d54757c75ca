/* topicname: whether a broker accepts a topic name or filter (issue 8 item 2; MQTT 3.1.1 and
 * 5.0 §1.5.3 and §4.7). mosquitto closes the connection of a client that publishes a topic
 * it refuses, as a malformed packet; a publisher that then retries the same record forever
 * stops everything behind it. So every place that makes a topic name from data (the ingress
 * for what a source broker sends, the format step, mf_emit / mf_publish, the relay before it
 * publishes) checks it here first, with the rules brokers apply:
 *   - 1 to 65535 bytes of well-formed UTF-8 (no overlong forms, no surrogates U+D800-U+DFFF,
 *     nothing above U+10FFFF);
 *   - no control characters U+0000-U+001F and U+007F-U+009F (mosquitto refuses them; the
 *     specification says SHOULD NOT; a newline or NUL from a JSON field is the usual case);
 *   - a name has no '+' or '#'; in a filter '+' fills a whole level and '#' the whole last.
 *
 * Pure functions: thread-safe, no allocation, cannot fail. The reason strings are static.
 */
#ifndef MF_TOPICNAME_H
#define MF_TOPICNAME_H

#include <stdbool.h>
#include <stddef.h>

#define TOPICNAME_MAX 65535u

/* NULL when the len bytes at s are a valid topic name (filter: a valid filter); otherwise
 * why not, e.g. "contains the control character U+000A". *at (may be NULL) gets the byte
 * offset of the fault. */
const char *topicname_check(const char *s, size_t len, bool filter, size_t *at);
/* A topic as it may be shown in a log line or a JSON string: control bytes, '\\' and '"' as
 * \xNN, cut to fit cap (NUL-terminated; cap >= 1). */
void topicname_escape(char *dst, size_t cap, const char *s, size_t len);

#endif
