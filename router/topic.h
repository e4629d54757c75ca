/* topic: a compiled set of MQTT topic filters, matched against topic names as a trie.
 *
 * Used by the router (router/rule) to find, for one message, every filter that matches its
 * topic without testing each filter in turn: matching walks the topic's levels once through a
 * trie whose edges are filter levels, following at each level the exact child, the `+` child,
 * and collecting the `#` child. Cost depends on the topic's depth and on how many filters
 * overlap, not on how many filters there are.
 *
 * MQTT 3.1.1 §4.7 semantics: `+` matches exactly one level (possibly empty), `#` (last level
 * only) matches the parent level and any number of levels below it ("a/#" matches "a",
 * "a/b", "a/b/c"), and topics beginning with '$' ($SYS/...) are not matched by a filter whose
 * first level is `+` or `#`.
 *
 * Each filter carries a caller-chosen value (a rule index); topic_match reports the values of
 * every matching filter. A value added with several filters that match the same topic is
 * reported once per filter. Not thread-safe: topic_match uses scratch space inside the trie,
 * so one thread uses a trie at a time (the router has one thread).
 */
#ifndef MF_ROUTER_TOPIC_H
#define MF_ROUTER_TOPIC_H

#include <stddef.h>
#include <stdint.h>

typedef struct topic_trie topic_trie;

/* An empty trie. 0 and *out (topic_destroy it), or -ENOMEM. */
int topic_create(topic_trie **out);
/* Accepts NULL. */
void topic_destroy(topic_trie *t);
/* Adds a filter (+ and # allowed, validated again here) with its value. 0, -EINVAL for an
 * invalid filter (nothing added), -ENOMEM (the trie may hold unused empty nodes, still
 * correct). */
int topic_add(topic_trie *t, const char *filter, uint32_t value);
/* Number of filters added. */
size_t topic_count(const topic_trie *t);
/* Writes the values of the filters matching the topic name (topic_len bytes, no wildcards
 * expected: '+' and '#' in a name are plain characters here) into out, at most cap of them,
 * in no particular order. Returns how many filters matched (which may exceed cap: then only
 * cap were written). Never fails. */
size_t topic_match(topic_trie *t, const char *topic, size_t topic_len, uint32_t *out, size_t cap);
/* Whether the filter is valid: non-empty, '#' only as the whole last level, '+' only as a
 * whole level, no NUL. */
int topic_filter_is_valid(const char *filter);

#endif
