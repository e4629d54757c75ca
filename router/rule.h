/* rule: the router's compiled rule set, which answers "which rules does this message match".
 *
 * Built once from the loaded config (cfg.rules) by the router process. A rule matches a
 * message when all of its parts do:
 *   - source_client_id: the message's source client (any client when the rule has none);
 *   - topic: an MQTT filter, looked up in a trie per source client (router/topic), so the
 *     cost does not grow with the number of rules whose filters do not match;
 *   - regex: PCRE2, compiled once (JIT when available), an unanchored search on the topic
 *     (anchor with ^...$ to match the whole topic), under a match limit of RULE_MATCH_LIMIT
 *     (a thousandth of PCRE2's default: a regex that needs more on a topic is catastrophic
 *     backtracking, and one message must not hold the router for tens of milliseconds);
 *   - condition: a compiled expr (common/expr.h) on topic levels and JSON payload fields.
 * The cheap tests run first and the condition last, so JSON is parsed only for messages that
 * passed the rest.
 *
 * Not thread-safe (one match_data block and trie scratch are reused per call): one thread.
 */
#ifndef MF_ROUTER_RULE_H
#define MF_ROUTER_RULE_H

#include <stddef.h>
#include <stdint.h>

#include "cfg.h"

typedef struct rule_set rule_set;

/* Compiles every rule of c (which must outlive the set). 0 and *out; -EINVAL when a filter,
 * regex or condition does not compile (the config loader should have refused it; err says
 * which rule and why); -ENOMEM. err may be NULL. */
int rule_set_create(const cfg *c, rule_set **out, char *err, size_t errlen);
void rule_set_destroy(rule_set *rs); /* accepts NULL */
size_t rule_set_count(const rule_set *rs);
/* Whether PCRE2's JIT compiled every regex (for the log line at start). */
int rule_set_uses_jit(const rule_set *rs);

/* Per-rule counts of what made a message not match for a reason other than the rule itself:
 * the regex hit RULE_MATCH_LIMIT (catastrophic backtracking), or the condition read a payload
 * that is not JSON. Each kind is also logged, at most once per RULE_LOG_INTERVAL_S per rule
 * with the count since the last line. */
#define RULE_MATCH_LIMIT    50000 /* PCRE2 default: 10,000,000 (about 50 ms on one topic) */
#define RULE_DEPTH_LIMIT    1000
#define RULE_LOG_INTERVAL_S 10
typedef struct rule_counters {
    uint64_t match_limit;  /* regex stopped at the match or depth limit: counted as no match */
    uint64_t json_invalid; /* condition on a payload that is not JSON: its fields were null */
} rule_counters;
void rule_set_counters(const rule_set *rs, size_t rule, rule_counters *out);
/* The sum of every rule's counters: changes whenever one of them does (cheap to poll). */
uint64_t rule_set_counters_total(const rule_set *rs);

/* Writes into out (room for rule_set_count entries) the indices of the rules that match a
 * message from source client index `client` (a client index not in the config matches only
 * rules without source_client_id) with this topic (topic_len bytes, NUL-terminated) and
 * payload, in rule order, and returns how many. Never fails: a regex that fails at run time
 * (match limit) counts as no match. */
size_t rule_set_match(rule_set *rs, size_t client, const char *topic, size_t topic_len,
                      const void *payload, size_t payload_len, uint16_t *out);

#endif
