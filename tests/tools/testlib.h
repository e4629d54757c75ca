/* testlib: what the MQTT test tools (mfpub, mfsub) and the C tests share: the test payload
 * format, its checksum, the clock, TCP_NODELAY on paho's socket, and the fixture library.
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
 *
 * Below the payload part: the one fixture library of the C tests (ports, processes, brokers,
 * waiting); stage_fixture.h gives its functions the short names the harnesses use.
 */
#ifndef MF_TESTLIB_H
#define MF_TESTLIB_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nodelay.h"

/* One row of a cmocka table whose tests share the file's setup() and teardown(): the table is
 * then the list of test names it is. Use it only after <cmocka.h>. */
#define TEST_ST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

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

/* paho.mqtt.c never sets TCP_NODELAY and offers no hook (BASELINES pitfall 5): set it on every
 * TCP socket of this process connected to remote port `port`. Returns how many were set.
 * The walk is common/nodelay.c's, the one the ingress and the relay use. */
static inline int testlib_nodelay_peer_port(int port)
{
    return nodelay_set_peer_port(port);
}

/* ---- the fixture library: ports, processes, brokers, waiting ----
 *
 * What every C harness (ingress_fixture.h, relay_fixture.h, run_fixture.h, test_paho_ack.c)
 * does the same way: a free port of 127.0.0.1, a process spawned with its output in a log
 * file (and MQTTFLOW_READY_FD when it is a stage), waits with a deadline that poll a condition
 * (never a fixed sleep standing in for an event), and a private mosquitto. No cmocka here: the
 * callers assert, so a failure names the test's own line. */

/* $BUILD, default "build": where the binaries are. */
static inline const char *testlib_build_dir(void)
{
    const char *b = getenv("BUILD");
    return b && *b ? b : "build";
}

/* The pause between two polls of a condition, not a synchronisation. */
static inline void testlib_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* A port of 127.0.0.1 that nobody listens on right now, or -1. */
static inline int testlib_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &l) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

/* 1 when something accepts connections on 127.0.0.1:port. */
static inline int testlib_port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* Forks and execs argv[0] with stdout and stderr appended to log_path (NULL: inherited) and,
 * with ready_fd >= 0, MQTTFLOW_READY_FD set to it (common/stage.h). The pid, or -1. */
static inline pid_t testlib_spawn(char *const argv[], int ready_fd, const char *log_path)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (log_path) {
            int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
                close(fd);
            }
        }
        if (ready_fd >= 0) {
            char v[16];
            snprintf(v, sizeof(v), "%d", ready_fd);
            setenv("MQTTFLOW_READY_FD", v, 1);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* Spawns a stage (testlib_spawn) and waits up to timeout_ms for "ready\n" on its
 * notification pipe. 0 and *pid, or -1 (*pid is still set when the process was started:
 * the caller's teardown reaps it). */
static inline int testlib_spawn_ready(char *const argv[], const char *log_path, int timeout_ms,
                                      pid_t *pid)
{
    int p[2];
    if (pipe(p) < 0)
        return -1;
    *pid = testlib_spawn(argv, p[1], log_path);
    close(p[1]);
    struct pollfd pfd = {.fd = p[0], .events = POLLIN};
    char buf[16] = {0};
    int ok = poll(&pfd, 1, timeout_ms) == 1 && read(p[0], buf, sizeof(buf) - 1) > 0 &&
             strcmp(buf, "ready\n") == 0;
    close(p[0]);
    return ok ? 0 : -1;
}

/* waitpid with a deadline: the wait status (as waitpid's), or -1 on timeout or error. */
static inline int testlib_wait_status(pid_t pid, int timeout_ms)
{
    uint64_t end = testlib_now_ns() + (uint64_t)timeout_ms * 1000000ull;
    int status;
    do {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        if (r < 0)
            return -1;
        testlib_sleep_ms(10);
    } while (testlib_now_ns() < end);
    return -1;
}

/* SIGKILL and reap *pid (if > 0), then *pid = 0. */
static inline void testlib_kill_wait(pid_t *pid)
{
    if (*pid > 0) {
        kill(*pid, SIGKILL);
        waitpid(*pid, NULL, 0);
        *pid = 0;
    }
}

/* The whole file at path, malloc'ed and NUL-terminated ("" when it is missing or empty);
 * NULL only on ENOMEM. */
static inline char *testlib_slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t cap = 0;
    if (f && getdelim(&buf, &cap, '\0', f) < 0) {
        free(buf);
        buf = NULL;
    }
    if (f)
        fclose(f);
    return buf ? buf : strdup("");
}

/* 1 when the file at path contains text (a missing file does not). */
static inline int testlib_file_has(const char *path, const char *text)
{
    char *s = testlib_slurp(path);
    int found = s && strstr(s, text) != NULL;
    free(s);
    return found;
}

/* Polls up to timeout_ms for a file at path to exist (a tool's ready file). 0, or -1. */
static inline int testlib_wait_file(const char *path, int timeout_ms)
{
    uint64_t end = testlib_now_ns() + (uint64_t)timeout_ms * 1000000ull;
    while (access(path, F_OK) != 0) {
        if (testlib_now_ns() >= end)
            return -1;
        testlib_sleep_ms(10);
    }
    return 0;
}

/* Polls up to timeout_ms for the file at path to contain text. 0, or -1 on timeout. */
static inline int testlib_wait_file_has(const char *path, const char *text, int timeout_ms)
{
    uint64_t end = testlib_now_ns() + (uint64_t)timeout_ms * 1000000ull;
    while (!testlib_file_has(path, text)) {
        if (testlib_now_ns() >= end)
            return -1;
        testlib_sleep_ms(20);
    }
    return 0;
}

/* Removes a test's folder (rm -rf), or keeps it and says so when MF_TEST_KEEP is set (to
 * read its configs and logs after a failure). Accepts "". */
static inline void testlib_remove_dir(const char *dir)
{
    if (!dir[0])
        return;
    if (getenv("MF_TEST_KEEP")) {
        fprintf(stderr, "kept %s\n", dir);
        return;
    }
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

#define TESTLIB_MOSQUITTO "/usr/sbin/mosquitto"

/* Starts a private mosquitto listening on 127.0.0.1:port from dir/NAME.conf (its output in
 * dir/NAME.log): anonymous, no queue limit, TCP_NODELAY, persistence in persist_dir (NULL:
 * none), then the lines of extra (NULL: none). Waits up to 10 s for the listener. 0 and *pid,
 * or -1 (*pid = 0 when it died on the way up, e.g. a bad extra line). */
static inline int testlib_broker_start(const char *dir, const char *name, int port,
                                       const char *persist_dir, const char *extra, pid_t *pid)
{
    char conf[PATH_MAX], log[PATH_MAX];
    snprintf(conf, sizeof(conf), "%s/%s.conf", dir, name);
    snprintf(log, sizeof(log), "%s/%s.log", dir, name);
    FILE *c = fopen(conf, "w");
    if (!c)
        return -1;
    fprintf(c,
            "listener %d 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n"
            "set_tcp_nodelay true\n",
            port);
    if (persist_dir)
        fprintf(c, "persistence true\npersistence_location %s/\n", persist_dir);
    else
        fprintf(c, "persistence false\n");
    /* as root mosquitto would become user "mosquitto", who cannot use our 0700 folders */
    fprintf(c, "%s%s", geteuid() == 0 ? "user root\n" : "", extra ? extra : "");
    fclose(c);
    char *argv[] = {TESTLIB_MOSQUITTO, "-c", conf, NULL};
    *pid = testlib_spawn(argv, -1, log);
    if (*pid < 0) {
        *pid = 0;
        return -1;
    }
    uint64_t end = testlib_now_ns() + 10000000000ull;
    while (testlib_now_ns() < end) {
        if (testlib_port_open(port))
            return 0;
        if (waitpid(*pid, NULL, WNOHANG) == *pid) {
            *pid = 0;
            return -1;
        }
        testlib_sleep_ms(20);
    }
    return -1;
}

/* The fields of /proc/<pid>/stat from the state on (field 3: after the ")" that ends the
 * command name, which may itself hold spaces), read into buf; NULL when there is no such
 * process. */
static inline const char *testlib_proc_stat(pid_t pid, char *buf, size_t len)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    return p && p[1] == ' ' ? p + 2 : NULL;
}

/* The start time of pid (/proc/<pid>/stat field 22, clock ticks since boot) in *out: 0, or -1
 * when there is no such process. */
static inline int testlib_proc_start_time(pid_t pid, uint64_t *out)
{
    char buf[1024];
    const char *q = testlib_proc_stat(pid, buf, sizeof(buf));
    for (int field = 3; q && field < 22; field++)
        if ((q = strchr(q, ' ')) != NULL)
            q++;
    if (!q)
        return -1;
    *out = strtoull(q, NULL, 10);
    return 0;
}

#endif
