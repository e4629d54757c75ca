/* testlib: what the MQTT test tools (mfpub, mfsub) and the tests that read their payloads
 * share: the test payload format, its checksum, the clock and TCP_NODELAY on paho's socket.
 *
 * Binary payload (native byte order: publisher and subscriber run on one host), at least
 * TESTLIB_MIN_PAYLOAD bytes:
 *
 *   offset 0   u32 source id (mfpub -i)
 *   offset 4   u32 FNV-1a 32 of bytes [0,4) and [8,len): header and filler, not itself
 *   offset 8   u64 sequence number, 0..N-1 per source (not per topic)
 *   offset 16  u64 send time, CLOCK_MONOTONIC ns (comparable only on the same host)
 *   offset 24  filler derived from (source, seq, offset), so a swapped or truncated payload
 *              fails the checksum
 *
 * JSON payload (mfpub -j): {"src":S,"seq":N,"t":MONO_NS,"v":VALUE}; mfsub recognises both.
 * Header-only; nothing here allocates or fails except where a return value says so.
 */
#ifndef MF_TESTLIB_H
#define MF_TESTLIB_H

#include <dirent.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TESTLIB_HDR_LEN     24
#define TESTLIB_MIN_PAYLOAD 32

static inline uint64_t testlib_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void testlib_sleep_until_ns(uint64_t t)
{
    struct timespec ts = {(time_t)(t / 1000000000ull), (long)(t % 1000000000ull)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0)
        ;
}

static inline uint32_t testlib_fnv1a(uint32_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

static inline uint32_t testlib_checksum(const unsigned char *p, size_t len)
{
    uint32_t h = testlib_fnv1a(2166136261u, p, 4);
    return testlib_fnv1a(h, p + 8, len - 8);
}

/* Fills buf (len >= TESTLIB_MIN_PAYLOAD) with a complete binary test payload. */
static inline void testlib_fill(unsigned char *buf, size_t len, uint32_t src, uint64_t seq,
                                uint64_t t_ns)
{
    memcpy(buf, &src, 4);
    memcpy(buf + 8, &seq, 8);
    memcpy(buf + 16, &t_ns, 8);
    for (size_t i = TESTLIB_HDR_LEN; i < len; i++)
        buf[i] = (unsigned char)(seq * 131u + i * 7u + src);
    uint32_t sum = testlib_checksum(buf, len);
    memcpy(buf + 4, &sum, 4);
}

/* Parsed header of a test payload. */
typedef struct testlib_hdr {
    uint32_t src;
    uint64_t seq;
    uint64_t t_ns;
    int json;  /* 1 when it was the JSON form (no checksum) */
    int sumok; /* binary: checksum matched */
} testlib_hdr;

static inline int testlib_json_u64(const char *s, size_t len, const char *key, uint64_t *out)
{
    char pat[32];
    int n = snprintf(pat, sizeof pat, "\"%s\":", key);
    if (n <= 0 || (size_t)n >= sizeof pat)
        return -1;
    const char *p = memmem(s, len, pat, (size_t)n);
    if (!p)
        return -1;
    p += n;
    uint64_t v = 0;
    int digits = 0;
    while (p < s + len && *p >= '0' && *p <= '9') {
        v = v * 10 + (uint64_t)(*p++ - '0');
        digits++;
    }
    if (!digits)
        return -1;
    *out = v;
    return 0;
}

/* Parses a payload: 0 and *h, or -1 when it is neither form (too short, not our JSON). */
static inline int testlib_parse(const void *payload, size_t len, testlib_hdr *h)
{
    const unsigned char *p = payload;
    memset(h, 0, sizeof *h);
    if (len > 0 && p[0] == '{') {
        uint64_t src = 0;
        if (testlib_json_u64(payload, len, "src", &src) ||
            testlib_json_u64(payload, len, "seq", &h->seq))
            return -1;
        h->src = (uint32_t)src;
        if (testlib_json_u64(payload, len, "t", &h->t_ns))
            h->t_ns = 0;
        h->json = 1;
        h->sumok = 1;
        return 0;
    }
    if (len < TESTLIB_MIN_PAYLOAD)
        return -1;
    uint32_t sum;
    memcpy(&h->src, p, 4);
    memcpy(&sum, p + 4, 4);
    memcpy(&h->seq, p + 8, 8);
    memcpy(&h->t_ns, p + 16, 8);
    h->sumok = sum == testlib_checksum(p, len);
    return 0;
}

/* A TCP port on 127.0.0.1 free a moment ago (bound and released), or -1. */
static inline int testlib_free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(a);
    int port = -1;
    if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(s, (struct sockaddr *)&a, &l) == 0)
        port = ntohs(a.sin_port);
    if (s >= 0)
        close(s);
    return port;
}

/* paho.mqtt.c never sets TCP_NODELAY and offers no hook (BASELINES pitfall 5): set it on every
 * TCP socket of this process connected to remote port `port`. Returns how many were set. */
static inline int testlib_nodelay_peer_port(int port)
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
        socklen_t sl = sizeof ss;
        if (getpeername(fd, (struct sockaddr *)&ss, &sl) != 0)
            continue;
        int p = -1;
        if (ss.ss_family == AF_INET)
            p = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            p = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        if (p != port)
            continue;
        int one = 1;
        if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0)
            n++;
    }
    closedir(d);
    return n;
}

#endif
