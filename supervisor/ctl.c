/* ctl: control socket server and client (see ctl.h). */
#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "privdir.h"

int ctl_default_path(const char *instance, char *buf, size_t len)
{
    char dir[PATH_MAX];
    int rc = privdir_default_runtime(dir, sizeof(dir));
    if (rc)
        return rc;
    int n = snprintf(buf, len, "%s/mqttflow-%s.sock", dir, instance);
    return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

static int make_addr(const char *path, struct sockaddr_un *sa)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa->sun_path))
        return -ENAMETOOLONG;
    strcpy(sa->sun_path, path);
    return 0;
}

/* Whether a server answers at path right now. */
static int is_live(const struct sockaddr_un *sa)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    int live = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0;
    close(fd);
    return live;
}

int ctl_listen(const char *path, int *fd)
{
    struct sockaddr_un sa;
    int err = make_addr(path, &sa);
    if (err)
        return err;
    /* a missing folder (the default /run/mqttflow or the state folder) is created as a
     * private one; an existing one is the user's choice and left as it is */
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    struct stat dst;
    if (slash && slash != dir) {
        *slash = 0;
        char why[PATH_MAX + 256];
        int dfd;
        if (stat(dir, &dst) < 0 && errno == ENOENT) {
            if ((err = privdir_open(dir, &dfd, why, sizeof(why))) < 0) {
                log_error("ctl", "control socket folder: %s", why);
                return err;
            }
            close(dfd);
        }
    }
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s < 0)
        return -errno;

    /* umask makes the file 0600 at bind time; the chmod guards against a umask that some
     * libc or sandbox ignores for sockets. */
    mode_t old = umask(077);
    int rc = bind(s, (struct sockaddr *)&sa, sizeof(sa));
    if (rc < 0 && errno == EADDRINUSE) {
        if (is_live(&sa)) {
            umask(old);
            err = -EADDRINUSE;
            goto err_sock;
        }
        unlink(path); /* a dead supervisor's socket file */
        rc = bind(s, (struct sockaddr *)&sa, sizeof(sa));
    }
    umask(old);
    if (rc < 0) {
        err = -errno;
        goto err_sock;
    }
    if (chmod(path, 0600) < 0 || listen(s, 16) < 0) {
        err = -errno;
        goto err_file;
    }
    *fd = s;
    return 0;

err_file:
    unlink(path);
err_sock:
    close(s);
    return err;
}

void ctl_unlink(const char *path)
{
    if (path)
        (void)unlink(path);
}

int ctl_accept(int listen_fd, ctl_conn *c)
{
    int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
        return (errno == EWOULDBLOCK) ? -EAGAIN : -errno;
    c->fd = fd;
    c->len = 0;
    c->line[0] = '\0';
    return 0;
}

int ctl_read(ctl_conn *c)
{
    for (;;) {
        if (c->len >= sizeof(c->line) - 1)
            return -EPROTO;
        ssize_t n = read(c->fd, c->line + c->len, sizeof(c->line) - 1 - c->len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN ? 0 : -errno;
        }
        if (n == 0) {
            if (c->len == 0)
                return -ECONNRESET;
            c->line[c->len] = '\0';
            return 1;
        }
        c->len += (size_t)n;
        c->line[c->len] = '\0';
        char *nl = memchr(c->line, '\n', c->len);
        if (nl) {
            *nl = '\0';
            if (nl > c->line && nl[-1] == '\r')
                nl[-1] = '\0';
            return 1;
        }
    }
}

int ctl_write_all(int fd, const char *text, size_t len, int timeout_ms)
{
    uint64_t deadline = clock_mono_ns() + (uint64_t)timeout_ms * 1000000ull;
    while (len > 0) {
        ssize_t n = send(fd, text, len, MSG_NOSIGNAL);
        if (n > 0) {
            text += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN)
            return -errno;
        uint64_t now = clock_mono_ns();
        if (now >= deadline)
            return -ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        (void)poll(&p, 1, (int)((deadline - now) / 1000000ull) + 1);
    }
    return 0;
}

int ctl_request(const char *path, const char *line, int timeout_ms, char **reply,
                void (*on_chunk)(const char *data, size_t len))
{
    struct sockaddr_un sa;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int err = make_addr(path, &sa);
    if (err)
        return err;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        err = -errno;
        goto out;
    }
    size_t ll = strlen(line);
    if ((err = ctl_write_all(fd, line, ll, 5000)) || (err = ctl_write_all(fd, "\n", 1, 5000)))
        goto out;
    (void)shutdown(fd, SHUT_WR);

    uint64_t deadline = timeout_ms < 0 ? 0 : clock_mono_ns() + (uint64_t)timeout_ms * 1000000ull;
    for (;;) {
        int wait_ms = -1;
        if (timeout_ms >= 0) {
            uint64_t now = clock_mono_ns();
            if (now >= deadline) {
                err = -ETIMEDOUT;
                goto out;
            }
            wait_ms = (int)((deadline - now) / 1000000ull) + 1;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int pr = poll(&p, 1, wait_ms);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0) {
            err = -errno;
            goto out;
        }
        if (pr == 0)
            continue; /* the deadline check above ends it */
        if (cap - len < 4096) {
            size_t ncap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                err = -ENOMEM;
                goto out;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err = -errno;
            goto out;
        }
        if (n == 0)
            break;
        if (on_chunk)
            on_chunk(buf + len, (size_t)n);
        len += (size_t)n;
    }
    if (!buf && !(buf = malloc(1))) {
        err = -ENOMEM;
        goto out;
    }
    buf[len] = '\0';
    *reply = buf;
    buf = NULL;
    err = 0;
out:
    free(buf);
    close(fd);
    return err;
}
