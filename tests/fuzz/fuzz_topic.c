/* libFuzzer target for the router's topic trie (router/topic): the input is lines; every line
 * but the last is a filter (topic_add; invalid ones must be refused), the last is a topic
 * name. topic_match must report exactly the filters a plain level-by-level MQTT 3.1.1 matcher
 * (written here the obvious slow way) says match, never crash or read past the topic.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "router/topic.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FILTERS 64

/* MQTT 3.1.1 §4.7, straightforwardly: level by level. */
static int ref_match(const char *f, const char *t, size_t tlen)
{
    if (tlen > 0 && t[0] == '$' && (f[0] == '+' || f[0] == '#'))
        return 0;
    size_t ti = 0;
    const char *fp = f;
    for (;;) {
        size_t fl = strcspn(fp, "/");
        const char *tl_end = memchr(t + ti, '/', tlen - ti);
        size_t tl = tl_end ? (size_t)(tl_end - (t + ti)) : tlen - ti;
        if (fl == 1 && fp[0] == '#')
            return 1;
        if (!(fl == 1 && fp[0] == '+') && (fl != tl || memcmp(fp, t + ti, fl)))
            return 0;
        int f_more = fp[fl] == '/', t_more = tl_end != NULL;
        if (!f_more && !t_more)
            return 1;
        if (f_more && !t_more) /* "a/#" matches "a" */
            return !strcmp(fp + fl, "/#");
        if (!f_more)
            return 0;
        fp += fl + 1;
        ti += tl + 1;
    }
}

static int ref_valid(const char *f)
{
    if (!*f)
        return 0;
    for (const char *p = f; *p; p++) {
        if (*p == '+' && ((p > f && p[-1] != '/') || (p[1] && p[1] != '/')))
            return 0;
        if (*p == '#' && ((p > f && p[-1] != '/') || p[1]))
            return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096 || memchr(data, 0, size))
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    char *lines[MAX_FILTERS + 1];
    size_t n = 0;
    for (char *p = text; n <= MAX_FILTERS;) {
        lines[n++] = p;
        char *nl = strchr(p, '\n');
        if (!nl)
            break;
        *nl = 0;
        p = nl + 1;
    }
    const char *topic = lines[n - 1];
    size_t tlen = strlen(topic);
    topic_trie *t = NULL;
    if (topic_create(&t) != 0) {
        free(text);
        return 0;
    }
    int want[MAX_FILTERS] = {0}, added[MAX_FILTERS] = {0};
    for (size_t i = 0; i + 1 < n; i++) {
        int rc = topic_add(t, lines[i], (uint32_t)i);
        if ((rc == 0) != ref_valid(lines[i]) || (rc != 0 && rc != -22))
            __builtin_trap();
        added[i] = rc == 0;
        want[i] = added[i] && ref_match(lines[i], topic, tlen);
    }
    /* the topic in an exact-size buffer: an overread shows under ASan */
    char *tb = malloc(tlen ? tlen : 1);
    if (tb) {
        memcpy(tb, topic, tlen);
        uint32_t out[MAX_FILTERS];
        size_t m = topic_match(t, tb, tlen, out, MAX_FILTERS);
        int got[MAX_FILTERS] = {0};
        for (size_t i = 0; i < m && i < MAX_FILTERS; i++)
            got[out[i]]++;
        for (size_t i = 0; i + 1 < n; i++)
            if (got[i] != want[i])
                __builtin_trap();
        free(tb);
    }
    topic_destroy(t);
    free(text);
    return 0;
}
