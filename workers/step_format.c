/* step_format: rewrites topic and payload from templates, then passes the message on.
 *
 *   topic   = topic_prefix + (topic_template expanded, or the topic) + topic_suffix
 *   payload = payload_template expanded, or the payload unchanged
 *
 * Placeholders: {topic}, {topic[N]} (level N, 0-based, as in conditions), {client_id},
 * {payload}, {payload.FIELD} (a JSON field path such as payload.a.b[2]: a string is inserted
 * as its text, anything else as compact JSON). A missing level or field inserts nothing; an
 * unknown placeholder is copied as written, so a template with literal braces still works.
 * The payload is parsed as JSON at most once per message, and only when a field is used.
 * A resulting topic that is not a valid MQTT topic name drops the message (logged, counted).
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "chain_int.h"
#include "topicname.h"
#include "log.h"

#define COMP "worker"

typedef struct expand_in {
    const mf_msg *m;
    json_t *json; /* parsed on first use */
    bool json_tried;
} expand_in;

static int put_str(chain_buf *b, const char *s)
{
    return chain_buf_put(b, s, strlen(s));
}

/* Level n of topic (0-based) into b; nothing when missing. */
static int put_level(chain_buf *b, const char *topic, unsigned long n)
{
    const char *p = topic;
    for (unsigned long i = 0; i < n; i++) {
        p = strchr(p, '/');
        if (!p)
            return 0;
        p++;
    }
    const char *e = strchr(p, '/');
    return chain_buf_put(b, p, e ? (size_t)(e - p) : strlen(p));
}

static int put_field(chain_buf *b, expand_in *in, const char *path, size_t len)
{
    if (!in->json_tried) {
        in->json_tried = true;
        in->json = json_loadb(in->m->payload, in->m->payload_len, JSON_DECODE_ANY, NULL);
    }
    json_t *v = in->json ? chain_json_path(in->json, path, len) : NULL;
    if (!v)
        return 0;
    if (json_is_string(v))
        return chain_buf_put(b, json_string_value(v), json_string_length(v));
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    if (!s)
        return -ENOMEM;
    int rc = put_str(b, s);
    free(s);
    return rc;
}

/* One placeholder name (between the braces); 1 when it was not one we know. */
static int put_placeholder(chain_buf *b, expand_in *in, const char *client_id, const char *name,
                           size_t len)
{
    const mf_msg *m = in->m;
    if (len == 5 && memcmp(name, "topic", 5) == 0)
        return put_str(b, m->topic);
    if (len == 9 && memcmp(name, "client_id", 9) == 0)
        return put_str(b, client_id);
    if (len == 7 && memcmp(name, "payload", 7) == 0)
        return chain_buf_put(b, m->payload, m->payload_len);
    if (len > 8 && memcmp(name, "payload.", 8) == 0)
        return put_field(b, in, name + 8, len - 8);
    if (len > 7 && memcmp(name, "topic[", 6) == 0 && name[len - 1] == ']') {
        char *end;
        unsigned long n = strtoul(name + 6, &end, 10);
        if (end == name + 6 || end != name + len - 1)
            return 1;
        return put_level(b, m->topic, n);
    }
    return 1;
}

static int expand(chain_buf *b, expand_in *in, const char *client_id, const char *tmpl)
{
    const char *p = tmpl;
    while (*p) {
        const char *open = strchr(p, '{');
        if (!open)
            return put_str(b, p);
        int rc = chain_buf_put(b, p, (size_t)(open - p));
        if (rc < 0)
            return rc;
        const char *close = strchr(open + 1, '}');
        if (!close)
            return put_str(b, open);
        rc = put_placeholder(b, in, client_id, open + 1, (size_t)(close - open - 1));
        if (rc < 0)
            return rc;
        if (rc == 1) {
            /* not a placeholder: keep the brace as text and look again right after it, so
             * "{\"t\":{payload.t}}" still finds the inner one */
            if ((rc = chain_buf_put(b, open, 1)) < 0)
                return rc;
            p = open + 1;
            continue;
        }
        p = close + 1;
    }
    return 0;
}

static void step_format_fini(chain_step *s)
{
    chain_buf_fini(&s->topic);
    chain_buf_fini(&s->payload);
}

static int step_format_process(chain_step *s, const ctx_origin *o, const mf_msg *m)
{
    const cfg_step *c = s->cfg;
    const char *client_id = m->client_id ? m->client_id : "";
    expand_in in = {.m = m};
    mf_msg out = *m;
    int rc = 0;

    if (c->topic_prefix || c->topic_suffix || c->topic_template) {
        s->topic.len = 0;
        if (c->topic_prefix && (rc = put_str(&s->topic, c->topic_prefix)) < 0)
            goto done;
        rc = c->topic_template ? expand(&s->topic, &in, client_id, c->topic_template)
                               : put_str(&s->topic, m->topic);
        if (rc < 0)
            goto done;
        if (c->topic_suffix && (rc = put_str(&s->topic, c->topic_suffix)) < 0)
            goto done;
        if ((rc = chain_buf_nul(&s->topic)) < 0)
            goto done;
        out.topic = s->topic.p;
    }
    if (c->payload_template) {
        s->payload.len = 0;
        if ((rc = expand(&s->payload, &in, client_id, c->payload_template)) < 0 ||
            (rc = chain_buf_nul(&s->payload)) < 0)
            goto done;
        out.payload = s->payload.p;
        out.payload_len = s->payload.len;
    }
    /* a payload inserted into a topic may hold a NUL, which no topic name may */
    bool has_nul = out.topic == s->topic.p && strlen(s->topic.p) != s->topic.len;
    const char *why = has_nul ? "contains a NUL character (U+0000)"
                              : topicname_check(out.topic, strlen(out.topic), false, NULL);
    if (why) {
        char shown[256];
        /* the topic checked: the one built here, or the incoming one passed through */
        if (out.topic == s->topic.p)
            topicname_escape(shown, sizeof(shown), s->topic.p, s->topic.len);
        else
            topicname_escape(shown, sizeof(shown), out.topic, strlen(out.topic));
        log_error(COMP,
                  "rule %s, step %zu (format): the topic \"%s\" %s: brokers refuse it; the "
                  "message is dead-lettered",
                  s->cr->r->name, s->index, shown, why);
        if (s->cr->env->slot)
            stats_add(&s->cr->env->slot->errors, 1);
        /* the worker dead-letters the original message (run.c), whatever on_error says: a
         * message is never dropped for a topic it was given */
        chain_note_error(s->cr, CHAIN_ERR_INVALID_TOPIC);
        rc = -EINVAL;
        goto done;
    }
    rc = chain_feed(s->cr, s->index + 1, o, &out);
done:
    if (rc == -ENOMEM) {
        log_error(COMP, "rule %s, step %zu (format): out of memory, message dropped",
                  s->cr->r->name, s->index);
        if (s->cr->env->slot)
            stats_add(&s->cr->env->slot->errors, 1);
        chain_note_error(s->cr, CHAIN_ERR_STEP);
    }
    json_decref(in.json);
    return rc;
}

const step_ops step_format_ops = {
    .process = step_format_process,
    .fini = step_format_fini,
};
