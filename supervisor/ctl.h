/* ctl: the supervisor's control socket, both ends (DESIGN §6).
 *
 * An AF_UNIX SOCK_STREAM socket at runtime.control_socket, mode 0600 (created under umask 077
 * and chmod'ed, so there is no moment at which another user could connect). Protocol: the
 * client sends one request line ("status", "status prom", "restart worker 2", "stop") and
 * shuts down its write side; the server answers with human text and closes. A reply whose
 * first line starts with "ERR " reports a failure; anything else is a success. For "stop" the
 * server keeps the connection open until the instance is down, so the client's read ends
 * exactly when the supervisor is gone. "status json" and "status rules" are other views of
 * "status". "tap POINT [RULE]" (tap_cli.h) is the one request whose client keeps its side
 * open: the answer names a tap segment, and the connection's close ends the tap.
 *
 * Server functions are called from the supervisor's one thread; the client functions from
 * the CLI. Nothing here keeps global state.
 */
#ifndef MF_SUPERVISOR_CTL_H
#define MF_SUPERVISOR_CTL_H

#include <stddef.h>

#define CTL_LINE_MAX 256
#define CTL_ERR      "ERR "

/* The socket path an instance uses when runtime.control_socket is not set:
 * <privdir_default_runtime()>/mqttflow-<instance>.sock (never /tmp, where another user's
 * socket of that name would block `run`; the same rule config/cfg_runtime.c applies).
 * 0 or -errno. */
int ctl_default_path(const char *instance, char *buf, size_t len);

/* Server: binds and listens at path (non-blocking, close-on-exec) into *fd. A socket file
 * left by a dead supervisor is replaced; one that a live server answers on gives -EADDRINUSE
 * and is left alone. -ENAMETOOLONG when path does not fit sockaddr_un. 0 or -errno; on
 * failure nothing is left open or created. */
int ctl_listen(const char *path, int *fd);
/* Removes the socket file (clean stop). Accepts NULL. */
void ctl_unlink(const char *path);

/* One accepted connection's request buffer (caller-owned storage). */
typedef struct ctl_conn {
    int fd;
    size_t len;
    char line[CTL_LINE_MAX];
} ctl_conn;

/* Accepts one pending connection (non-blocking, close-on-exec): 0 and c->fd, -EAGAIN when
 * none is pending, or -errno. */
int ctl_accept(int listen_fd, ctl_conn *c);
/* Reads what is available. 1 when a complete request is in c->line (NUL-terminated, without
 * the newline; the peer's EOF also completes it), 0 when more is needed, -EPROTO when the
 * line exceeds CTL_LINE_MAX, -ECONNRESET on EOF before any byte, or -errno. */
int ctl_read(ctl_conn *c);
/* Writes all of text to fd, waiting at most timeout_ms in total for a slow reader. 0 or
 * -errno (-ETIMEDOUT). The fd stays open. */
int ctl_write_all(int fd, const char *text, size_t len, int timeout_ms);

/* Client: sends line to the server at path and reads the whole reply into *reply (malloc'ed,
 * NUL-terminated; the caller frees), waiting at most timeout_ms (-1: no limit) for it.
 * -ENOENT / -ECONNREFUSED when no server listens there, -ETIMEDOUT, or -errno. When
 * on_chunk is set, each piece of the reply is also passed to it as it arrives (stop shows
 * progress that way). */
int ctl_request(const char *path, const char *line, int timeout_ms, char **reply,
                void (*on_chunk)(const char *data, size_t len));

#endif
