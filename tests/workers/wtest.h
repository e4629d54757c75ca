/* wtest: helpers shared by the worker tests (header-only: the Makefile builds one binary per
 * test_*.c). Paths of the built test callback modules ($BUILD, default "build"), configs from
 * YAML text, a recording ctx_append_fn, and capture of this process's stderr (log lines). */
#ifndef MF_TESTS_WTEST_H
#define MF_TESTS_WTEST_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "workers/chain.h"
#include "workers/ctx.h"

static inline const char *wt_build(void)
{
    const char *b = getenv("BUILD");
    return b && *b ? b : "build";
}

/* Absolute path of $BUILD/tests/callbacks/<name>.so (a few rotating static buffers). */
static inline const char *wt_cb(const char *name)
{
    static char bufs[8][PATH_MAX];
    static int next;
    char rel[PATH_MAX];
    char *out = bufs[next++ % 8];
    snprintf(rel, sizeof(rel), "%s/tests/callbacks/%s.so", wt_build(), name);
    if (!realpath(rel, out)) {
        fprintf(stderr, "test callback module %s not built (make BUILD=%s)\n", rel, wt_build());
        snprintf(out, PATH_MAX, "%s", rel);
    }
    return out;
}

/* Loads a config from printf-formatted YAML; NULL (errors printed) when it does not load. */
__attribute__((format(printf, 1, 2))) static inline cfg *wt_cfg(const char *fmt, ...)
{
    char *yaml = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&yaml, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    cfg *c = NULL;
    cfg_diag d = {0};
    int rc = cfg_load_buffer("test.yaml", "/tmp", yaml, (size_t)n, 0, &c, &d);
    if (rc < 0) {
        for (size_t i = 0; i < d.n_errors; i++)
            fprintf(stderr, "%s\n", d.errors[i]);
        fprintf(stderr, "--- yaml:\n%s\n", yaml);
    }
    cfg_diag_fini(&d);
    free(yaml);
    return c;
}

/* The clients of most worker test configs: c1 takes in/#; c2 (WT_TWO_CLIENTS) only publishes. */
#define WT_ONE_CLIENT                                                                              \
    "mqtt_clients:\n"                                                                              \
    "  - client_id: c1\n"                                                                          \
    "    broker_url: mqtt://127.0.0.1\n"                                                           \
    "    topics: [{name: \"in/#\"}]\n"
#define WT_TWO_CLIENTS                                                                             \
    WT_ONE_CLIENT                                                                                  \
    "  - client_id: c2\n"                                                                          \
    "    broker_url: mqtt://127.0.0.1\n"

/* A recording publish target. */
typedef struct wt_rec {
    rec_hdr h;
    char topic[512];
    char payload[8192];
    size_t len;
} wt_rec;

typedef struct wt_sink {
    wt_rec recs[64];
    size_t n;
    unsigned long total; /* records appended, including those beyond recs[] */
} wt_sink;

static inline int wt_append(void *arg, const rec_hdr *h, const char *topic, const void *payload,
                            size_t len)
{
    wt_sink *s = arg;
    s->total++;
    if (s->n < sizeof(s->recs) / sizeof(s->recs[0])) {
        wt_rec *r = &s->recs[s->n++];
        r->h = *h;
        snprintf(r->topic, sizeof(r->topic), "%s", topic);
        r->len = len < sizeof(r->payload) - 1 ? len : sizeof(r->payload) - 1;
        memcpy(r->payload, payload, r->len);
        r->payload[r->len] = '\0';
    }
    return 0;
}

static inline void wt_env(ctx_env *env, const cfg *c, wt_sink *sink, stats_slot *slot)
{
    memset(env, 0, sizeof(*env));
    memset(sink, 0, sizeof(*sink));
    memset(slot, 0, sizeof(*slot));
    env->c = c;
    env->append = wt_append;
    env->append_arg = sink;
    env->slot = slot;
}

/* A config's chains loaded as a worker loads them: the config, its environment (publishing
 * into sink, counting into slot), the loaded modules and the chain set. */
typedef struct wt_chains {
    cfg *c;
    ctx_env env;
    wt_sink sink;
    stats_slot slot;
    loader *ld;
    chain_set *cs;
} wt_chains;

static inline void wt_chains_destroy(wt_chains *f)
{
    if (!f)
        return;
    chain_set_destroy(f->cs);
    loader_destroy(f->ld);
    cfg_destroy(f->c);
    free(f);
}

/* Takes config c (NULL allowed: a config that did not load) and loads its modules and chains;
 * NULL, with the step that failed on stderr, when any step fails (c is destroyed then). */
static inline wt_chains *wt_chains_of(cfg *c)
{
    wt_chains *f = calloc(1, sizeof(*f));
    if (!f || !c) {
        fprintf(stderr, "wt_chains_of: %s\n", !c ? "no config" : "out of memory");
        cfg_destroy(c);
        free(f);
        return NULL;
    }
    f->c = c;
    wt_env(&f->env, f->c, &f->sink, &f->slot);
    int rc = loader_create(&f->env, &f->ld);
    if (rc < 0) {
        fprintf(stderr, "wt_chains_of: loader_create: %d\n", rc);
    } else if ((rc = chain_set_create(&f->env, f->ld, &f->cs)) < 0) {
        fprintf(stderr, "wt_chains_of: chain_set_create: %d\n", rc);
    } else {
        return f;
    }
    wt_chains_destroy(f);
    return NULL;
}

/* Index of the rule called name in f's config, or -1. */
static inline int wt_chains_rule(const wt_chains *f, const char *name)
{
    for (size_t i = 0; i < f->c->n_rules; i++)
        if (strcmp(f->c->rules[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* Runs rule (an index) on one QoS 1 message from client "client1" (client 0); chain_run's
 * result. */
static inline int wt_chains_feed(wt_chains *f, int rule, const char *topic, const char *payload)
{
    ctx_origin o = {.client = 0, .qos = 1, .seq = 1, .received_ns = 1700000000000000000ull};
    mf_msg m = {.topic = topic,
                .payload = payload,
                .payload_len = strlen(payload),
                .qos = 1,
                .client_id = "client1",
                .received_ns = o.received_ns};
    return chain_run(f->cs, rule, &o, &m);
}

/* wt_chains_of the config file at path, loaded with module checks (errors printed). */
static inline wt_chains *wt_chains_load(const char *path)
{
    cfg *c = NULL;
    cfg_diag d = {0};
    int rc = cfg_load(path, CFG_LOAD_CHECK_MODULES, &c, &d);
    for (size_t i = 0; i < d.n_errors; i++)
        fprintf(stderr, "%s\n", d.errors[i]);
    cfg_diag_fini(&d);
    if (rc < 0) {
        fprintf(stderr, "wt_chains_load: %s does not load: %d\n", path, rc);
        return NULL;
    }
    return wt_chains_of(c);
}

/* stderr capture: everything written to fd 2 between start and end lands in buf. */
typedef struct wt_capture {
    int saved;
    FILE *f;
} wt_capture;

static inline void wt_capture_start(wt_capture *cap)
{
    fflush(stderr);
    cap->f = tmpfile();
    cap->saved = dup(2);
    dup2(fileno(cap->f), 2);
}

static inline void wt_capture_end(wt_capture *cap, char *buf, size_t len)
{
    fflush(stderr);
    dup2(cap->saved, 2);
    close(cap->saved);
    rewind(cap->f);
    size_t n = fread(buf, 1, len - 1, cap->f);
    buf[n] = '\0';
    fclose(cap->f);
    fputs(buf, stderr); /* keep it in the test log */
}

#endif
