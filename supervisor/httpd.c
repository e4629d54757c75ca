/* httpd: the supervisor's HTTP endpoint (see httpd.h). */
#include "httpd.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define COMP "supervisor"

enum page { PAGE_METRICS, PAGE_HEALTHZ, PAGE_READYZ, PAGE_N };

static const struct {
    const char *path, *type;
} pages_of[PAGE_N] = {
    [PAGE_METRICS] = {"/metrics", "text/plain; version=0.0.4; charset=utf-8"},
    [PAGE_HEALTHZ] = {"/healthz", "text/plain; charset=utf-8"},
    [PAGE_READYZ] = {"/readyz", "text/plain; charset=utf-8"},
};

struct httpd {
    struct MHD_Daemon *d;
    int efd;
    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t cv;  /* signalled when served grows, or at stop */
    uint64_t asked;     /* generation of the latest request */
    uint64_t served;    /* generation the current pages answer */
    int stopping;
    char *text[PAGE_N];
    int code[PAGE_N];
};

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char buf[256];
    vsnprintf(buf, sizeof(buf), fmt, ap);
    buf[strcspn(buf, "\n")] = '\0';
    log_warn(COMP, "metrics endpoint: %s", buf);
}

static enum MHD_Result respond(struct MHD_Connection *conn, int code, char *body, const char *type)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    (void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    (void)MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
        (void)MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)code, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result text_reply(struct MHD_Connection *conn, int code, const char *msg)
{
    char *body = strdup(msg);
    return body ? respond(conn, code, body, "text/plain; charset=utf-8") : MHD_NO;
}

/* Asks the loop for fresh pages and copies the one wanted; NULL when the loop did not answer
 * within HTTPD_WAIT_MS (or is stopping, or out of memory). */
static char *fetch(httpd *h, enum page pg, int *code)
{
    char *copy = NULL;
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += HTTPD_WAIT_MS / 1000;
    until.tv_nsec += (long)(HTTPD_WAIT_MS % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&h->mu);
    uint64_t mine = ++h->asked;
    pthread_mutex_unlock(&h->mu);
    uint64_t one = 1;
    (void)!write(h->efd, &one, sizeof(one)); /* EAGAIN only at a counter near 2^64: awake */
    pthread_mutex_lock(&h->mu);
    while (h->served < mine && !h->stopping)
        if (pthread_cond_timedwait(&h->cv, &h->mu, &until) == ETIMEDOUT)
            break;
    if (h->served >= mine && h->text[pg]) {
        copy = strdup(h->text[pg]);
        *code = h->code[pg];
    }
    pthread_mutex_unlock(&h->mu);
    return copy;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    static int started;
    httpd *h = cls;
    (void)version;
    (void)upload_data;
    if (!*req_cls) {
        *req_cls = &started; /* the headers are in; the next call may carry a body */
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0; /* a body is not wanted: read and dropped (MHD bounds it) */
        return MHD_YES;
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return text_reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    enum page pg = PAGE_N;
    for (int i = 0; i < PAGE_N; i++)
        if (!strcmp(url, pages_of[i].path))
            pg = (enum page)i;
    if (pg == PAGE_N)
        return text_reply(conn, MHD_HTTP_NOT_FOUND,
                          "not found: the pages are /metrics, /healthz and /readyz\n");
    int code = MHD_HTTP_SERVICE_UNAVAILABLE;
    char *body = fetch(h, pg, &code);
    if (!body)
        return text_reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                          "the supervisor did not answer in time\n");
    return respond(conn, code, body, pages_of[pg].type);
}

/* Binds and listens on spec; the socket is ours until MHD takes it. */
static int open_listener(const char *spec, int *fd_out, char *err, size_t errlen)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    if (!colon || (size_t)(colon - spec) >= sizeof(host)) {
        snprintf(err, errlen, "runtime.metrics.listen \"%s\" is not HOST:PORT", spec);
        return -EINVAL;
    }
    const char *h0 = spec;
    size_t hlen = (size_t)(colon - spec);
    if (hlen >= 2 && spec[0] == '[' && spec[hlen - 1] == ']') {
        h0++;
        hlen -= 2;
    }
    memcpy(host, h0, hlen);
    host[hlen] = '\0';
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host, colon + 1, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "runtime.metrics.listen \"%s\": %s", spec, gai_strerror(gai));
        return -EINVAL;
    }
    int rc = -EADDRNOTAVAIL;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            rc = -errno;
            continue;
        }
        int on = 1;
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
        if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 128) == 0) {
            *fd_out = fd;
            freeaddrinfo(res);
            return 0;
        }
        rc = -errno;
        close(fd);
    }
    freeaddrinfo(res);
    snprintf(err, errlen, "runtime.metrics.listen \"%s\": bind: %s", spec, strerror(-rc));
    return rc;
}

int httpd_create(const char *listen_spec, httpd **out, char *err, size_t errlen)
{
    int rc, lfd = -1;
    httpd *h = calloc(1, sizeof(*h));
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&h->mu, NULL);
    h->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (h->efd < 0) {
        rc = -errno;
        snprintf(err, errlen, "eventfd: %s", strerror(-rc));
        goto err;
    }
    if ((rc = open_listener(listen_spec, &lfd, err, errlen)) < 0)
        goto err;
    h->d =
        MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                         on_request, h, MHD_OPTION_LISTEN_SOCKET, lfd, MHD_OPTION_CONNECTION_LIMIT,
                         (unsigned)HTTPD_MAX_CONNS, MHD_OPTION_CONNECTION_TIMEOUT,
                         (unsigned)HTTPD_IDLE_TIMEOUT, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                         (size_t)16384, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
    if (!h->d) {
        rc = -EIO;
        close(lfd);
        snprintf(err, errlen, "runtime.metrics.listen \"%s\": MHD_start_daemon failed",
                 listen_spec);
        goto err;
    }
    *out = h;
    return 0;
err:
    httpd_destroy(h);
    return rc;
}

void httpd_destroy(httpd *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    h->stopping = 1; /* a request waiting for the loop gives up now */
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    if (h->d)
        MHD_stop_daemon(h->d); /* joins the thread, closes the listener and connections */
    if (h->efd >= 0)
        close(h->efd);
    for (int i = 0; i < PAGE_N; i++)
        free(h->text[i]);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

int httpd_fd(const httpd *h)
{
    return h->efd;
}

int httpd_take(httpd *h, uint64_t *gen)
{
    uint64_t n;
    (void)!read(h->efd, &n, sizeof(n));
    pthread_mutex_lock(&h->mu);
    *gen = h->asked;
    int waiting = h->asked > h->served;
    pthread_mutex_unlock(&h->mu);
    return waiting;
}

void httpd_answer(httpd *h, uint64_t gen, httpd_pages *p)
{
    char *texts[PAGE_N] = {p->metrics, p->healthz, p->readyz};
    int codes[PAGE_N] = {200, p->healthz_code, p->readyz_code};
    pthread_mutex_lock(&h->mu);
    for (int i = 0; i < PAGE_N; i++) {
        free(h->text[i]);
        h->text[i] = texts[i]; /* NULL (out of memory): that page is answered 503 */
        h->code[i] = codes[i];
    }
    if (gen > h->served)
        h->served = gen;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    memset(p, 0, sizeof(*p));
}
