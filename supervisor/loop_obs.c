/* loop_obs: what the supervisor shows of the instance (see loop_int.h): the status texts of
 * the control socket and the pages of the HTTP endpoint, made here from one snapshot of the
 * child table and the stats segment, so `mqttflow status --prom` and /metrics cannot differ.
 * The CPU times (/proc/PID/stat) and the spool's size (a walk of runtime.spool_dir) are
 * sampled with the rates, once per SAMPLE_NS, not per request: a scrape costs no syscalls
 * but the reply's.
 */
#include "loop_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atom.h"
#include "clock.h"
#include "log.h"
#include "names.h"
#include "shm.h"
#include "status.h"
#include "tap.h"

int loop_obs_mode(const char *request)
{
    static const char *const modes[] = {
        [OBS_TABLE] = "status",
        [OBS_PROM] = "status prom",
        [OBS_JSON] = "status json",
        [OBS_RULES] = "status rules",
    };
    for (int m = 0; m < (int)(sizeof(modes) / sizeof(modes[0])); m++)
        if (!strcmp(request, modes[m]))
            return m;
    return -1;
}

/* utime + stime of pid in seconds, -1 when it cannot be read (gone). */
static double cpu_seconds(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* the name (field 2) may hold spaces and parentheses: count fields after the last ')' */
    char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    if (!p ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

#define SPOOL_WALK_DEPTH 4 /* spool_dir/<client>/... is two levels; a deeper tree is not ours */

/* Bytes of the regular files below the directory fd (closed here), symlinks not followed. */
static uint64_t dir_bytes(int fd, int depth)
{
    uint64_t sum = 0;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return 0;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
            fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (S_ISREG(st.st_mode)) {
            sum += (uint64_t)st.st_size;
        } else if (S_ISDIR(st.st_mode) && depth > 0) {
            int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
            if (sub >= 0)
                sum += dir_bytes(sub, depth - 1);
        }
    }
    closedir(d);
    return sum;
}

void loop_obs_sample(loop *l, double dt)
{
    for (size_t i = 0; i < l->n_procs; i++) {
        proc *p = &l->procs[i];
        double now = p->ch.pid > 0 ? cpu_seconds((long)p->ch.pid) : -1;
        if (now < 0) {
            p->cpu_pct = 0;
            continue;
        }
        /* a new process starts from 0: no percentage for the turn it appeared in */
        p->cpu_pct = dt > 0 && now >= p->cpu_s ? (now - p->cpu_s) / dt * 100.0 : 0;
        p->cpu_s = now;
    }
    int fd = open(l->c->runtime.spool_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    l->spool_bytes = fd >= 0 ? dir_bytes(fd, SPOOL_WALK_DEPTH) : 0; /* none yet: 0 */
}

static void fill_rows(loop *l, status_row *rows)
{
    rows[0] = (status_row){.kind = loop_kind_name(STATS_SUPERVISOR),
                           .id = "",
                           .pid = (long)getpid(),
                           .cpu = l->c->runtime.cpu_supervisor,
                           .state = "running",
                           .fill_pct = -1,
                           .connected = -1,
                           .cpu_s = cpu_seconds((long)getpid())};
    for (size_t i = 0; i < l->n_procs; i++) {
        proc *p = &l->procs[i];
        stats_slot *s = stats_slot_at(l->st, p->slot);
        status_row *r = &rows[i + 1];
        *r = (status_row){
            .kind = loop_kind_name(p->kind),
            .id = p->id,
            .pid = (long)p->ch.pid,
            .cpu = p->cpu,
            .state = child_state_name(p->ch.state),
            .restarts = p->ch.restarts,
            .fill_pct = topo_fill_pct(l->topo, p->kind, p->idx),
            .in = stats_get(&s->in),
            .out = stats_get(&s->out),
            .errors = stats_get(&s->errors),
            .dropped = stats_get(&s->dropped),
            .dead = stats_get(&s->dead),
            /* a bitmask by target: the number of links up */
            .connected = p->kind == STATS_INGRESS || p->kind == STATS_RELAY
                             ? __builtin_popcountll(stats_get(&s->connected))
                             : -1,
            .in_rate = p->in_rate,
            .out_rate = p->out_rate,
            .reason = p->ch.reason,
            .cpu_s = p->ch.pid > 0 ? p->cpu_s : 0,
            .cpu_pct = p->ch.pid > 0 ? p->cpu_pct : 0,
            .stage = p->kind,
        };
        for (size_t x = 0; x < STATS_EXTRA_MAX; x++) /* status.c reads them by the kind's table */
            r->extra[x] = stats_get(&s->extra[x]);
    }
}

/* Sums the workers' rows of every counted rule. */
static void fill_rules(loop *l, status_rule *rules, size_t n)
{
    size_t nw = stats_rule_workers(l->st);
    for (size_t i = 0; i < n; i++) {
        status_rule *r = &rules[i];
        memset(r, 0, sizeof(*r));
        r->name = l->c->rules[i].name;
        r->matched = stats_get(stats_rule_matched(l->st, i));
        stats_rule_router *rr = stats_rule_router_at(l->st, i);
        r->match_limit = stats_get(&rr->match_limit);
        r->json_invalid = stats_get(&rr->json_invalid);
        for (size_t w = 0; w < nw; w++) {
            stats_rule_row *row = stats_rule_row_at(l->st, w, i);
            r->processed += stats_get(&row->processed);
            r->errors += stats_get(&row->errors);
            r->dead += stats_get(&row->dead);
            r->sum_ns += stats_get(&row->sum_ns);
            for (unsigned b = 0; b < STATS_HIST_N; b++)
                r->hist[b] += stats_get(&row->hist[b]);
        }
    }
}

/* The relay connects every client (bit i of its mask = client i). */
static void fill_clients(loop *l, status_client *cl)
{
    uint64_t mask = 0;
    for (size_t i = 0; i < l->n_procs; i++)
        if (l->procs[i].kind == STATS_RELAY)
            mask = stats_get(&stats_slot_at(l->st, l->procs[i].slot)->connected);
    for (size_t i = 0; i < l->c->n_clients; i++)
        cl[i] = (status_client){.id = l->c->clients[i].client_id,
                                .connected = i < 64 && (mask >> i) & 1};
}

/* One snapshot and what is rendered from it. */
typedef struct snap {
    status_head h;
    status_row *rows;
    size_t n;
    status_rule *rules;
    status_client *clients;
} snap;

static int snap_take(loop *l, snap *s)
{
    size_t n_rules = stats_rule_count(l->st);
    memset(s, 0, sizeof(*s));
    s->n = l->n_procs + 1;
    s->rows = calloc(s->n, sizeof(*s->rows));
    s->rules = calloc(n_rules + 1, sizeof(*s->rules));
    s->clients = calloc(l->c->n_clients + 1, sizeof(*s->clients));
    if (!s->rows || !s->rules || !s->clients)
        return -ENOMEM;
    fill_rows(l, s->rows);
    fill_rules(l, s->rules, n_rules);
    fill_clients(l, s->clients);
    s->h = (status_head){.instance = l->c->runtime.instance,
                         .pid = (long)getpid(),
                         .uptime_s = (double)(clock_mono_ns() - l->born_ns) / 1e9,
                         .phase = loop_phase_name(l->phase),
                         .interval_s = l->sample_s,
                         .spool_bytes = l->spool_bytes,
                         .rules = s->rules,
                         .n_rules = n_rules,
                         .clients = s->clients,
                         .n_clients = l->c->n_clients};
    return 0;
}

static void snap_free(snap *s)
{
    free(s->rows);
    free(s->rules);
    free(s->clients);
}

/* Renders mode (or a probe: 1 = healthz, 2 = readyz, with its verdict in *ok). */
static char *render(const snap *s, int mode, int probe, int *ok)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return NULL;
    if (probe == 1)
        *ok = status_healthy(f, &s->h, s->rows, s->n);
    else if (probe == 2)
        *ok = status_ready(f, &s->h, s->rows, s->n);
    else if (mode == OBS_PROM)
        status_format_prom(f, &s->h, s->rows, s->n);
    else if (mode == OBS_JSON)
        status_format_json(f, &s->h, s->rows, s->n);
    else if (mode == OBS_RULES)
        status_format_rules(f, &s->h);
    else
        status_format(f, &s->h, s->rows, s->n);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

char *loop_obs_text(loop *l, int mode)
{
    snap s;
    char *text = NULL;
    if (snap_take(l, &s) == 0)
        text = render(&s, mode, 0, NULL);
    snap_free(&s);
    return text;
}

int loop_obs_start(loop *l)
{
    const char *spec = l->c->runtime.metrics_listen;
    char err[320];
    if (!spec)
        return 0;
    int rc = httpd_create(spec, &l->http, err, sizeof(err));
    if (rc < 0) {
        log_error(COMP, "metrics endpoint: %s", err);
        return rc;
    }
    if ((rc = loop_watch(l, httpd_fd(l->http), TAG(SRC_HTTP, 0))) < 0)
        return rc;
    log_info(COMP, "metrics endpoint on http://%s (/metrics, /healthz, /readyz)", spec);
    return 0;
}

void loop_obs_http(loop *l)
{
    uint64_t gen;
    if (!l->http || !httpd_take(l->http, &gen))
        return;
    httpd_pages pg = {0};
    snap s;
    if (snap_take(l, &s) == 0) {
        int healthy = 0, ready = 0;
        pg.metrics = render(&s, OBS_PROM, 0, NULL);
        pg.healthz = render(&s, 0, 1, &healthy);
        pg.readyz = render(&s, 0, 2, &ready);
        pg.healthz_code = healthy ? 200 : 503;
        pg.readyz_code = ready ? 200 : 503;
    }
    snap_free(&s);
    httpd_answer(l->http, gen, &pg);
}

/* ---- taps (tap.h) ---- */

static void tap_end(loop *l, int pt)
{
    /* T0 (release): the stages stop copying at their next batch; pairs with T1 */
    atom_store_release(stats_tap_gen(l->st, pt), 0);
    tap_destroy(l->taps[pt]);
    l->taps[pt] = NULL;
    size_t j = l->tap_conn[pt];
    loop_close_watched(l, &l->conns[j].c.fd);
    l->conns[j].use = CONN_FREE;
    log_info(COMP, "tap at %s detached", tap_point_name(pt));
}

static void tap_refuse(loop *l, size_t j, const char *msg)
{
    (void)ctl_write_all(l->conns[j].c.fd, msg, strlen(msg), REPLY_TIMEOUT);
    loop_close_watched(l, &l->conns[j].c.fd);
    l->conns[j].use = CONN_FREE;
}

/* The reply: the segment's name, then the index -> name tables the reader prints with. */
static char *tap_reply(loop *l, const char *seg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return NULL;
    fprintf(f, "OK %s\n", seg);
    for (size_t i = 0; i < l->c->n_clients; i++)
        fprintf(f, "client %zu %s\n", i, l->c->clients[i].client_id);
    for (size_t i = 0; i < l->c->n_rules; i++)
        fprintf(f, "rule %zu %s\n", i, l->c->rules[i].name);
    fputs("END\n", f);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

void loop_obs_tap(loop *l, size_t j, char *args)
{
    char *save = NULL, err[CTL_LINE_MAX + 96], seg[SHM_NAME_MAX];
    const char *where = strtok_r(args, " \t", &save);
    const char *rule_name = strtok_r(NULL, " \t", &save);
    int pt = where ? tap_point_parse(where) : -1;
    uint32_t rule = TAP_RULE_ANY;
    if (pt < 0) {
        tap_refuse(l, j, CTL_ERR "tap: where? (tap ingress|rule|out [RULE])\n");
        return;
    }
    if (rule_name) {
        size_t i = 0;
        while (i < l->c->n_rules && strcmp(l->c->rules[i].name, rule_name) != 0)
            i++;
        if (i == l->c->n_rules) {
            snprintf(err, sizeof(err), CTL_ERR "no rule \"%s\" in instance %s\n", rule_name,
                     l->c->runtime.instance);
            tap_refuse(l, j, err);
            return;
        }
        rule = (uint32_t)i;
    }
    if (l->taps[pt]) {
        snprintf(err, sizeof(err), CTL_ERR "a tap is already attached at %s (one per point)\n",
                 where);
        tap_refuse(l, j, err);
        return;
    }
    int rc = names_tap(seg, sizeof(seg), l->c->runtime.instance, where);
    if (rc == 0)
        rc = tap_create(seg, pt, rule, &l->taps[pt]);
    char *reply = rc == 0 ? tap_reply(l, seg) : NULL;
    if (!reply) {
        snprintf(err, sizeof(err), CTL_ERR "tap at %s: %s\n", where,
                 strerror(rc < 0 ? -rc : ENOMEM));
        tap_destroy(l->taps[pt]);
        l->taps[pt] = NULL;
        tap_refuse(l, j, err);
        return;
    }
    l->tap_conn[pt] = j;
    l->conns[j].use = CONN_TAP;
    /* T0 (release): the segment is complete before a stage can see its generation */
    atom_store_release(stats_tap_gen(l->st, pt), ++l->tap_gen);
    rc = ctl_write_all(l->conns[j].c.fd, reply, strlen(reply), REPLY_TIMEOUT);
    free(reply);
    /* watched again: the reader's close (EOF) is how the tap ends */
    if (rc < 0 || loop_watch(l, l->conns[j].c.fd, TAG(SRC_CONN, j)) < 0) {
        tap_end(l, pt);
        return;
    }
    log_info(COMP, "tap attached at %s%s%s", where, rule_name ? ", rule " : "",
             rule_name ? rule_name : "");
}

void loop_obs_tap_event(loop *l, size_t j)
{
    char buf[256];
    ssize_t n = read(l->conns[j].c.fd, buf, sizeof(buf));
    if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
        return; /* a reader says nothing after its request: ignored */
    for (int pt = 0; pt < TAP_N; pt++)
        if (l->taps[pt] && l->tap_conn[pt] == j) {
            tap_end(l, pt);
            return;
        }
    loop_close_watched(l, &l->conns[j].c.fd);
    l->conns[j].use = CONN_FREE;
}

void loop_obs_stop(loop *l)
{
    for (int pt = 0; pt < TAP_N; pt++)
        if (l->taps[pt])
            tap_end(l, pt);
    httpd_destroy(l->http); /* its thread reads nothing of ours */
    l->http = NULL;
}
