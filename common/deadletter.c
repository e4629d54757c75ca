/* deadletter: the dead-letter store; see deadletter.h for the contract. */
#include "deadletter.h"

#include "log.h"
#include "privdir.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct deadletter {
    int fd;
    uint64_t count;
    char path[PATH_MAX];
};

int deadletter_open(const char *dir, deadletter **out)
{
    *out = NULL;
    if (!dir || !*dir)
        return -EINVAL;
    /* a directory of our own and a file that is not a planted link: a dead letter carries
     * the payload (privdir.h) */
    char err[PATH_MAX + 256];
    int dfd = -1;
    int rc = privdir_open(dir, &dfd, err, sizeof(err));
    if (rc) {
        log_error("deadletter", "dead-letter store: %s", err);
        return rc;
    }
    deadletter *d = calloc(1, sizeof(*d));
    if (!d) {
        close(dfd);
        return -ENOMEM;
    }
    if (snprintf(d->path, sizeof(d->path), "%s/%s", dir, DEADLETTER_FILE) >= (int)sizeof(d->path)) {
        close(dfd);
        free(d);
        return -ENAMETOOLONG;
    }
    rc =
        privdir_open_file(dfd, dir, DEADLETTER_FILE, O_WRONLY | O_APPEND, &d->fd, err, sizeof(err));
    close(dfd);
    if (rc) {
        log_error("deadletter", "dead-letter store: %s", err);
        free(d);
        return rc;
    }
    *out = d;
    return 0;
}

void deadletter_close(deadletter *d)
{
    if (!d)
        return;
    close(d->fd);
    free(d);
}

static char *base64(const unsigned char *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1);
    if (!out)
        return NULL;
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = tab[v >> 6 & 63];
        out[o++] = tab[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return out;
}

static void iso8601(uint64_t ns, char *buf, size_t cap)
{
    time_t s = (time_t)(ns / 1000000000ull);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    if (n > 0 && n < cap)
        snprintf(buf + n, cap - n, ".%03uZ", (unsigned)(ns % 1000000000ull / 1000000ull) % 1000u);
}

/* json_string of s, or json_null for NULL (and for text that is not UTF-8, which jansson
 * refuses: configuration names are validated, so that would be our bug, not a reason to
 * lose the line) */
static json_t *str_or_null(const char *s)
{
    json_t *j = s ? json_string(s) : NULL;
    return j ? j : json_null();
}

char *deadletter_json(const deadletter_entry *e)
{
    char when[40];
    uint64_t ns = e->time_ns;
    if (ns == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    }
    iso8601(ns, when, sizeof(when));
    json_t *o = json_object();
    if (!o)
        return NULL;
    char *line = NULL;
    /* json_object_set_new takes the value even on failure; a NULL value makes it fail, which
     * the dump below then lacks: checked once at the end instead of per field */
    int bad = 0;
    bad |= json_object_set_new(o, "time", json_string(when));
    bad |= json_object_set_new(o, "instance", str_or_null(e->instance));
    bad |= json_object_set_new(o, "rule", str_or_null(e->rule));
    bad |= json_object_set_new(o, "callback", str_or_null(e->callback));
    bad |= json_object_set_new(o, "reason", str_or_null(e->reason));
    bad |= json_object_set_new(o, "source_client", str_or_null(e->source_client));
    /* a topic that is not UTF-8 cannot have come from a broker; null rather than no line */
    bad |= json_object_set_new(o, "topic", str_or_null(e->topic));
    bad |= json_object_set_new(o, "qos", json_integer(e->qos));
    json_t *text = json_stringn(e->payload ? e->payload : "", e->payload ? e->payload_len : 0);
    if (text) {
        bad |= json_object_set_new(o, "payload", text);
    } else {
        char *b = base64(e->payload, e->payload_len);
        if (!b)
            goto out;
        bad |= json_object_set_new(o, "payload_b64", json_string(b));
        free(b);
    }
    bad |= json_object_set_new(o, "payload_len", json_integer((json_int_t)e->payload_len));
    if (!bad)
        line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
out:
    json_decref(o);
    return line;
}

int deadletter_append(deadletter *d, const char *line)
{
    size_t len = strlen(line);
    char *buf = malloc(len + 1);
    if (!buf)
        return -ENOMEM;
    memcpy(buf, line, len);
    buf[len++] = '\n';
    off_t start = lseek(d->fd, 0, SEEK_END);
    size_t done = 0;
    int rc = 0;
    while (done < len) {
        ssize_t n = write(d->fd, buf + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : -EIO;
            break;
        }
        done += (size_t)n;
    }
    free(buf);
    if (rc) {
        /* no half line from us: the next line starts where this one was to begin */
        if (done > 0 && start >= 0 && ftruncate(d->fd, start) != 0)
            rc = -EIO;
        return rc;
    }
    d->count++;
    return 0;
}

int deadletter_sync(deadletter *d)
{
    while (fdatasync(d->fd) != 0) {
        if (errno != EINTR)
            return -errno;
    }
    return 0;
}

uint64_t deadletter_count(const deadletter *d)
{
    return d->count;
}

const char *deadletter_path(const deadletter *d)
{
    return d->path;
}

int deadletter_store_one(const char *dir, const deadletter_entry *e)
{
    deadletter *d = NULL;
    int rc = deadletter_open(dir, &d);
    if (rc < 0)
        return rc;
    char *line = deadletter_json(e);
    rc = line ? deadletter_append(d, line) : -ENOMEM;
    free(line);
    if (rc == 0)
        rc = deadletter_sync(d);
    deadletter_close(d);
    return rc;
}
