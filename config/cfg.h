/* cfg: the configuration of one mqttflow instance, loaded from YAML (DESIGN §3).
 *
 * Every process loads the same file: the supervisor and `mqttflow check` with full
 * validation, each stage to learn its part. After cfg_load returns, a cfg is a read-only tree
 * of plain structs shared by every module of the process; it is freed only by cfg_destroy.
 * Why public structs instead of an opaque type (STYLE 5): the tree is pure data read by every
 * stage, and accessors for ~80 fields would add nothing but noise.
 *
 * Cross references are resolved to indices into the cfg's arrays (-1 = none), so stages that
 * exchange records name clients and rules by index (rec_hdr.client, rec_hdr.rule).
 *
 * Errors: cfg_load collects every problem it finds (not only the first) as lines
 * "FILE:LINE:COLUMN: what was expected", e.g.
 *   config.yaml:14:7: rules[1].callback: no callback named "handle_temprature_alert"
 * Limits on input (file size, nesting, scalar length, aliases) reject hostile files quickly.
 */
#ifndef MF_CFG_H
#define MF_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cfg_steps.h"

#define CFG_MAX_FILE        (4u << 20) /* bytes of YAML */
#define CFG_MAX_DEPTH       32         /* nesting of mappings/sequences */
#define CFG_MAX_SCALAR      65536      /* bytes of one scalar */
#define CFG_SOCKET_PATH_MAX 107        /* sizeof(sockaddr_un.sun_path) - 1 */
#define CFG_MAX_ALIASES     0 /* YAML aliases are refused: none is needed, bombs are avoided */
#define CFG_MAX_CLIENTS     256
#define CFG_MAX_WORKERS     64
#define CFG_MAX_TOPIC       65535 /* MQTT limit on a topic's length */
/* Counts: records carry rule and client indices in 16 bits (rec.h), and lookups by name are
 * linear, so a hostile file with 100,000 rules must be refused, not resolved. */
#define CFG_MAX_RULES     4096
#define CFG_MAX_CALLBACKS 4096
#define CFG_MAX_CHAINS    4096
#define CFG_MAX_STEPS     256  /* per chain */
#define CFG_MAX_TOPICS    4096 /* subscriptions per client */

typedef struct cfg_pos {
    int line, col; /* 1-based place in the file, 0 when the value is a default */
} cfg_pos;

/* A key/value of a step's `config:` map, kept as text for mf_param (numbers as written). */
typedef struct cfg_param {
    char *key, *value;
} cfg_param;

enum cfg_scheme { CFG_MQTT, CFG_MQTTS, CFG_WS, CFG_WSS }; /* tcp:// = mqtt://, ssl:// = mqtts:// */

typedef struct cfg_topic {
    char *name; /* subscription filter (+ and # allowed) */
    int qos;    /* 0..2, default 0 */
    cfg_pos pos;
} cfg_topic;

typedef struct cfg_client {
    char *client_id;
    char *broker_url; /* as written */
    enum cfg_scheme scheme;
    char *host;     /* parsed from broker_url */
    int port;       /* `port`, else the URL's port, else 1883/8883 */
    char *uri;      /* "tcp://host:port" / "ssl://..." / "ws://..." for paho */
    char *username; /* NULL when absent */
    char *password; /* read from password_env / password_file at load; never from YAML */
    struct {
        bool enabled;                 /* a tls: section is present or the scheme is mqtts/wss */
        char *ca, *cert, *key, *alpn; /* paths resolved against the YAML's folder */
        bool verify;                  /* default true */
    } tls;
    int keepalive;           /* seconds, default 60 */
    bool clean_session;      /* default: false when a topic has QoS >= 1, else true */
    uint32_t session_expiry; /* MQTT 5, seconds, with clean_session false; default never */
    int mqtt_version;        /* 4 (3.1.1, default) or 5 */
    struct {
        bool enabled;
        char *topic, *payload;
        int qos;
        bool retain;
    } will;
    double reconnect_min, reconnect_max; /* seconds, defaults 0.1 and 30 */
    char *shared_group;                  /* subscribe as $share/<group>/<topic> when set */
    cfg_topic *topics;
    size_t n_topics;
    cfg_pos pos;
} cfg_client;

typedef struct cfg_callback {
    char *name;
    char *module; /* absolute path of the shared object (resolved against the YAML's folder) */
    char *function;
    cfg_pos pos;
    /* 1: a Python callback (common/pyshim.h): module is the absolute path of a *.py file, or
     * a dotted module name kept as written */
    int python;
} cfg_callback;

/* Step kinds: CFG_STEP_SAMPLER, ... in the order of the table of kinds (cfg_steps.h). */
#define CFG_STEP_ENUM(ID, ...) CFG_STEP_##ID,
enum cfg_step_kind { CFG_STEP_KINDS(CFG_STEP_ENUM) CFG_STEP_N_KINDS };
#undef CFG_STEP_ENUM

enum cfg_agg_fn { CFG_AGG_COUNT, CFG_AGG_MIN, CFG_AGG_MAX, CFG_AGG_AVG, CFG_AGG_SUM };

/* A step's parameters. The kinds share these members: a kind's row in cfg_steps.h maps its
 * `config:` keys onto them (a duration into interval, a JSON field path into field, ...). */
typedef struct cfg_step {
    enum cfg_step_kind kind;
    int callback; /* sampler, custom_processor: index into cfg.callbacks, else -1 */
    /* sampler */
    double duration;       /* seconds, > 0 */
    uint32_t max_messages; /* cap per window, default 10000 */
    /* relay */
    int target_client;  /* index into cfg.clients, -1 = the rule's source client */
    char *target_topic; /* NULL: keep the message's topic */
    int qos;            /* -1 = inherit */
    int retain;         /* -1 = inherit */
    /* format */
    char *topic_prefix, *topic_suffix, *topic_template, *payload_template;
    /* filter */
    char *condition; /* expression source, see common/expr.h */
    /* batch */
    uint32_t batch_count; /* flush after N messages, 0 = no count limit */
    double interval;      /* a period or window in seconds (batch, throttle, ...), 0 = none */
    /* throttle */
    double rate; /* messages per second allowed through */
    /* on_change, aggregate, ... */
    char *field; /* JSON field path ("temp", "a.b"); NULL = whole payload */
    enum cfg_agg_fn agg_fn;
    cfg_param *params; /* the whole `config:` map as text, for mf_param */
    size_t n_params;
    cfg_pos pos;
} cfg_step;

/* The kind's YAML name ("sampler"), "?" out of range. */
const char *cfg_step_kind_name(enum cfg_step_kind k);
/* Continues FNV-1a hash h (hash.h) over what identifies a step's state: its kind's name and,
 * for a stateful kind, the values of its fields (not the names it resolves: a callback or a
 * client may change without changing what the state means). Pure. */
uint64_t cfg_step_hash(uint64_t h, const cfg_step *s);

typedef struct cfg_chain {
    char *name;
    cfg_step *steps;
    size_t n_steps;
    bool stateful; /* has a step of a CFG_STEP_STATEFUL kind (cfg_steps.h) */
    cfg_pos pos;
} cfg_chain;

enum cfg_exec_mode { CFG_EXEC_SEQUENTIAL, CFG_EXEC_PARALLEL, CFG_EXEC_PER_TOPIC };
enum cfg_on_error { CFG_ON_ERROR_LOG, CFG_ON_ERROR_DEAD_LETTER };

typedef struct cfg_rule {
    char *name;
    int source_client;            /* index into cfg.clients, -1 = any client */
    char *topic;                  /* MQTT filter; NULL = every topic */
    char *regex;                  /* PCRE2 on the topic, NULL = none */
    char *condition;              /* expression, NULL = none */
    int callback;                 /* index into cfg.callbacks, or -1 */
    int chain;                    /* index into cfg.chains, or -1 (exactly one of the two is set) */
    enum cfg_exec_mode exec_mode; /* default sequential */
    enum cfg_on_error on_error;   /* default log */
    cfg_pos pos;
} cfg_rule;

enum cfg_overflow { CFG_OVERFLOW_BLOCK, CFG_OVERFLOW_DROP };
/* runtime.mqtt_io: the MQTT data path of the ingress and the relay. auto: io_uring
 * (common/mqttc) for plain-TCP brokers (mqtt://, tcp://), paho for TLS and WebSocket; paho:
 * paho everywhere. MQTTFLOW_MQTT_IO=paho|uring in the environment overrides it (tests). */
enum cfg_mqtt_io { CFG_MQTT_IO_AUTO, CFG_MQTT_IO_PAHO };

/* runtime.relay's upper bounds: relay/pump.c asserts they are its completion queue's slots
 * (CQ_MAX_SLOTS) and its drain window (SFWD_BATCH_MAX); config does not include relay/. */
#define CFG_RELAY_OUTSTANDING_MAX (1 << 20)
#define CFG_RELAY_DRAIN_BATCH_MAX 256

typedef struct cfg_runtime {
    char *instance; /* default "default"; [A-Za-z0-9_-]{1,32} */
    int workers;    /* default 2, 1..CFG_MAX_WORKERS */
    /* CPU pinning per stage; -1 = not pinned. cpus: {ingress: 0, router: 1, relay: 1,
     * workers: [0, 1], supervisor: 0}; workers[i % n_cpu_workers] for worker i. */
    int cpu_ingress, cpu_router, cpu_relay, cpu_supervisor;
    int *cpu_workers;
    size_t n_cpu_workers;
    size_t ring_size;           /* bytes per ring, power of two, default 4 MiB */
    size_t max_payload;         /* bytes, default 256 KiB; larger messages are dead-lettered */
    int max_attempts;           /* default 3 */
    int callback_timeout_ms;    /* default 5000, 0 = none */
    enum cfg_overflow overflow; /* default block */
    char *spool_dir;            /* default <state>/spool (common/privdir.h) */
    char *dead_letter_dir;      /* default <state>/dead */
    char *dead_letter_topic;    /* NULL = none */
    int dead_letter_client;     /* index, -1 = none */
    char *control_socket;       /* default <privdir_default_runtime>/mqttflow-<instance>.sock */
    double stats_interval;      /* seconds between stats log lines, 0 = off (default) */
    size_t spool_max_bytes;     /* default 1 GiB */
    char *metrics_listen;       /* runtime.metrics.listen "HOST:PORT", NULL = no HTTP endpoint */
    /* runtime.relay: publishes handed to paho and not yet finished (default 256,
     * 1..CFG_RELAY_OUTSTANDING_MAX) and records per spool drain batch (default 128,
     * 1..CFG_RELAY_DRAIN_BATCH_MAX; the relay takes at most half of relay_outstanding) */
    int relay_outstanding;
    int relay_drain_batch;
    /* runtime.python (config/cfg_python.c): a virtual environment whose site-packages
     * callbacks import from, and folders put first on sys.path; absolute; NULL/0 = none */
    char *python_venv;
    char **python_path;
    size_t n_python_path;
    enum cfg_mqtt_io mqtt_io; /* default auto (README "MQTT data path") */
    /* runtime.ingress_coalesce_us: on a dense stream the io_uring ingress starts its next
     * receive this long after a batch (common/mqttc.h rx_coalesce_us); default 500, 0 = off,
     * at most 100000 */
    int ingress_coalesce_us;
} cfg_runtime;

typedef struct cfg_logging {
    int default_level; /* MF_LOG_* of mqttflow.h, default MF_LOG_INFO */
    cfg_param *levels; /* component -> level name, validated */
    size_t n_levels;
} cfg_logging;

typedef struct cfg {
    char *path; /* as given to cfg_load */
    char *dir;  /* absolute folder of the file */
    cfg_client *clients;
    size_t n_clients;
    cfg_callback *callbacks;
    size_t n_callbacks;
    cfg_rule *rules;
    size_t n_rules;
    cfg_chain *chains;
    size_t n_chains;
    cfg_runtime runtime;
    cfg_logging logging;
} cfg;

/* Diagnostics of one load: errors (fatal) and warnings, each "FILE:LINE:COL: message". */
typedef struct cfg_diag {
    char **errors;
    size_t n_errors;
    char **warnings;
    size_t n_warnings;
} cfg_diag;

enum {
    CFG_LOAD_CHECK_MODULES = 1u << 0, /* dlopen each callback module and dlsym each function */
    /* for `status`/`stop CONFIG`: only what finds the instance (its name, its socket); secrets
     * (password_env/password_file) and the filesystem checks of the running service are
     * skipped, so an operator without the service's environment can still reach it */
    CFG_LOAD_CONTROL = 1u << 1,
};

/* Loads and validates path. On success returns 0 and *out (owned by the caller; cfg_destroy).
 * On failure returns -EINVAL (the file is wrong: every problem is in diag->errors), or
 * -errno (cannot read it; also reported in diag) and *out is NULL. diag may be NULL; when not,
 * the caller frees it with cfg_diag_fini whatever the result. */
int cfg_load(const char *path, unsigned flags, cfg **out, cfg_diag *diag);
/* The same from a buffer; name is used in messages and dir resolves relative paths. */
int cfg_load_buffer(const char *name, const char *dir, const char *data, size_t len, unsigned flags,
                    cfg **out, cfg_diag *diag);
void cfg_destroy(cfg *c);        /* accepts NULL */
void cfg_diag_fini(cfg_diag *d); /* accepts NULL; leaves it empty */

/* Lookups by name: index or -1. */
int cfg_client_index(const cfg *c, const char *client_id);
int cfg_callback_index(const cfg *c, const char *name);
int cfg_chain_index(const cfg *c, const char *name);
/* Whether an MQTT topic filter / topic name is valid (+ and # placement, length, no NUL). */
bool cfg_topic_filter_is_valid(const char *filter);
bool cfg_topic_name_is_valid(const char *topic);
/* Clients that have topics get an ingress; this is the count and the i-th such client. */
size_t cfg_ingress_count(const cfg *c);
int cfg_ingress_client(const cfg *c, size_t i);
/* A one-paragraph summary (clients, subscriptions, rules, chains, workers) for `mqttflow
 * check`; written to f. */
void cfg_print_summary(const cfg *c, FILE *f);

#endif
