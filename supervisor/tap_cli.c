/* tap_cli: `mqttflow tap` (see tap_cli.h). */
#include "tap_cli.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "exitcode.h"
#include "router/topic.h"
#include "tap.h"

#define HEADER_TIMEOUT_MS 10000
#define HEADER_MAX        (4u << 20) /* names of up to CFG_MAX rules and clients */

static volatile sig_atomic_t stop_flag;

static void on_stop(int sig)
{
    (void)sig;
    stop_flag = 1;
}

/* Index -> name tables from the supervisor's answer. */
typedef struct names {
    char **client, **rule;
    size_t n_client, n_rule;
} names;

static void names_fini(names *n)
{
    for (size_t i = 0; i < n->n_client; i++)
        free(n->client[i]);
    for (size_t i = 0; i < n->n_rule; i++)
        free(n->rule[i]);
    free(n->client);
    free(n->rule);
}

static const char *name_of(char **tab, size_t n, size_t i)
{
    return i < n && tab[i] ? tab[i] : "?";
}

/* Connects and sends the request, without shutting our side down (see tap_cli.h). */
static int connect_send(const char *sock, const char *line, int *fd_out)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(sock) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, sock, strlen(sock) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        send(fd, line, strlen(line), MSG_NOSIGNAL) != (ssize_t)strlen(line)) {
        int err = -errno;
        close(fd);
        return err;
    }
    *fd_out = fd;
    return 0;
}

/* Reads the answer up to its "END" line (or the close after an "ERR"). */
static int read_header(int fd, char **text)
{
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    for (;;) {
        buf[len] = '\0';
        int is_err = !strncmp(buf, CTL_ERR, strlen(CTL_ERR));
        if ((is_err && strchr(buf, '\n')) || (len >= 4 && !strcmp(buf + len - 4, "END\n")))
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, HEADER_TIMEOUT_MS) <= 0) {
            free(buf);
            return -ETIMEDOUT;
        }
        if (len + 1 >= cap) {
            char *nb = cap < HEADER_MAX ? realloc(buf, cap * 2) : NULL;
            if (!nb) {
                free(buf);
                return -E2BIG;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n <= 0) {
            buf[len] = '\0';
            if (len > 0)
                break;
            free(buf);
            return n == 0 ? -ECONNRESET : -errno;
        }
        len += (size_t)n;
    }
    *text = buf;
    return 0;
}

/* "OK SEG", "client I NAME"..., "rule I NAME"..., "END". */
static int parse_header(char *text, char *seg, size_t seglen, names *nm)
{
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *rest;
        if (!strncmp(line, "OK ", 3)) {
            snprintf(seg, seglen, "%s", line + 3);
        } else if (!strncmp(line, "client ", 7) || !strncmp(line, "rule ", 5)) {
            int is_rule = line[0] == 'r';
            size_t idx = strtoul(line + (is_rule ? 5 : 7), &rest, 10);
            if (*rest != ' ' || idx > 65535)
                return -EPROTO;
            char ***tab = is_rule ? &nm->rule : &nm->client;
            size_t *n = is_rule ? &nm->n_rule : &nm->n_client;
            if (idx != *n)
                return -EPROTO; /* the supervisor lists them in order */
            char **nt = realloc(*tab, (*n + 1) * sizeof(char *));
            if (!nt)
                return -ENOMEM;
            *tab = nt;
            if (!(nt[*n] = strdup(rest + 1)))
                return -ENOMEM;
            (*n)++;
        }
    }
    return seg[0] ? 0 : -EPROTO;
}

#define HEX_SHOWN 64 /* bytes of a binary payload shown: a line stays readable */

/* Payload as quoted text when it is printable (UTF-8 allowed), else as hex (the first
 * HEX_SHOWN bytes). Returns the bytes shown. */
static size_t print_payload(FILE *f, const unsigned char *p, size_t n)
{
    int text = 1;
    for (size_t i = 0; i < n && text; i++)
        if ((p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f)
            text = 0;
    if (!text) {
        n = n < HEX_SHOWN ? n : HEX_SHOWN;
        fputs("hex=", f);
        for (size_t i = 0; i < n; i++)
            fprintf(f, "%02x", p[i]);
        return n;
    }
    fputs("payload=\"", f);
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '"' || p[i] == '\\')
            fputc('\\', f);
        fputc(p[i], f);
    }
    fputc('"', f);
    return n;
}

static void print_msg(FILE *f, int point, const tap_msg *m, const names *nm)
{
    time_t sec = (time_t)(m->at_ns / 1000000000ull);
    struct tm tm;
    char when[32];
    gmtime_r(&sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    const rec_hdr *h = &m->v.h;
    fprintf(f, "%s.%06uZ %s", when, (unsigned)(m->at_ns % 1000000000ull / 1000),
            tap_point_name(point));
    if (point != TAP_INGRESS)
        fprintf(f, " rule=%s", name_of(nm->rule, nm->n_rule, h->rule));
    /* ingress, rule: the source client; out: the client it is published on */
    fprintf(f, " client=%s qos=%u%s topic=\"", name_of(nm->client, nm->n_client, h->client),
            (unsigned)h->qos, h->retain ? " retain" : "");
    for (size_t i = 0; i < h->topic_len; i++) {
        unsigned char c = (unsigned char)m->v.topic[i];
        if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\x%02x", c);
        else
            fputc(c, f);
    }
    fputs("\" ", f);
    size_t shown = print_payload(f, m->v.payload, h->payload_len);
    if (m->payload_len > shown)
        fprintf(f, " (%u bytes, first %zu shown)", m->payload_len, shown);
    else
        fprintf(f, " (%u bytes)", m->payload_len);
    fputc('\n', f);
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "mqttflow tap: %s: %s\n", what, strerror(-rc));
    return MF_EXIT_FAILED;
}

int tap_cli_run(const char *sock, int point, const char *rule, const char *filter)
{
    topic_trie *trie = NULL;
    names nm = {0};
    tap *t = NULL;
    char *text = NULL, line[CTL_LINE_MAX], seg[256] = "";
    int fd = -1, code = MF_EXIT_FAILED, rc;
    uint64_t shown = 0, dropped_seen = 0;

    if (filter && (!topic_filter_is_valid(filter) || topic_create(&trie) < 0 ||
                   topic_add(trie, filter, 0) < 0)) {
        fprintf(stderr, "mqttflow tap: \"%s\" is not a valid topic filter\n", filter);
        code = MF_EXIT_CONFIG;
        goto out;
    }
    snprintf(line, sizeof(line), "tap %s%s%s\n", tap_point_name(point), rule ? " " : "",
             rule ? rule : "");
    if ((rc = connect_send(sock, line, &fd)) < 0) {
        if (rc == -ENOENT || rc == -ECONNREFUSED)
            fprintf(stderr, "mqttflow tap: no instance answers at %s\n", sock);
        else
            fail(sock, rc);
        goto out;
    }
    if ((rc = read_header(fd, &text)) < 0) {
        fail("the supervisor's answer", rc);
        goto out;
    }
    if (!strncmp(text, CTL_ERR, strlen(CTL_ERR))) {
        fprintf(stderr, "mqttflow tap: %s", text + strlen(CTL_ERR));
        goto out;
    }
    if ((rc = parse_header(text, seg, sizeof(seg), &nm)) < 0 || (rc = tap_attach(seg, &t)) < 0) {
        fail(seg[0] ? seg : "the supervisor's answer", rc);
        goto out;
    }

    struct sigaction sa = {.sa_handler = on_stop};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    fprintf(stderr, "mqttflow tap: attached at %s%s%s%s%s (q: Ctrl-C)\n", tap_point_name(point),
            rule ? ", rule " : "", rule ? rule : "", filter ? ", topics " : "",
            filter ? filter : "");
    code = MF_EXIT_OK;
    while (!stop_flag) {
        tap_msg m;
        size_t n = 0;
        while ((rc = tap_take(t, &m)) == 1) {
            uint32_t v;
            if (!trie || topic_match(trie, m.v.topic, m.v.h.topic_len, &v, 1) > 0) {
                print_msg(stdout, point, &m, &nm);
                shown++;
            }
            tap_next(t);
            if (++n % 256 == 0 && stop_flag)
                break;
        }
        if (rc < 0) {
            fprintf(stderr, "mqttflow tap: the tap holds garbage: stopping\n");
            code = MF_EXIT_FAILED;
            break;
        }
        uint64_t d = tap_dropped(t);
        if (d != dropped_seen) {
            printf("# dropped %llu message(s): this tap could not keep up (%llu in all)\n",
                   (unsigned long long)(d - dropped_seen), (unsigned long long)d);
            dropped_seen = d;
        }
        if (fflush(stdout) != 0 || ferror(stdout))
            break; /* stdout closed (| head): done */
        if (n)
            continue;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, TAP_CLI_POLL_MS) > 0) {
            char b[64];
            if (read(fd, b, sizeof(b)) <= 0) {
                fprintf(stderr, "mqttflow tap: the instance stopped\n");
                break;
            }
        }
    }
    fprintf(stderr, "mqttflow tap: %llu message(s) shown, %llu dropped\n",
            (unsigned long long)shown, (unsigned long long)tap_dropped(t));
out:
    tap_detach(t);
    if (fd >= 0)
        close(fd);
    free(text);
    names_fini(&nm);
    topic_destroy(trie);
    return code;
}
