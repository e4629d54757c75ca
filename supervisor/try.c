/* try: `mqttflow try` (see try.h). */
#include "try.h"

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cfg.h"
#include "cli.h"
#include "exitcode.h"
#include "log.h"
#include "rec.h"
#include "router/rule.h"
#include "router/topic.h"
#include "workers/chain.h"
#include "workers/ctx.h"
#include "workers/loader.h"

#define TRY_SHOW_MAX  512u        /* payload bytes printed; the rest is counted */
#define TRY_LINE_MAX  (16u << 20) /* longest --file line: a 4 MiB payload in base64, and more */
#define TRY_TOPIC_MAX 65535u      /* MQTT's own limit */

typedef struct try_run {
    cfg *c;
    rule_set *rs;
    topic_trie *subs; /* every client's subscriptions, value = client index */
    uint16_t *matched;
    uint32_t *sub_hits; /* topic_match's output: room for every subscription */
    size_t n_subs;
    ctx_env env;
    loader *ld;
    chain_set *cs;
    size_t events; /* trace and publish lines since the last rule line */
    unsigned long n_msgs, n_matched, n_published, n_errors;
} try_run;

/* The length of the well-formed UTF-8 sequence of 2..4 bytes at p (n bytes left), or 0. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    size_t k = p[0] >= 0xc2 && p[0] <= 0xdf   ? 2
               : (p[0] & 0xf0) == 0xe0        ? 3
               : p[0] >= 0xf0 && p[0] <= 0xf4 ? 4
                                              : 0;
    if (k == 0 || k > n)
        return 0;
    for (size_t i = 1; i < k; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return k;
}

/* A payload or topic as a quoted string: control bytes, bytes that are not UTF-8, quote and
 * backslash escaped (the output is for a terminal), at most TRY_SHOW_MAX bytes shown. */
static void show(const void *data, size_t len)
{
    const unsigned char *p = data;
    size_t n = len < TRY_SHOW_MAX ? len : TRY_SHOW_MAX;
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = p[i];
        size_t u = ch >= 0x80 ? utf8_len(p + i, n - i) : 0;
        if (u > 0) {
            fwrite(p + i, 1, u, stdout);
            i += u - 1;
        } else if (ch >= 0x80)
            printf("\\x%02x", ch);
        else if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch == '\n')
            fputs("\\n", stdout);
        else if (ch == '\t')
            fputs("\\t", stdout);
        else if (ch < 0x20 || ch == 0x7f)
            printf("\\x%02x", ch);
        else
            putchar(ch);
    }
    putchar('"');
    if (n < len)
        printf("... (%zu bytes)", len);
}

static const char *client_name(const try_run *t, long i)
{
    return i >= 0 && (size_t)i < t->c->n_clients ? t->c->clients[i].client_id : "?";
}

static void trace(void *arg, int rule, int step, const mf_msg *m)
{
    try_run *t = arg;
    const cfg_rule *r = &t->c->rules[rule];
    const cfg_step *s = &t->c->chains[r->chain].steps[step];
    printf("    rule %s, step %d (%s) emitted topic ", r->name, step, cfg_step_kind_name(s->kind));
    show(m->topic, strlen(m->topic));
    printf(" payload ");
    show(m->payload, m->payload_len);
    putchar('\n');
    t->events++;
}

static int publish(void *arg, const rec_hdr *h, const char *topic, const void *payload, size_t len)
{
    try_run *t = arg;
    printf("    would publish on %s: topic ", client_name(t, h->client));
    show(topic, strlen(topic));
    printf(" qos %u retain %u payload ", h->qos, h->retain);
    show(payload, len);
    if (h->rule != REC_NONE && h->step != REC_NONE)
        printf(" (rule %s, step %u)", t->c->rules[h->rule].name, h->step);
    else if (h->rule != REC_NONE)
        printf(" (rule %s)", t->c->rules[h->rule].name);
    putchar('\n');
    t->events++;
    t->n_published++;
    return 0;
}

static void try_fini(try_run *t)
{
    chain_set_destroy(t->cs);
    loader_destroy(t->ld);
    rule_set_destroy(t->rs);
    topic_destroy(t->subs);
    free(t->matched);
    free(t->sub_hits);
    cfg_destroy(t->c);
}

/* Loads the config and everything the router and a worker build from it. An exit code. */
static int try_init(try_run *t, const char *path)
{
    char err[256] = "";
    memset(t, 0, sizeof(*t));
    t->c = cli_load_config(path, 0, 1);
    if (!t->c)
        return MF_EXIT_CONFIG;
    cli_setup_logging(t->c, "try");
    if (rule_set_create(t->c, &t->rs, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s: %s\n", path, err);
        return MF_EXIT_CONFIG;
    }
    for (size_t i = 0; i < t->c->n_clients; i++)
        t->n_subs += t->c->clients[i].n_topics;
    t->matched = calloc(t->c->n_rules + 1, sizeof(*t->matched));
    t->sub_hits = calloc(t->n_subs + 1, sizeof(*t->sub_hits));
    if (!t->matched || !t->sub_hits || topic_create(&t->subs) < 0)
        return MF_EXIT_FAILED;
    for (size_t i = 0; i < t->c->n_clients; i++)
        for (size_t k = 0; k < t->c->clients[i].n_topics; k++)
            if (topic_add(t->subs, t->c->clients[i].topics[k].name, (uint32_t)i) < 0)
                return MF_EXIT_FAILED;
    t->env.c = t->c;
    t->env.append = publish;
    t->env.append_arg = t;
    t->env.trace = trace;
    t->env.trace_arg = t;
    /* the loader and the chains log every problem themselves */
    if (loader_create(&t->env, &t->ld) < 0 || chain_set_create(&t->env, t->ld, &t->cs) < 0)
        return MF_EXIT_CONFIG;
    return MF_EXIT_OK;
}

/* The source client for topic: the first whose subscriptions cover it, else the first. */
static int guess_client(try_run *t, const char *topic)
{
    size_t n = topic_match(t->subs, topic, strlen(topic), t->sub_hits, t->n_subs);
    uint32_t best = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || t->sub_hits[i] < best)
            best = t->sub_hits[i];
    return (int)best;
}

/* One message through every rule it matches. */
static void try_one(try_run *t, int client, const char *topic, const void *payload, size_t len,
                    int qos)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t now_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
    t->n_msgs++;
    printf("message %lu: client %s topic ", t->n_msgs, client_name(t, client));
    show(topic, strlen(topic));
    printf(" qos %d payload ", qos);
    show(payload, len);
    putchar('\n');
    size_t n =
        rule_set_match(t->rs, (size_t)client, topic, strlen(topic), payload, len, t->matched);
    if (n == 0)
        printf("  no rule matched\n");
    else
        t->n_matched++;
    mf_msg m = {.topic = topic,
                .payload = payload,
                .payload_len = len,
                .qos = qos,
                .client_id = client_name(t, client),
                .received_ns = now_ns};
    ctx_origin o = {.client = client, .qos = qos, .seq = t->n_msgs, .received_ns = now_ns};
    for (size_t i = 0; i < n; i++) {
        const cfg_rule *r = &t->c->rules[t->matched[i]];
        if (r->chain >= 0)
            printf("  rule %s matched: chain %s\n", r->name, t->c->chains[r->chain].name);
        else
            printf("  rule %s matched: callback %s\n", r->name, t->c->callbacks[r->callback].name);
        t->events = 0;
        int rc = chain_run(t->cs, t->matched[i], &o, &m);
        if (rc != 0) {
            printf("    error: the callback returned %d (on_error: %s)\n", rc,
                   r->on_error == CFG_ON_ERROR_DEAD_LETTER ? "dead_letter" : "log");
            t->n_errors++;
        } else if (t->events == 0) {
            printf("    nothing emitted (held by a window until it closes, or dropped by a "
                   "step)\n");
        }
    }
}

/* Decodes base64 (RFC 4648, padding optional) into a malloc'd buffer. 0 or -EINVAL/-ENOMEM. */
static int unbase64(const char *s, unsigned char **out, size_t *out_len)
{
    size_t n = strlen(s);
    unsigned char *b = malloc(n / 4 * 3 + 4);
    if (!b)
        return -ENOMEM;
    uint32_t acc = 0;
    int bits = 0;
    size_t k = 0;
    for (size_t i = 0; i < n && s[i] != '='; i++) {
        const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const char *p = s[i] ? strchr(alpha, s[i]) : NULL;
        if (!p) {
            free(b);
            return -EINVAL;
        }
        acc = acc << 6 | (uint32_t)(p - alpha);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            b[k++] = (unsigned char)(acc >> bits & 0xffu);
        }
    }
    *out = b;
    *out_len = k;
    return 0;
}

static const char *str_field(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* One line of --file; 0, or -1 when it could not be read (reported). */
static int try_line(try_run *t, const char *file, size_t lineno, const char *line, size_t len,
                    int cut, int client_opt, const char *topic_opt)
{
    json_error_t je;
    json_t *o = json_loadb(line, len, JSON_ALLOW_NUL, &je);
    if (!o && cut) {
        fprintf(stderr, "%s:%zu: an incomplete last line (a write cut short)\n", file, lineno);
        return -1;
    }
    if (!json_is_object(o)) {
        fprintf(stderr, "%s:%zu:%d: not a JSON object: %s\n", file, lineno, je.column,
                o ? "another JSON value" : je.text);
        json_decref(o);
        return -1;
    }
    int rc = -1;
    unsigned char *bin = NULL;
    const char *topic = str_field(o, "topic");
    if (!topic)
        topic = topic_opt;
    const char *why = NULL;
    const void *payload = "";
    size_t plen = 0;
    json_t *p = json_object_get(o, "payload");
    const char *b64 = str_field(o, "payload_b64");
    if (json_is_string(p)) {
        payload = json_string_value(p);
        plen = json_string_length(p);
    } else if (b64) {
        if (unbase64(b64, &bin, &plen) < 0)
            why = "payload_b64 is not base64";
        payload = bin;
    }
    json_t *q = json_object_get(o, "qos");
    int qos = json_is_integer(q) ? (int)json_integer_value(q) : 0;
    const char *src = str_field(o, "source_client");
    int client = client_opt;
    if (!why && !topic)
        why = "no topic (give --topic for lines without one)";
    else if (!why && (strlen(topic) > TRY_TOPIC_MAX || !cfg_topic_name_is_valid(topic)))
        why = "not a valid topic name";
    else if (!why && (qos < 0 || qos > 2))
        why = "qos is not 0, 1 or 2";
    if (!why && client < 0 && src) {
        client = cfg_client_index(t->c, src);
        if (client < 0)
            why = "source_client is not a client of this config (give --client)";
    }
    if (why) {
        fprintf(stderr, "%s:%zu: %s\n", file, lineno, why);
        goto out;
    }
    if (client < 0)
        client = guess_client(t, topic);
    const char *rule = str_field(o, "rule"), *reason = str_field(o, "reason");
    const char *when = str_field(o, "time");
    if (rule || reason)
        printf("%s:%zu: dead letter%s%s%s%s%s%s\n", file, lineno, when ? " of " : "",
               when ? when : "", rule ? ", rule " : "", rule ? rule : "", reason ? ": " : "",
               reason ? reason : "");
    json_t *pl = json_object_get(o, "payload_len");
    if (json_is_integer(pl) && json_integer_value(pl) > (json_int_t)plen)
        printf("%s:%zu: payload truncated: %zu of %lld bytes (run as it is)\n", file, lineno, plen,
               (long long)json_integer_value(pl));
    try_one(t, client, topic, payload, plen, qos);
    rc = 0;
out:
    free(bin);
    json_decref(o);
    return rc;
}

static int try_file(try_run *t, const char *file, int client, const char *topic)
{
    FILE *f = strcmp(file, "-") ? fopen(file, "r") : stdin;
    if (!f) {
        fprintf(stderr, "mqttflow try: %s: %s\n", file, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t n;
    int bad = 0;
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        /* a line without its newline at the end of the file is one a crash cut short
         * (deadletter.h): reported, not run */
        int cut = n == 0 || line[n - 1] != '\n';
        size_t len = (size_t)n - !cut;
        if (len == 0 && !cut)
            continue;
        if ((size_t)n > TRY_LINE_MAX) {
            fprintf(stderr, "%s:%zu: longer than %u bytes\n", file, lineno, TRY_LINE_MAX);
            bad = 1;
        } else if (try_line(t, file, lineno, line, len, cut, client, topic) < 0) {
            bad = 1;
        }
    }
    free(line);
    if (f != stdin)
        fclose(f);
    return bad ? -1 : 0;
}

int try_cli(int argc, char **argv)
{
    const char *config = NULL, *topic = NULL, *payload = NULL, *file = NULL, *client = NULL;
    int qos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **val = !strcmp(a, "--topic")     ? &topic
                           : !strcmp(a, "--payload") ? &payload
                           : !strcmp(a, "--file")    ? &file
                           : !strcmp(a, "--client")  ? &client
                                                     : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            cli_usage(stdout);
            fputs("\n" TRY_HELP, stdout);
            return MF_EXIT_OK;
        } else if (val && i + 1 < argc) {
            *val = argv[++i];
        } else if (!strcmp(a, "--qos") && i + 1 < argc) {
            const char *q = argv[++i];
            qos = q[0] >= '0' && q[0] <= '2' && q[1] == '\0' ? q[0] - '0' : -1;
        } else if (a[0] != '-' && !config) {
            config = a;
        } else {
            fprintf(stderr, "mqttflow try: unexpected argument %s\n", a);
            cli_usage(stderr);
            return MF_EXIT_CONFIG;
        }
    }
    if (qos < 0) {
        fprintf(stderr, "mqttflow try: --qos takes 0, 1 or 2\n");
        return MF_EXIT_CONFIG;
    }
    if (!config || (!file && (!topic || !payload)) || (file && payload)) {
        fprintf(stderr, "mqttflow try: give CONFIG and --topic T --payload P, or --file F\n");
        cli_usage(stderr);
        return MF_EXIT_CONFIG;
    }
    if (topic && !cfg_topic_name_is_valid(topic)) {
        fprintf(stderr, "mqttflow try: \"%s\" is not a valid topic name\n", topic);
        return MF_EXIT_CONFIG;
    }
    try_run t;
    int code = try_init(&t, config);
    int client_ix = -1;
    if (code == MF_EXIT_OK && client && (client_ix = cfg_client_index(t.c, client)) < 0) {
        fprintf(stderr, "mqttflow try: no client \"%s\" in %s\n", client, config);
        code = MF_EXIT_CONFIG;
    }
    if (code != MF_EXIT_OK) {
        try_fini(&t);
        return code;
    }
    int bad = 0;
    if (file)
        bad = try_file(&t, file, client_ix, topic) < 0;
    else
        try_one(&t, client_ix >= 0 ? client_ix : guess_client(&t, topic), topic, payload,
                strlen(payload), qos);
    printf("end of input: closing open windows\n");
    t.events = 0;
    chain_close_all(t.cs);
    if (t.events == 0)
        printf("  nothing was held\n");
    printf("%lu message(s), %lu matched a rule, %lu publish(es), %lu callback error(s)\n", t.n_msgs,
           t.n_matched, t.n_published, t.n_errors);
    try_fini(&t);
    return bad || t.n_errors ? MF_EXIT_FAILED : MF_EXIT_OK;
}
