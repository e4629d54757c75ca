/* bench_rule: messages/s through the router's rule set (trie + sort) against the naive loop
 * that tests every rule's filter in turn, for 100 and 1000 rules with + and # wildcards.
 *
 *   bench_rule [SECONDS_PER_CASE]     (default 1)
 *
 * Prints one line per case: rules, matcher, messages/s, ns/message, matches per message
 * (the same for both matchers, checked, so the comparison is of equal work).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "clock.h"
#include "router/rule.h"

#define N_TOPICS 1024

/* The straightforward MQTT filter match the trie replaces. */
static int naive_match(const char *f, const char *t)
{
    if (*t == '$' && (*f == '+' || *f == '#'))
        return 0;
    for (;;) {
        if (f[0] == '#')
            return 1;
        if (f[0] == '+') {
            while (*t && *t != '/')
                t++;
            f++;
        } else {
            while (*f && *f != '/' && *f == *t) {
                f++;
                t++;
            }
            if ((*f && *f != '/') || (*t && *t != '/'))
                return 0;
        }
        if (!*f && !*t)
            return 1;
        if (*f == '/' && *t == '/') {
            f++;
            t++;
            continue;
        }
        /* "a/#" matches "a" */
        if (!*t && f[0] == '/' && f[1] == '#' && !f[2])
            return 1;
        return 0;
    }
}

static size_t naive_rules(const cfg *c, size_t client, const char *topic, uint16_t *out)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n_rules; i++) {
        const cfg_rule *r = &c->rules[i];
        if (r->source_client >= 0 && (size_t)r->source_client != client)
            continue;
        if (r->topic && !naive_match(r->topic, topic))
            continue;
        out[n++] = (uint16_t)i;
    }
    return n;
}

static void run_case(size_t n_rules, double seconds)
{
    cfg c;
    cfg_client clients[4];
    cfg_rule *rules = calloc(n_rules, sizeof(*rules));
    char **filters = calloc(n_rules, sizeof(*filters));
    char *topics[N_TOPICS];
    size_t topic_len[N_TOPICS];
    uint16_t *out = calloc(n_rules + 1, sizeof(*out)), *out2 = calloc(n_rules + 1, sizeof(*out));
    rule_set *rs = NULL;
    char err[256];

    if (!rules || !filters || !out || !out2) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    memset(&c, 0, sizeof(c));
    memset(clients, 0, sizeof(clients));
    c.clients = clients;
    c.n_clients = 4;
    c.rules = rules;
    c.n_rules = n_rules;
    for (size_t i = 0; i < n_rules; i++) {
        char f[64];
        switch (i % 4) {
        case 0:
            snprintf(f, sizeof(f), "site%zu/+/temp", i);
            break;
        case 1:
            snprintf(f, sizeof(f), "site%zu/#", i);
            break;
        case 2:
            snprintf(f, sizeof(f), "site%zu/dev%zu/hum", i - 2, i);
            break;
        default:
            snprintf(f, sizeof(f), "+/dev%zu/#", i);
            break;
        }
        filters[i] = strdup(f);
        rules[i].topic = filters[i];
        rules[i].source_client = i % 3 == 0 ? -1 : (int)(i % 4);
        rules[i].chain = -1;
    }
    for (size_t k = 0; k < N_TOPICS; k++) {
        char t[64];
        size_t s = (k * 7) % (n_rules + n_rules / 2); /* a third of the sites have no rule */
        snprintf(t, sizeof(t), "site%zu/dev%zu/%s", s, (k * 13) % (n_rules + 10),
                 k % 2 ? "temp" : "hum");
        topics[k] = strdup(t);
        topic_len[k] = strlen(t);
    }
    if (rule_set_create(&c, &rs, err, sizeof(err)) != 0) {
        fprintf(stderr, "rule_set_create: %s\n", err);
        exit(1);
    }
    /* the two matchers must agree before their speed means anything */
    for (size_t k = 0; k < N_TOPICS; k++) {
        size_t a = rule_set_match(rs, k % 4, topics[k], topic_len[k], "", 0, out);
        size_t b = naive_rules(&c, k % 4, topics[k], out2);
        if (a != b || memcmp(out, out2, a * sizeof(*out)) != 0) {
            fprintf(stderr, "mismatch on %s (client %zu): %zu vs %zu rules\n", topics[k], k % 4, a,
                    b);
            exit(1);
        }
    }
    for (int m = 0; m < 2; m++) {
        uint64_t start = clock_mono_ns(), end = start + (uint64_t)(seconds * 1e9), now;
        size_t msgs = 0, matches = 0;
        do {
            for (size_t k = 0; k < N_TOPICS; k++)
                matches += m == 0 ? rule_set_match(rs, k % 4, topics[k], topic_len[k], "", 0, out)
                                  : naive_rules(&c, k % 4, topics[k], out);
            msgs += N_TOPICS;
            now = clock_mono_ns();
        } while (now < end);
        double secs = (double)(now - start) / 1e9;
        printf("rules=%-5zu %-6s %12.0f msg/s %8.1f ns/msg  %.2f matches/msg\n", n_rules,
               m == 0 ? "trie" : "naive", (double)msgs / secs, secs * 1e9 / (double)msgs,
               (double)matches / (double)msgs);
    }
    rule_set_destroy(rs);
    for (size_t i = 0; i < n_rules; i++)
        free(filters[i]);
    for (size_t k = 0; k < N_TOPICS; k++)
        free(topics[k]);
    free(filters);
    free(rules);
    free(out);
    free(out2);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;

    if (seconds <= 0)
        seconds = 1.0;
    run_case(100, seconds);
    run_case(1000, seconds);
    return 0;
}
