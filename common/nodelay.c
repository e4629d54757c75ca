#include "nodelay.h"

#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>

int nodelay_each_peer_port(int port, int (*fn)(int fd, void *arg), void *arg)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int fd = atoi(e->d_name);
        if (fd < 3 || fd == dirfd(d))
            continue;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        if (getpeername(fd, (struct sockaddr *)&ss, &sl) != 0)
            continue;
        int p = -1;
        if (ss.ss_family == AF_INET)
            p = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            p = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        if (p != port)
            continue;
        if (fn(fd, arg) == 0)
            n++;
    }
    closedir(d);
    return n;
}

static int set_nodelay(int fd, void *arg)
{
    (void)arg;
    int one = 1;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int nodelay_set_peer_port(int port)
{
    return nodelay_each_peer_port(port, set_nodelay, NULL);
}

static int set_sndbuf(int fd, void *arg)
{
    int want = *(const int *)arg, got = 0;
    socklen_t gl = sizeof(got);
    if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &got, &gl) == 0 && got >= want)
        return 0;
    /* the kernel doubles the value given (bookkeeping overhead): ask for half */
    int half = want / 2 + 1;
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &half, sizeof(half)) != 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &half, sizeof(half));
    gl = sizeof(got);
    return getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &got, &gl) == 0 && got >= want ? 0 : -1;
}

int nodelay_set_sndbuf_peer_port(int port, int bytes)
{
    return nodelay_each_peer_port(port, set_sndbuf, &bytes);
}
