/* privdir: see privdir.h. */
#include "privdir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail(int rc, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(int rc, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (errlen)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return rc;
}

static bool trusted_owner(uid_t uid)
{
    return uid == 0 || uid == geteuid();
}

/* Judges one opened level (st) at shown; leaf: the directory asked for. */
static int judge(const struct stat *st, const char *shown, bool leaf, char *err, size_t errlen)
{
    if (!S_ISDIR(st->st_mode))
        return fail(-ENOTDIR, err, errlen, "%s is not a directory", shown);
    if (leaf && st->st_uid != geteuid())
        return fail(-EPERM, err, errlen,
                    "%s is owned by uid %u, not by this user (uid %u): chown it or choose "
                    "another directory",
                    shown, (unsigned)st->st_uid, (unsigned)geteuid());
    if (!trusted_owner(st->st_uid))
        return fail(-EPERM, err, errlen,
                    "%s is owned by uid %u, neither root nor this user (uid %u), who could "
                    "replace what is below it: choose another directory",
                    shown, (unsigned)st->st_uid, (unsigned)geteuid());
    if (leaf && (st->st_mode & (S_IWGRP | S_IWOTH)))
        return fail(-EPERM, err, errlen,
                    "%s is writable by others (mode %04o): chmod 700 %s, or choose another "
                    "directory",
                    shown, (unsigned)(st->st_mode & 07777), shown);
    bool others_write = (st->st_mode & S_IWOTH) || ((st->st_mode & S_IWGRP) && st->st_gid != 0);
    if (!leaf && others_write && !(st->st_mode & S_ISVTX))
        return fail(-EPERM, err, errlen,
                    "%s is writable by others (mode %04o) who could replace what is below it: "
                    "chmod go-w %s, or choose another directory",
                    shown, (unsigned)(st->st_mode & 07777), shown);
    return 0;
}

/* "/a/./b/../c//" -> "/a/c": "." and ".." resolved by the text, as a user reading a config
 * path means them (a relative spool_dir "../spool" resolved against the YAML's folder); the
 * walk then checks every level that remains. */
static void lexical(const char *in, char *out)
{
    size_t n = 0;
    out[n++] = '/';
    for (const char *p = in; *p;) {
        while (*p == '/')
            p++;
        size_t len = strcspn(p, "/");
        if (len == 0)
            break;
        if (len == 1 && p[0] == '.') {
            /* nothing */
        } else if (len == 2 && p[0] == '.' && p[1] == '.') {
            while (n > 1 && out[n - 1] != '/')
                n--;
            if (n > 1)
                n--; /* the slash before the dropped level */
        } else {
            if (out[n - 1] != '/')
                out[n++] = '/';
            memcpy(out + n, p, len);
            n += len;
        }
        p += len;
    }
    out[n] = 0;
}

static int walk(const char *given, bool create, int *dirfd, char *err, size_t errlen)
{
    if (errlen)
        err[0] = 0;
    if (!given || given[0] != '/')
        return fail(-EINVAL, err, errlen, "%s is not an absolute path", given ? given : "(null)");
    if (strlen(given) >= PATH_MAX)
        return fail(-ENAMETOOLONG, err, errlen, "%.64s...: path too long", given);
    char path[PATH_MAX];
    lexical(given, path);
    char shown[PATH_MAX] = "/";
    int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return fail(-errno, err, errlen, "open /: %s", strerror(errno));
    struct stat st;
    int rc = 0;
    const char *p = path;
    for (;;) {
        while (*p == '/')
            p++;
        size_t n = strcspn(p, "/");
        const char *rest = p + n;
        while (*rest == '/')
            rest++;
        bool leaf = *rest == 0;
        if (n == 0) { /* the path is "/" itself */
            if (fstat(fd, &st) < 0)
                rc = fail(-errno, err, errlen, "stat /: %s", strerror(errno));
            else
                rc = judge(&st, "/", true, err, errlen);
            break;
        }
        char comp[NAME_MAX + 1];
        if (n > NAME_MAX) {
            rc =
                fail(-ENAMETOOLONG, err, errlen, "%s: a name longer than %d bytes", path, NAME_MAX);
            break;
        }
        memcpy(comp, p, n);
        comp[n] = 0;
        size_t sl = strlen(shown);
        snprintf(shown + sl, sizeof(shown) - sl, "%s%s", sl > 1 ? "/" : "", comp);
        if (fstatat(fd, comp, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno != ENOENT) {
                rc = fail(-errno, err, errlen, "stat %s: %s", shown, strerror(errno));
                break;
            }
            if (!create)
                break; /* the rest would be created 0700 by privdir_open */
            if (mkdirat(fd, comp, 0700) < 0 && errno != EEXIST) {
                rc = fail(-errno, err, errlen, "mkdir %s: %s", shown, strerror(errno));
                break;
            }
            if (fstatat(fd, comp, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                rc = fail(-errno, err, errlen, "stat %s: %s", shown, strerror(errno));
                break;
            }
        }
        int oflags = O_PATH | O_DIRECTORY | O_CLOEXEC;
        if (S_ISLNK(st.st_mode)) {
            if (!trusted_owner(st.st_uid)) {
                rc = fail(-EPERM, err, errlen,
                          "%s is a symbolic link owned by uid %u, neither root nor this user "
                          "(uid %u): remove it, or choose another directory",
                          shown, (unsigned)st.st_uid, (unsigned)geteuid());
                break;
            }
        } else {
            oflags |= O_NOFOLLOW;
        }
        int nfd = openat(fd, comp, oflags);
        if (nfd < 0) {
            rc = errno == ENOTDIR
                     ? fail(-ENOTDIR, err, errlen, "%s is not a directory", shown)
                     : fail(-errno, err, errlen, "open %s: %s", shown, strerror(errno));
            break;
        }
        close(fd);
        fd = nfd;
        if (fstat(fd, &st) < 0) {
            rc = fail(-errno, err, errlen, "stat %s: %s", shown, strerror(errno));
            break;
        }
        if ((rc = judge(&st, shown, leaf, err, errlen)) < 0)
            break;
        if (leaf)
            break;
        p = rest;
    }
    if (rc == 0 && dirfd) {
        int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
            rc = fail(-errno, err, errlen, "open %s: %s", path, strerror(errno));
        else
            *dirfd = dfd;
    }
    close(fd);
    return rc;
}

int privdir_open(const char *path, int *dirfd, char *err, size_t errlen)
{
    *dirfd = -1;
    return walk(path, true, dirfd, err, errlen);
}

int privdir_check(const char *path, char *err, size_t errlen)
{
    return walk(path, false, NULL, err, errlen);
}

int privdir_open_file(int dirfd, const char *path, const char *name, int flags, int *fd, char *err,
                      size_t errlen)
{
    *fd = openat(dirfd, name, flags | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (*fd < 0) {
        int e = errno;
        return fail(-e, err, errlen, "open %s/%s: %s%s", path, name, strerror(e),
                    e == ELOOP ? " (a symbolic link: remove it)" : "");
    }
    struct stat st;
    int rc = 0;
    if (fstat(*fd, &st) < 0)
        rc = fail(-errno, err, errlen, "stat %s/%s: %s", path, name, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = fail(-EINVAL, err, errlen, "%s/%s is not a regular file: remove it", path, name);
    else if (st.st_uid != geteuid())
        rc = fail(-EPERM, err, errlen, "%s/%s is owned by uid %u, not this user (uid %u)", path,
                  name, (unsigned)st.st_uid, (unsigned)geteuid());
    if (rc < 0) {
        close(*fd);
        *fd = -1;
    }
    return rc;
}

/* root, or the service user the unit runs as */
static bool is_service(void)
{
    if (geteuid() == 0)
        return true;
    struct passwd pw, *res = NULL;
    char buf[1024];
    return getpwnam_r("mqttflow", &pw, buf, sizeof(buf), &res) == 0 && res &&
           res->pw_uid == geteuid();
}

static int user_state_base(char *buf, size_t len)
{
    const char *x = getenv("XDG_STATE_HOME");
    int n;
    if (x && x[0] == '/') {
        n = snprintf(buf, len, "%s/mqttflow", x);
    } else {
        const char *home = getenv("HOME");
        struct passwd pw, *res = NULL;
        char pbuf[1024];
        if ((!home || home[0] != '/') &&
            getpwuid_r(geteuid(), &pw, pbuf, sizeof(pbuf), &res) == 0 && res)
            home = res->pw_dir;
        if (!home || home[0] != '/')
            return -ENOENT;
        n = snprintf(buf, len, "%s/.local/state/mqttflow", home);
    }
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int privdir_default_state(const char *instance, char *buf, size_t len)
{
    int n;
    if (is_service()) {
        n = snprintf(buf, len, "/var/lib/mqttflow/%s", instance);
    } else {
        char base[PATH_MAX];
        int rc = user_state_base(base, sizeof(base));
        if (rc)
            return rc;
        n = snprintf(buf, len, "%s/%s", base, instance);
    }
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int privdir_default_runtime(char *buf, size_t len)
{
    const char *run = getenv("XDG_RUNTIME_DIR");
    int n;
    if (run && run[0] == '/') {
        n = snprintf(buf, len, "%s", run);
    } else if (is_service()) {
        n = snprintf(buf, len, "/run/mqttflow");
    } else {
        char user[64];
        struct stat st;
        snprintf(user, sizeof(user), "/run/user/%u", (unsigned)geteuid());
        if (stat(user, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid())
            n = snprintf(buf, len, "%s", user);
        else
            return user_state_base(buf, len);
    }
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}
