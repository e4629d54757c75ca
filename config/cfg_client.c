/* cfg_client: the `mqtt_clients:` section (broker URL, subscriptions, credentials, TLS). */
#include "cfg_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "names.h"

#define F(key, type, field, def, ...)                                                              \
    {                                                                                              \
        key, type, offsetof(cfg_client, field), def, __VA_ARGS__                                   \
    }
#define A(key)                                                                                     \
    {                                                                                              \
        key, CFG_F_ANY, 0, NULL, 0, 0, 0, NULL                                                     \
    }

static const cfg_field client_fields[] = {
    F("client_id", CFG_F_STR, client_id, NULL, CFG_REQUIRED, 0, 0, NULL),
    F("broker_url", CFG_F_STR, broker_url, NULL, CFG_REQUIRED, 0, 0, NULL),
    F("port", CFG_F_INT, port, NULL, 0, 1, 65535, NULL),
    A("topics"),
    F("username", CFG_F_STR, username, NULL, 0, 0, 0, NULL),
    A("password"),
    A("password_env"),
    A("password_file"),
    A("tls"),
    F("keepalive", CFG_F_INT, keepalive, "60", 0, 0, 65535, NULL),
    F("clean_session", CFG_F_BOOL, clean_session, NULL, 0, 0, 0, NULL),
    A("session_expiry"),
    A("mqtt_version"),
    A("will"),
    A("reconnect"),
    F("shared_group", CFG_F_STR, shared_group, NULL, 0, 0, 0, NULL),
};

static const cfg_field tls_fields[] = {
    F("ca", CFG_F_PATH, tls.ca, NULL, 0, 0, 0, NULL),
    F("cert", CFG_F_PATH, tls.cert, NULL, 0, 0, 0, NULL),
    F("key", CFG_F_PATH, tls.key, NULL, 0, 0, 0, NULL),
    F("alpn", CFG_F_STR, tls.alpn, NULL, 0, 0, 0, NULL),
    F("verify", CFG_F_BOOL, tls.verify, "true", 0, 0, 0, NULL),
};

static const cfg_field will_fields[] = {
    F("topic", CFG_F_STR, will.topic, NULL, CFG_REQUIRED, 0, 0, NULL),
    F("payload", CFG_F_STR, will.payload, "", 0, 0, 0, NULL),
    F("qos", CFG_F_INT, will.qos, "0", 0, 0, 2, NULL),
    F("retain", CFG_F_BOOL, will.retain, "false", 0, 0, 0, NULL),
};

static const cfg_field reconnect_fields[] = {
    F("min_delay", CFG_F_DURATION, reconnect_min, "0.1", 0, 0.001, 3600, NULL),
    F("max_delay", CFG_F_DURATION, reconnect_max, "30", 0, 0.001, 86400, NULL),
};

static const cfg_field topic_fields[] = {
    {"name", CFG_F_STR, offsetof(cfg_topic, name), NULL, CFG_REQUIRED, 0, 0, NULL},
    {"qos", CFG_F_INT, offsetof(cfg_topic, qos), "0", 0, 0, 2, NULL},
};

void cfg_client_fini(cfg_client *cl)
{
    free(cl->client_id);
    free(cl->broker_url);
    free(cl->host);
    free(cl->uri);
    free(cl->username);
    if (cl->password) {
        /* the secret should not outlive the config in freed heap memory */
        explicit_bzero(cl->password, strlen(cl->password));
        free(cl->password);
    }
    free(cl->tls.ca);
    free(cl->tls.cert);
    free(cl->tls.key);
    free(cl->tls.alpn);
    free(cl->will.topic);
    free(cl->will.payload);
    free(cl->shared_group);
    for (size_t i = 0; i < cl->n_topics; i++)
        free(cl->topics[i].name);
    free(cl->topics);
}

/* A host name as resolvers take it (RFC 1123 letters, digits, '-', '.'; '_' as found in
 * real names), or an IPv6 address inside brackets (hex, ':', '.', and a %zone). Why refuse
 * more than paho would: the host reaches logs, `status` and scripts (scripts/mqttflow, unit
 * files); "h; rm -rf /" is never a broker and only ever a mistake or an attack. */
static bool host_ok(const char *h, bool v6)
{
    for (const char *c = h; *c; c++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  (*c >= '0' && *c <= '9') || *c == '-' || *c == '.' || (!v6 && *c == '_') ||
                  (v6 && (*c == ':' || *c == '%'));
        if (!ok)
            return false;
    }
    return strlen(h) <= 253;
}

/* scheme://host[:port][/path] -> scheme, host, port (0 when absent); the path is kept for ws */
static void parse_url(cfg_ctx *x, cfg_client *cl, const cfg_node *v, char **path)
{
    static const struct {
        const char *prefix;
        enum cfg_scheme scheme;
    } schemes[] = {
        {"mqtt://", CFG_MQTT}, {"tcp://", CFG_MQTT}, {"mqtts://", CFG_MQTTS},
        {"ssl://", CFG_MQTTS}, {"ws://", CFG_WS},    {"wss://", CFG_WSS},
    };
    const char *u = cl->broker_url, *rest = NULL;
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]) && !rest; i++) {
        size_t n = strlen(schemes[i].prefix);
        if (!strncmp(u, schemes[i].prefix, n)) {
            rest = u + n;
            cl->scheme = schemes[i].scheme;
        }
    }
    if (!rest) {
        if (strstr(u, "://")) {
            cfg_err(x, v,
                    "unsupported scheme in \"%s\" (expected mqtt://, tcp://, mqtts://, ssl://, "
                    "ws:// or wss://)",
                    u);
            return;
        }
        rest = u; /* a bare host, as paho-mqtt's connect(host) took it */
        cl->scheme = CFG_MQTT;
    }
    /* user:password@host: refused before anything echoes the URL (every later message
     * quotes it), and never shown: `check` output lands in CI logs and tickets */
    if (memchr(rest, '@', strcspn(rest, "/"))) {
        cfg_err(x, v,
                "user info in the URL is refused (not shown here): put the user in username and "
                "the password in password_env or password_file");
        return;
    }
    const char *host_end, *after;
    if (*rest == '[') { /* [v6]:port */
        host_end = strchr(rest, ']');
        if (!host_end) {
            cfg_err(x, v, "unterminated IPv6 address in \"%s\"", u);
            return;
        }
        cl->host = strndup(rest + 1, (size_t)(host_end - rest - 1));
        after = host_end + 1;
    } else {
        host_end = rest + strcspn(rest, ":/");
        cl->host = strndup(rest, (size_t)(host_end - rest));
        after = host_end;
    }
    if (!cl->host || !*cl->host) {
        cfg_err(x, v, "no host in \"%s\"", u);
        return;
    }
    if (!host_ok(cl->host, *rest == '[')) {
        cfg_err(x, v,
                "\"%s\" is not a valid host name (letters, digits, '-', '.', '_' or an IP "
                "address)",
                cl->host);
        return;
    }
    if (*after == ':') {
        char *end;
        long p = strtol(after + 1, &end, 10);
        if (end == after + 1 || (*end && *end != '/') || p < 1 || p > 65535) {
            cfg_err(x, v, "bad port in \"%s\" (expected 1..65535)", u);
            return;
        }
        if (!cl->port)
            cl->port = (int)p;
        else if (cl->port != p)
            cfg_warn(x, v, "port %d overrides the port %ld of the URL", cl->port, p);
        after = end;
    } else if (*after && *after != '/') {
        cfg_err(x, v, "malformed broker URL \"%s\"", u);
        return;
    }
    if (*after == '/' && after[1]) {
        if (cl->scheme == CFG_MQTT || cl->scheme == CFG_MQTTS) {
            cfg_err(x, v, "a path in \"%s\" only makes sense with ws:// or wss://", u);
            return;
        }
        *path = strdup(after);
    }
}

static void load_password(cfg_ctx *x, cfg_client *cl, const cfg_node *m)
{
    /* `password:` is refused even when empty: the key alone says someone meant to put a
     * secret in the file */
    const cfg_node *pw = NULL;
    for (size_t i = 0; i + 1 < m->n && !pw; i += 2)
        if (!strcmp(m->items[i]->str, "password"))
            pw = m->items[i + 1];
    const cfg_node *env = cfg_node_get(m, "password_env");
    const cfg_node *file = cfg_node_get(m, "password_file");
    if (pw) {
        size_t old = cfg_path_key(x, "password");
        cfg_err(x, pw,
                "a password is never read from the YAML; use password_env (an environment "
                "variable) or password_file (a file readable only by you)");
        cfg_path_pop(x, old);
    }
    if (env && file) {
        size_t old = cfg_path_key(x, "password_file");
        cfg_err(x, file, "give password_env or password_file, not both");
        cfg_path_pop(x, old);
        return;
    }
    if (x->flags & CFG_LOAD_CONTROL)
        return; /* status/stop: the secret belongs to the service, not to the operator */
    if (env) {
        size_t old = cfg_path_key(x, "password_env");
        char *name = cfg_schema_string(x, env);
        if (name) {
            const char *val = getenv(name);
            if (!val)
                cfg_err(x, env, "environment variable %s is not set", name);
            else if (!(cl->password = strdup(val)))
                cfg_err(x, env, "out of memory");
        }
        free(name);
        cfg_path_pop(x, old);
    }
    if (file) {
        size_t old = cfg_path_key(x, "password_file");
        char *rel = cfg_schema_string(x, file);
        char *p = rel ? cfg_schema_abspath(x->dir, rel) : NULL;
        if (p) {
            int fd = open(p, O_RDONLY | O_CLOEXEC);
            struct stat st;
            if (fd < 0 || fstat(fd, &st) < 0) {
                cfg_err(x, file, "cannot read password file %s: %s", p, strerror(errno));
            } else if (!S_ISREG(st.st_mode) || st.st_size > 4096) {
                cfg_err(x, file, "password file %s is not a regular file of at most 4096 bytes", p);
            } else {
                if (st.st_mode & (S_IROTH | S_IWOTH))
                    cfg_warn(x, file, "password file %s is readable by others (chmod 600 it)", p);
                char buf[4097];
                ssize_t n = read(fd, buf, sizeof(buf) - 1);
                if (n < 0) {
                    cfg_err(x, file, "cannot read password file %s: %s", p, strerror(errno));
                } else {
                    /* one trailing newline is how editors and `echo` end the file */
                    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
                        n--;
                    buf[n] = 0;
                    if (!(cl->password = strdup(buf)))
                        cfg_err(x, file, "out of memory");
                    explicit_bzero(buf, sizeof(buf));
                }
            }
            if (fd >= 0)
                close(fd);
        }
        free(p);
        free(rel);
        cfg_path_pop(x, old);
    }
}

static void load_version(cfg_ctx *x, cfg_client *cl, const cfg_node *m)
{
    cl->mqtt_version = 4;
    const cfg_node *v = cfg_node_get(m, "mqtt_version");
    if (!v)
        return;
    size_t old = cfg_path_key(x, "mqtt_version");
    if (v->type == CFG_NODE_SCALAR &&
        (!strcmp(v->str, "3.1.1") || !strcmp(v->str, "311") || !strcmp(v->str, "4")))
        cl->mqtt_version = 4;
    else if (v->type == CFG_NODE_SCALAR && (!strcmp(v->str, "5") || !strcmp(v->str, "5.0")))
        cl->mqtt_version = 5;
    else
        cfg_err(x, v, "expected \"3.1.1\" or 5, got %s%s%s", v->type == CFG_NODE_SCALAR ? "\"" : "",
                v->type == CFG_NODE_SCALAR ? v->str : cfg_node_kind(v),
                v->type == CFG_NODE_SCALAR ? "\"" : "");
    cfg_path_pop(x, old);
}

static void check_file(cfg_ctx *x, const cfg_node *m, const char *key, const char *p)
{
    if (!p || (x->flags & CFG_LOAD_CONTROL))
        return;
    if (access(p, R_OK) < 0) {
        size_t old = cfg_path_key(x, key);
        cfg_err(x, cfg_node_get(m, key), "cannot read %s: %s", p, strerror(errno));
        cfg_path_pop(x, old);
    }
}

/* A private key anyone on the host can read is a leaked key: warn (not an error, so a
 * deployment that relies on a shared key still starts), the way password_file does. */
static void check_key_mode(cfg_ctx *x, const cfg_node *m, const char *p)
{
    struct stat st;
    if (!p || (x->flags & CFG_LOAD_CONTROL) || stat(p, &st) < 0 ||
        !(st.st_mode & (S_IROTH | S_IWOTH)))
        return;
    cfg_warn_key(x, m, "key", "private key %s is readable by others (chmod 600 it)", p);
}

/* alpn: one protocol name or a comma-separated list ("mqtt" or "x-amzn-mqtt-ca,mqtt"), each
 * 1..255 bytes (the length byte of the TLS wire format, see common/mqtt_tls.h) */
static void check_alpn(cfg_ctx *x, const cfg_node *m, const char *alpn)
{
    if (!alpn)
        return;
    size_t run = 0;
    bool bad = false;
    for (const char *q = alpn;; q++) {
        if (*q == ',' || !*q) {
            bad |= run == 0 || run > 255;
            run = 0;
            if (!*q)
                break;
        } else {
            run++;
        }
    }
    if (bad || strlen(alpn) > 1024) {
        cfg_err_key(x, m, "alpn",
                    "expected protocol names of 1 to 255 bytes separated by commas (at most 1024 "
                    "bytes in all), got \"%s\"",
                    alpn);
    }
}

static void load_topics(cfg_ctx *x, cfg_client *cl, const cfg_node *seq)
{
    size_t old = cfg_path_key(x, "topics");
    if (seq->type != CFG_NODE_SEQ) {
        cfg_err(x, seq, "expected a list of {name, qos}, got %s", cfg_node_kind(seq));
        goto out;
    }
    cl->topics =
        cfg_entries_alloc(x, seq, seq->n, CFG_MAX_TOPICS, "subscriptions", sizeof(*cl->topics));
    if (!cl->topics)
        goto out;
    for (size_t i = 0; i < seq->n; i++) {
        const cfg_node *item = seq->items[i];
        cfg_topic *t = &cl->topics[cl->n_topics++];
        const cfg_node *at = item;
        t->pos = item->pos;
        size_t o2 = cfg_path_index(x, i);
        if (item->type == CFG_NODE_SCALAR) { /* "- sensors/#" shorthand: QoS 0 */
            if (!(t->name = strdup(item->str)))
                cfg_err(x, item, "out of memory");
        } else if (cfg_schema_decode(x, item, topic_fields, CFG_NFIELDS(topic_fields), t, false)) {
            const cfg_node *n = cfg_node_get(item, "name");
            if (n && n->type == CFG_NODE_SCALAR)
                at = n;
        }
        if (t->name && !cfg_topic_filter_is_valid(t->name)) {
            size_t o3 = at != item ? cfg_path_key(x, "name") : x->plen;
            cfg_err(x, at,
                    "malformed topic filter \"%s\" (+ and # must fill a whole level, # only "
                    "last)",
                    t->name);
            cfg_path_pop(x, o3);
        }
        for (size_t j = 0; t->name && j + 1 < cl->n_topics; j++)
            if (cl->topics[j].name && !strcmp(cl->topics[j].name, t->name))
                cfg_warn(x, at, "topic \"%s\" is subscribed twice", t->name);
        cfg_path_pop(x, o2);
    }
out:
    cfg_path_pop(x, old);
}

/* The session default (issue 8): a subscription with QoS 1 or 2 asks the broker to keep what
 * it cannot deliver now, which only a persistent session does, so without a clean_session key
 * such a client gets one; an explicit clean_session: true there is warned about. */
static void load_session(cfg_ctx *x, cfg_client *cl, const cfg_node *m)
{
    int top_qos = 0;
    for (size_t i = 0; i < cl->n_topics; i++)
        if (cl->topics[i].qos > top_qos)
            top_qos = cl->topics[i].qos;
    const cfg_node *cs = cfg_node_get(m, "clean_session");
    if (!cs) {
        cl->clean_session = top_qos == 0;
    } else if (cl->clean_session && top_qos > 0) {
        size_t old = cfg_path_key(x, "clean_session");
        cfg_warn(x, cs,
                 "a clean session with a QoS %d subscription: what the broker receives while "
                 "this client is disconnected (a restart, a full pipeline) is lost; remove the "
                 "key (QoS >= 1 defaults to a persistent session) or set it false",
                 top_qos);
        cfg_path_pop(x, old);
    }
    cl->session_expiry = UINT32_MAX;
    const cfg_node *se = cfg_node_get(m, "session_expiry");
    if (!se)
        return;
    size_t old = cfg_path_key(x, "session_expiry");
    double secs = 0;
    if (se->type == CFG_NODE_SCALAR && !strcmp(se->str, "never"))
        cl->session_expiry = UINT32_MAX;
    else if (se->type == CFG_NODE_SCALAR && cfg_schema_parse_duration(se->str, &secs) == 0 &&
             secs >= 0 && secs < (double)UINT32_MAX)
        cl->session_expiry = (uint32_t)secs;
    else
        cfg_err(x, se, "expected \"never\" or a duration below 136 years (e.g. 3600, 1h)");
    cfg_path_pop(x, old);
}

static void load_client(cfg_ctx *x, cfg_client *cl, const cfg_node *m)
{
    cl->pos = m->pos;
    cl->reconnect_min = 0.1;
    cl->reconnect_max = 30;
    cl->mqtt_version = 4;
    if (!cfg_schema_decode(x, m, client_fields, CFG_NFIELDS(client_fields), cl, false))
        return;
    char leaf[NAME_MAX + 1];
    if (cl->client_id && !*cl->client_id) {
        cfg_err_key(x, m, "client_id", "must not be empty");
    } else if (cl->client_id && names_client_dir(leaf, sizeof(leaf), cl->client_id) < 0) {
        /* the relay's spool folder of this client (common/names.h) must be one file name */
        cfg_err_key(x, m, "client_id",
                    "too long for its spool folder name (at most %d bytes once encoded; bytes "
                    "outside A-Z a-z 0-9 . _ - take three)",
                    NAME_MAX);
    }
    char *ws_path = NULL;
    if (cl->broker_url) {
        size_t old = cfg_path_key(x, "broker_url");
        parse_url(x, cl, cfg_node_get(m, "broker_url"), &ws_path);
        cfg_path_pop(x, old);
    }
    load_password(x, cl, m);
    load_version(x, cl, m);

    const cfg_node *tls = cfg_node_get(m, "tls");
    cl->tls.verify = true;
    if (tls) {
        size_t old = cfg_path_key(x, "tls");
        if (cfg_schema_decode(x, tls, tls_fields, CFG_NFIELDS(tls_fields), cl, false)) {
            check_file(x, tls, "ca", cl->tls.ca);
            check_file(x, tls, "cert", cl->tls.cert);
            check_file(x, tls, "key", cl->tls.key);
            check_key_mode(x, tls, cl->tls.key);
            check_alpn(x, tls, cl->tls.alpn);
            if (!cl->tls.cert != !cl->tls.key)
                cfg_err(x, tls, "a client certificate needs both cert and key");
        }
        cfg_path_pop(x, old);
    }
    cl->tls.enabled = tls || cl->scheme == CFG_MQTTS || cl->scheme == CFG_WSS;

    const cfg_node *will = cfg_node_get(m, "will");
    if (will) {
        size_t old = cfg_path_key(x, "will");
        if (cfg_schema_decode(x, will, will_fields, CFG_NFIELDS(will_fields), cl, false)) {
            cl->will.enabled = true;
            if (cl->will.topic && !cfg_topic_name_is_valid(cl->will.topic)) {
                cfg_err_key(x, will, "topic", "\"%s\" is not a valid topic name (no wildcards)",
                            cl->will.topic);
            }
        }
        cfg_path_pop(x, old);
    }
    const cfg_node *rc = cfg_node_get(m, "reconnect");
    if (rc) {
        size_t old = cfg_path_key(x, "reconnect");
        if (cfg_schema_decode(x, rc, reconnect_fields, CFG_NFIELDS(reconnect_fields), cl, false) &&
            cl->reconnect_min > cl->reconnect_max)
            cfg_err(x, rc, "min_delay (%g) is larger than max_delay (%g)", cl->reconnect_min,
                    cl->reconnect_max);
        cfg_path_pop(x, old);
    }
    if (cl->shared_group && (!*cl->shared_group || strpbrk(cl->shared_group, "/+#"))) {
        cfg_err_key(x, m, "shared_group",
                    "a shared group name must be non-empty without '/', '+' or '#'");
    }
    const cfg_node *topics = cfg_node_get(m, "topics");
    if (topics)
        load_topics(x, cl, topics);
    load_session(x, cl, m);

    if (!cl->port)
        cl->port = cl->tls.enabled ? (cl->scheme == CFG_WSS ? 443 : 8883)
                                   : (cl->scheme == CFG_WS ? 80 : 1883);
    if (cl->host) {
        const char *s = cl->scheme == CFG_WS || cl->scheme == CFG_WSS
                            ? (cl->tls.enabled ? "wss" : "ws")
                            : (cl->tls.enabled ? "ssl" : "tcp");
        bool v6 = strchr(cl->host, ':') != NULL;
        if (asprintf(&cl->uri, "%s://%s%s%s:%d%s", s, v6 ? "[" : "", cl->host, v6 ? "]" : "",
                     cl->port, ws_path ? ws_path : "") < 0) {
            cl->uri = NULL;
            cfg_err(x, m, "out of memory");
        }
    }
    free(ws_path);
}

void cfg_clients_load(cfg_ctx *x, const cfg_node *seq)
{
    size_t old = cfg_path_key(x, "mqtt_clients");
    cfg *c = x->c;
    if (seq->type != CFG_NODE_SEQ) {
        cfg_err(x, seq, "expected a list of clients, got %s", cfg_node_kind(seq));
        goto out;
    }
    if (seq->n == 0)
        cfg_err(x, seq, "at least one client is needed");
    c->clients = cfg_entries_alloc(x, seq, seq->n, CFG_MAX_CLIENTS, "clients", sizeof(*c->clients));
    if (!c->clients)
        goto out;
    for (size_t i = 0; i < seq->n; i++) {
        size_t o2 = cfg_path_index(x, i);
        cfg_client *cl = &c->clients[c->n_clients++];
        load_client(x, cl, seq->items[i]);
        for (size_t j = 0; cl->client_id && j < i; j++) {
            if (c->clients[j].client_id && !strcmp(c->clients[j].client_id, cl->client_id)) {
                cfg_err_key(x, seq->items[i], "client_id",
                            "duplicate client_id \"%s\" (first at line %d)", cl->client_id,
                            c->clients[j].pos.line);
                break;
            }
        }
        cfg_path_pop(x, o2);
    }
out:
    cfg_path_pop(x, old);
}
