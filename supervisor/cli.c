/* cli: `mqttflow` subcommands (see cli.h). */
#include "cli.h"

#include "topo.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <unistd.h>

#include "cfg.h"
#include "ctl.h"
#include "exitcode.h"
#include "log.h"
#include "loop.h"
#include "tap.h"
#include "tap_cli.h"
#include "watch.h"
#include "try.h"
#include "version.h"

#define STATUS_TIMEOUT_MS  10000
#define RESTART_TIMEOUT_MS 120000 /* per stage: a stop deadline plus a ready deadline */
#define STOP_TIMEOUT_MS    300000
#define GONE_TIMEOUT_MS    10000

/* One row per command: its usage line(s) and what `mqttflow help COMMAND` (and COMMAND -h)
 * adds, so the usage, the help and the manual page (docs/man/mqttflow.1, checked against
 * `mqttflow help --list` by tests/integration/06-manpages.sh) agree. */
typedef struct cli_command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *usage;
    const char *help;
} cli_command;

static int cli_help(int argc, char **argv);
static int cli_version(int argc, char **argv);

static const cli_command commands[] = {
    {"check", cli_check, "  mqttflow check CONFIG\n",
     "check: loads CONFIG and reports every problem as FILE:LINE:COLUMN: path: message (exit\n"
     "2), warnings too; dlopens every callback module, resolves its functions and checks its\n"
     "mf_api_version. Nothing is connected to and nothing is created. Prints a summary.\n"},
    {"run", cli_run, "  mqttflow run CONFIG\n",
     "run: starts the stages (relay, workers, router, ingress) and supervises them.\n"
     "A stage that dies is respawned after a backoff (100 ms, doubling up to 5 s); more\n"
     "than 5 restarts in 10 s put it in the failed state (tried again after 30 s); exit\n"
     "code 2 (configuration or module error, e.g. a failing mf_init) is never respawned.\n"
     "A worker that dies inside a callback is back after 100 ms (its message is run\n"
     "again, dead-lettered after runtime.max_attempts), up to 30 such deaths in 10 s.\n"
     "The stages die with the supervisor (even kill -9). A new run of the instance then\n"
     "resumes the records queued in the rings left behind (same runtime.ring_size and\n"
     "max_payload; else they are reclaimed empty, logged). SIGTERM/SIGINT stops the\n"
     "stages in pipeline order, each draining its input; a second one kills them.\n"},
    {"status", cli_status,
     "  mqttflow status [--prom] [CONFIG | -c CONFIG | -i INSTANCE | -s SOCKET]\n",
     "status STATE: starting, running, stopping, backoff (died; respawned when its\n"
     "backoff is over), failed (not respawned; the reason follows the table: exit 2 =\n"
     "configuration or module error, until `mqttflow restart`; restart intensity =\n"
     "more than 5 restarts (or 30 deaths inside callbacks) in 10 s, tried again after\n"
     "30 s or at once on `mqttflow restart`), stopped. --prom: the same as Prometheus\n"
     "text (as the HTTP endpoint's /metrics). --json: as JSON for scripts. --rules: per\n"
     "rule matched, processed, errors, dead-lettered, p50/p99 processing time. --watch:\n"
     "the table refreshed every second (q or Ctrl-C quits). docs/metrics.md has the\n"
     "metric names and the JSON schema.\n"},
    {"restart", cli_restart,
     "  mqttflow restart [-c CONFIG | -i INSTANCE | -s SOCKET] worker N | workers | router"
     " | relay | ingress CLIENT_ID | ingresses\n",
     "restart: SIGTERM to the stage, which finishes at a record boundary, then a new\n"
     "process, waited for until ready (workers: one after the other, each ready before\n"
     "the next: a rolling restart, e.g. after replacing a callback module). A failed\n"
     "stage is started again.\n"
     "Delivery across a restart:\n"
     "  router, worker, relay: nothing is lost. A stage releases its input only once\n"
     "  what it made of it is in the next ring (the relay: once PUBACKed), and the new\n"
     "  process re-reads what the old one had not released: at most those are\n"
     "  delivered twice (the relay: at most its in-flight window).\n"
     "  ingress: every message it PUBACKed is in its ring. With a persistent session\n"
     "  (the default of a client with a QoS >= 1 subscription) the broker keeps the\n"
     "  session while the ingress restarts and delivers what arrived meanwhile, and\n"
     "  what it had sent but not got a PUBACK for: nothing is lost. With\n"
     "  clean_session: true (the default for QoS 0 only) the broker ends the session at\n"
     "  the disconnect: QoS 1 messages published until the new ingress has subscribed\n"
     "  (about 0.1-0.5 s), and those in flight to the old one, are not delivered.\n"},
    {"stop", cli_stop, "  mqttflow stop [CONFIG | -c CONFIG | -i INSTANCE | -s SOCKET]\n",
     "stop: asks the supervisor to stop the stages in pipeline order, each draining its\n"
     "input ring, and waits until the supervisor has exited.\n"},
    {"try", try_cli,
     "  mqttflow try CONFIG (--topic T --payload P [--qos N] | --file F) [--client C]\n", TRY_HELP},
    {"tap", cli_tap,
     "  mqttflow tap [-c CONFIG | -i INSTANCE | -s SOCKET] [RULE | --topic FILTER]"
     " [--at ingress|rule|out]\n",
     "tap: prints each message passing one point of a running instance: ingress (as\n"
     "the router takes it in), rule (as it is handed to a rule) or out (as the relay\n"
     "publishes it, with the rule that made it). RULE: only that rule's messages\n"
     "(default point: rule); --topic: only topics matching the filter. Payloads show\n"
     "as text, or hex when not printable, cut at 1024 bytes. The pipeline never waits\n"
     "for a tap: one that cannot keep up loses copies and says how many (# dropped).\n"
     "One tap per point at a time; it ends with Ctrl-C or when the instance stops.\n"},
    {"version", cli_version, "  mqttflow version\n",
     "version: the same as --version: mqttflow's version, the callback API version and\n"
     "the versions of paho.mqtt.c (with where it was loaded from: mqttflow's private\n"
     "build or the system's), libyaml and liburing it runs with.\n"},
    {"help", cli_help, "", NULL},
};
static const size_t n_commands = sizeof(commands) / sizeof(commands[0]);

void cli_usage(FILE *f)
{
    fputs("usage:\n", f);
    for (size_t i = 0; i < n_commands; i++)
        fputs(commands[i].usage, f);
    fputs("  mqttflow help [COMMAND] | --help | --version\n", f);
}

static const cli_command *find_command(const char *name)
{
    for (size_t i = 0; i < n_commands; i++)
        if (!strcmp(commands[i].name, name))
            return &commands[i];
    return NULL;
}

/* What -h adds to the usage for one subcommand: the guarantees an operator relies on. */
static void help_of(const char *cmd, FILE *f)
{
    const cli_command *c = find_command(cmd);
    if (c && c->help)
        fprintf(f, "\n%s", c->help);
}

cfg *cli_load_config(const char *path, unsigned flags, int warnings)
{
    cfg *c = NULL;
    cfg_diag d = {0};
    int rc = cfg_load(path, flags, &c, &d);
    for (size_t i = 0; i < d.n_errors; i++)
        fprintf(stderr, "%s\n", d.errors[i]);
    if (rc < 0 && d.n_errors == 0)
        fprintf(stderr, "%s: %s\n", path, strerror(-rc));
    if (rc == 0 && warnings)
        for (size_t i = 0; i < d.n_warnings; i++)
            fprintf(stderr, "%s\n", d.warnings[i]);
    cfg_diag_fini(&d);
    if (rc < 0) {
        cfg_destroy(c);
        return NULL;
    }
    return c;
}

int cli_check(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        cli_usage(stdout);
        help_of("check", stdout);
        return MF_EXIT_OK;
    }
    if (argc != 2) {
        cli_usage(stderr);
        return MF_EXIT_CONFIG;
    }
    cfg *c = cli_load_config(argv[1], CFG_LOAD_CHECK_MODULES, 1);
    if (!c)
        return MF_EXIT_CONFIG;
    char err[1024];
    if (topo_check_shm(c, err, sizeof(err)) < 0) { /* what `run` would refuse */
        fprintf(stderr, "%s: %s\n", argv[1], err);
        cfg_destroy(c);
        return MF_EXIT_CONFIG;
    }
    cfg_print_summary(c, stdout);
    cfg_destroy(c);
    return MF_EXIT_OK;
}

void cli_setup_logging(const cfg *c, const char *process)
{
    log_init(process);
    log_set_default(c->logging.default_level);
    for (size_t i = 0; i < c->logging.n_levels; i++) {
        int lv = log_parse_level(c->logging.levels[i].value);
        if (lv >= 0)
            log_set_level(c->logging.levels[i].key, lv);
    }
}

/* Opens /dev/null on any of fds 0-2 that is closed (a daemonizer may close them): otherwise
 * the first pipe the supervisor makes could land there, and a stage would inherit a ready
 * pipe as its stdout or stderr. */
static void ensure_std_fds(void)
{
    for (int fd = 0; fd <= 2; fd++)
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF)
            (void)open("/dev/null", O_RDWR); /* the lowest free fd: this one */
}

int cli_run(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        cli_usage(stdout);
        help_of("run", stdout);
        return MF_EXIT_OK;
    }
    if (argc != 2) {
        cli_usage(stderr);
        return MF_EXIT_CONFIG;
    }
    ensure_std_fds();
    cfg *c = cli_load_config(argv[1], CFG_LOAD_CHECK_MODULES, 1);
    if (!c)
        return MF_EXIT_CONFIG;
    cli_setup_logging(c, "mqttflow");
    loop *l = NULL;
    int rc = loop_create(c, &l);
    if (rc < 0) {
        cfg_destroy(c);
        /* already running, a segment that is not ours to adopt (-EPERM: another user's we
         * cannot remove, or ours with a loose mode), or the segments do not fit /dev/shm
         * (-ENOSPC): none is fixed by a respawn */
        return rc == -EEXIST || rc == -EPERM || rc == -ENOSPC ? MF_EXIT_CONFIG : MF_EXIT_FAILED;
    }
    int code = loop_run(l);
    loop_destroy(l);
    cfg_destroy(c);
    return code;
}

/* ---- talking to a running supervisor ---- */

typedef struct target {
    char instance[64];
    char sock[PATH_MAX];
    int prom;
    const char *mode; /* status: " prom", " json", " rules" or "" */
    int watch;        /* status --watch */
    char **words;     /* positional words left over */
    int n_words;
} target;

/* Without -c/-i/-s: the one instance whose socket answers in the default folder
 * ($XDG_RUNTIME_DIR or /tmp), else "default". Several live ones: the user must choose. 0 or
 * an exit code. */
static int guess_instance(target *t)
{
    char dir[PATH_MAX], pattern[PATH_MAX + 32];
    glob_t g;
    int n_live = 0;

    snprintf(t->instance, sizeof(t->instance), "default");
    if (ctl_default_path("x", dir, sizeof(dir)) < 0)
        return 0;
    *strrchr(dir, '/') = '\0';
    snprintf(pattern, sizeof(pattern), "%s/mqttflow-*.sock", dir);
    if (glob(pattern, 0, NULL, &g) != 0)
        return 0;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        char *reply = NULL;
        /* a dead instance's socket file refuses the connection: not a candidate */
        if (ctl_request(g.gl_pathv[i], "status", 2000, &reply, NULL) < 0)
            continue;
        free(reply);
        const char *base = strrchr(g.gl_pathv[i], '/') + 1 + strlen("mqttflow-");
        size_t len = strlen(base) - strlen(".sock");
        if (++n_live == 1) {
            snprintf(t->instance, sizeof(t->instance), "%.*s", (int)len, base);
        } else {
            if (n_live == 2)
                fprintf(stderr, "several instances are running: %s", t->instance);
            fprintf(stderr, ", %.*s", (int)len, base);
        }
    }
    globfree(&g);
    if (n_live > 1) {
        fprintf(stderr, "; choose one with -i INSTANCE or -c CONFIG\n");
        return MF_EXIT_FAILED;
    }
    return 0;
}

/* Parses [-c CONFIG] [-i INSTANCE] [-s SOCKET] [--prom] [-h] and positionals. With
 * config_positional, a single positional is taken as CONFIG. 0, an exit code, or -1 when
 * the usage was asked for and printed. */
static int parse_target(int argc, char **argv, int config_positional, int allow_prom, target *t)
{
    const char *config = NULL, *instance = NULL, *sock = NULL;
    memset(t, 0, sizeof(*t));
    t->words = calloc((size_t)argc + 1, sizeof(char *));
    if (!t->words)
        return MF_EXIT_FAILED;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "-c") || !strcmp(a, "-i") || !strcmp(a, "-s")) && i + 1 < argc) {
            const char *v = argv[++i];
            if (a[1] == 'c')
                config = v;
            else if (a[1] == 'i')
                instance = v;
            else
                sock = v;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            cli_usage(stdout);
            help_of(argv[0], stdout);
            return -1; /* handled: the caller exits 0 */
        } else if (allow_prom && !strcmp(a, "--prom")) {
            t->prom = 1;
            t->mode = " prom";
        } else if (allow_prom && !strcmp(a, "--json")) {
            t->mode = " json";
        } else if (allow_prom && !strcmp(a, "--rules")) {
            t->mode = " rules";
        } else if (allow_prom && !strcmp(a, "--watch")) {
            t->watch = 1;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "mqttflow %s: unknown option %s\n", argv[0], a);
            cli_usage(stderr);
            return MF_EXIT_CONFIG;
        } else {
            t->words[t->n_words++] = argv[i];
        }
    }
    if (config_positional && t->n_words == 1 && !config) {
        config = t->words[0];
        t->n_words = 0;
    }
    if (config_positional && t->n_words > 0) {
        cli_usage(stderr);
        return MF_EXIT_CONFIG;
    }
    if (config) {
        cfg *c = cli_load_config(config, CFG_LOAD_CONTROL, 0);
        if (!c)
            return MF_EXIT_CONFIG;
        snprintf(t->instance, sizeof(t->instance), "%s", c->runtime.instance);
        if (!sock && c->runtime.control_socket)
            snprintf(t->sock, sizeof(t->sock), "%s", c->runtime.control_socket);
        cfg_destroy(c);
    } else {
        if (!instance && !sock) {
            int rc = guess_instance(t);
            if (rc)
                return rc;
        } else if (instance) {
            snprintf(t->instance, sizeof(t->instance), "%s", instance);
        } /* else only a socket: the instance's name is unknown here, and stays "" */
    }
    if (sock)
        snprintf(t->sock, sizeof(t->sock), "%s", sock);
    if (!t->sock[0] && ctl_default_path(t->instance, t->sock, sizeof(t->sock)) < 0) {
        fprintf(stderr, "mqttflow: instance name too long\n");
        return MF_EXIT_CONFIG;
    }
    return 0;
}

static void target_fini(target *t)
{
    free(t->words);
}

/* "instance NAME", or "the instance" when only its socket is known, for messages. */
static const char *who(const target *t, char *buf, size_t len)
{
    if (t->instance[0])
        snprintf(buf, len, "instance %s", t->instance);
    else
        snprintf(buf, len, "the instance");
    return buf;
}

static int not_running(const target *t, int rc)
{
    char w[96];
    if (rc == -ENOENT || rc == -ECONNREFUSED)
        fprintf(stderr, "%s is not running (no supervisor at %s)\n", who(t, w, sizeof(w)), t->sock);
    else
        fprintf(stderr, "%s: control socket %s: %s\n", who(t, w, sizeof(w)), t->sock,
                strerror(-rc));
    return MF_EXIT_FAILED;
}

/* Prints a reply: an "ERR " first line goes to stderr without the prefix and fails. */
static int print_reply(const char *reply)
{
    if (!strncmp(reply, CTL_ERR, strlen(CTL_ERR))) {
        fputs(reply + strlen(CTL_ERR), stderr);
        return MF_EXIT_FAILED;
    }
    fputs(reply, stdout);
    return MF_EXIT_OK;
}

static int request(int argc, char **argv, int config_positional, int allow_prom,
                   const char *line_fmt)
{
    target t;
    int code = parse_target(argc, argv, config_positional, allow_prom, &t);
    if (code) {
        target_fini(&t);
        return code < 0 ? MF_EXIT_OK : code;
    }
    if (t.watch) {
        code = t.mode ? (fputs("mqttflow status: --watch shows the table only\n", stderr),
                         MF_EXIT_CONFIG)
                      : watch_run(t.sock, STATUS_TIMEOUT_MS);
        target_fini(&t);
        return code;
    }
    char line[CTL_LINE_MAX], *reply = NULL;
    snprintf(line, sizeof(line), line_fmt, t.mode ? t.mode : "");
    int rc = ctl_request(t.sock, line, STATUS_TIMEOUT_MS, &reply, NULL);
    code = rc < 0 ? not_running(&t, rc) : print_reply(reply);
    free(reply);
    target_fini(&t);
    return code;
}

int cli_status(int argc, char **argv)
{
    return request(argc, argv, 1, 1, "status%s");
}

int cli_restart(int argc, char **argv)
{
    target t;
    int code = parse_target(argc, argv, 0, 0, &t);
    if (code) {
        target_fini(&t);
        return code < 0 ? MF_EXIT_OK : code;
    }
    if (t.n_words < 1 || t.n_words > 2) {
        cli_usage(stderr);
        target_fini(&t);
        return MF_EXIT_CONFIG;
    }
    char line[CTL_LINE_MAX], *reply = NULL;
    snprintf(line, sizeof(line), "restart %s%s%s", t.words[0], t.n_words == 2 ? " " : "",
             t.n_words == 2 ? t.words[1] : "");
    /* "workers" restarts them one by one: allow each its own stop and ready deadlines */
    int timeout = RESTART_TIMEOUT_MS * (1 + CFG_MAX_WORKERS * !strcmp(t.words[0], "workers"));
    int rc = ctl_request(t.sock, line, timeout, &reply, NULL);
    code = rc < 0 ? not_running(&t, rc) : print_reply(reply);
    free(reply);
    target_fini(&t);
    return code;
}

static void print_chunk(const char *data, size_t len)
{
    fwrite(data, 1, len, stdout);
    fflush(stdout);
}

/* Waits until process pid is gone (it is not our child: a pidfd tells when it exits). */
static int wait_gone(long pid)
{
    if (pid <= 0)
        return 0;
    int fd = pidfd_open((pid_t)pid, 0);
    if (fd < 0)
        return errno == ESRCH ? 0 : -errno;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int n = poll(&p, 1, GONE_TIMEOUT_MS);
    close(fd);
    return n == 1 ? 0 : -ETIMEDOUT;
}

int cli_stop(int argc, char **argv)
{
    target t;
    char w[96];
    int code = parse_target(argc, argv, 1, 0, &t);
    if (code) {
        target_fini(&t);
        return code < 0 ? MF_EXIT_OK : code;
    }
    char *reply = NULL;
    /* The supervisor answers "stopping ..." at once and "stopped" when everything is down;
     * the connection ends when it exits. */
    int rc = ctl_request(t.sock, "stop", STOP_TIMEOUT_MS, &reply, print_chunk);
    if (rc < 0) {
        code = not_running(&t, rc);
    } else if (!strncmp(reply, CTL_ERR, strlen(CTL_ERR))) {
        code = MF_EXIT_FAILED;
    } else {
        const char *p = strstr(reply, "supervisor pid ");
        long pid = p ? strtol(p + 15, NULL, 10) : 0;
        if (!strstr(reply, "stopped")) {
            fprintf(stderr, "%s: the supervisor went away without confirming the stop\n",
                    who(&t, w, sizeof(w)));
            code = MF_EXIT_FAILED;
        } else if (wait_gone(pid) < 0) {
            fprintf(stderr, "%s: supervisor pid %ld still exists\n", who(&t, w, sizeof(w)), pid);
            code = MF_EXIT_FAILED;
        } else {
            code = MF_EXIT_OK;
        }
    }
    free(reply);
    target_fini(&t);
    return code;
}

int cli_tap(int argc, char **argv)
{
    const char *at = NULL, *filter = NULL;
    char **rest = calloc((size_t)argc + 1, sizeof(char *));
    int n = 0;
    if (!rest)
        return MF_EXIT_FAILED;
    /* --at and --topic here; the instance options and RULE through parse_target */
    for (int i = 0; i < argc; i++) {
        if (i > 0 && (!strcmp(argv[i], "--at") || !strcmp(argv[i], "--topic")) && i + 1 < argc) {
            *(argv[i][2] == 'a' ? &at : &filter) = argv[i + 1];
            i++;
        } else {
            rest[n++] = argv[i];
        }
    }
    target t;
    int code = parse_target(n, rest, 0, 0, &t);
    if (code) {
        target_fini(&t);
        free(rest);
        return code < 0 ? MF_EXIT_OK : code;
    }
    const char *rule = t.n_words == 1 ? t.words[0] : NULL;
    int point = at ? tap_point_parse(at) : rule ? TAP_RULE : TAP_INGRESS;
    if (point < 0) {
        fprintf(stderr, "mqttflow tap: --at takes ingress, rule or out, not \"%s\"\n", at);
        code = MF_EXIT_CONFIG;
    } else if (t.n_words > 1) {
        cli_usage(stderr);
        code = MF_EXIT_CONFIG;
    } else if (rule && point == TAP_INGRESS) {
        fprintf(stderr, "mqttflow tap: a message has no rule at ingress: use --at rule or out\n");
        code = MF_EXIT_CONFIG;
    } else {
        code = tap_cli_run(t.sock, point, rule, filter);
    }
    target_fini(&t);
    free(rest);
    return code;
}

static int cli_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    version_print(stdout);
    return MF_EXIT_OK;
}

static const char exit_codes[] =
    "\nexit codes: 0 success; 1 failure (the instance is not running, a stage could not be\n"
    "started, a request failed; `mqttflow try`: a callback returned an error); 2 usage or\n"
    "configuration error (also: the instance is already running; never respawned by\n"
    "systemd's RestartPreventExitStatus=2); 127 a stage binary could not be executed.\n";

static int cli_help(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "--list")) { /* for scripts and the man page test */
        for (size_t i = 0; i < n_commands; i++)
            printf("%s\n", commands[i].name);
        return MF_EXIT_OK;
    }
    if (argc == 2 && !strcmp(argv[1], "help")) {
        cli_usage(stdout);
        return MF_EXIT_OK;
    }
    const cli_command *c = argc == 2 ? find_command(argv[1]) : NULL;
    if (argc > 2 || (argc == 2 && !c)) {
        if (argc == 2)
            fprintf(stderr, "mqttflow help: unknown command \"%s\"\n", argv[1]);
        cli_usage(stderr);
        return MF_EXIT_CONFIG;
    }
    if (!c) {
        cli_usage(stdout);
        fputs(exit_codes, stdout);
        fputs("\n`mqttflow help COMMAND` for one command; manual pages mqttflow(1) and "
              "mqttflow.yaml(5).\n",
              stdout);
        return MF_EXIT_OK;
    }
    fputs("usage:\n", stdout);
    fputs(c->usage, stdout);
    help_of(c->name, stdout);
    fputs(exit_codes, stdout);
    return MF_EXIT_OK;
}

int cli_main(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        cli_usage(stdout);
        return MF_EXIT_OK;
    }
    if (argc >= 2 && (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version"))) {
        version_print(stdout);
        return MF_EXIT_OK;
    }
    const cli_command *c = argc >= 2 ? find_command(argv[1]) : NULL;
    if (c)
        return c->fn(argc - 1, argv + 1);
    if (argc >= 2)
        fprintf(stderr, "mqttflow: unknown command \"%s\"\n", argv[1]);
    cli_usage(stderr);
    return MF_EXIT_CONFIG;
}
