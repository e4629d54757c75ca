/* libFuzzer target for spool recovery (common/spool): whatever a crash, a full disk or another
 * process left in a spool folder, spool_open recovers what is valid (damaged files are
 * quarantined, never fatal) and the reader then yields only records that pass their CRC.
 *
 * Input: byte 0 chooses the form. Odd: the rest is written raw as one segment file and, after
 * a 0xff 0xfe marker, a checkpoint file. Even: the rest is cut into records written as valid
 * frames behind a valid segment header, then flipped at a few input-chosen offsets (so the
 * fuzzer reaches deep into recovery without first having to guess a CRC). The folder lives in
 * /dev/shm (no disk wear; io_uring works there), is emptied after each run and removed at exit;
 * the folders of earlier runs that died without their exit (a crash, a kill) are removed at
 * the next start, once their process is gone.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "spool_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static char dir[64];

static void empty_dir(const char *d);

static void remove_dir(void)
{
    empty_dir(dir);
    rmdir(dir);
}

/* /dev/shm/fuzz_spool.<pid> folders of this user whose process is gone */
static void remove_stale(void)
{
    DIR *dd = opendir("/dev/shm");
    if (!dd)
        return;
    struct dirent *e;
    while ((e = readdir(dd))) {
        if (strncmp(e->d_name, "fuzz_spool.", 11) != 0)
            continue;
        char *end;
        long pid = strtol(e->d_name + 11, &end, 10);
        char p[300];
        struct stat st;
        snprintf(p, sizeof(p), "/dev/shm/%s", e->d_name);
        if (*end || pid <= 0 || lstat(p, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid())
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue; /* alive (or not ours to ask): another run's folder */
        empty_dir(p);
        rmdir(p);
    }
    closedir(dd);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    remove_stale();
    snprintf(dir, sizeof(dir), "/dev/shm/fuzz_spool.%d", (int)getpid());
    mkdir(dir, 0700);
    atexit(remove_dir); /* libFuzzer ends a -runs / -max_total_time run with exit() */
    log_set_default(MF_LOG_ERROR + 1); /* quarantine warnings on every run are noise here */
    return 0;
}

static void put(const char *name, const void *p, size_t n)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    if (n && write(fd, p, n) < 0) {
        /* nothing to do: the run tests whatever is there */
    }
    close(fd);
}

static void empty_dir(const char *d)
{
    DIR *dd = opendir(d);
    if (!dd)
        return;
    struct dirent *e;
    while ((e = readdir(dd))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char p[256];
        snprintf(p, sizeof(p), "%s/%s", d, e->d_name);
        if (e->d_type == DT_DIR) {
            empty_dir(p);
            rmdir(p);
        } else {
            unlink(p);
        }
    }
    closedir(dd);
}

static void build_segment(const uint8_t *d, size_t n)
{
    size_t cap = sizeof(spool_seghdr) + n * 2 + 4096;
    uint8_t *seg = calloc(1, cap);
    if (!seg)
        return;
    spool_seghdr h = {.magic = SPOOL_SEG_MAGIC,
                      .version = SPOOL_VERSION,
                      .hdr_bytes = sizeof(spool_seghdr),
                      .first_seq = 1};
    h.crc = spool_crc32c(0, &h, offsetof(spool_seghdr, crc));
    memcpy(seg, &h, sizeof(h));
    size_t off = sizeof(h), i = 0;
    uint64_t seq = 1;
    /* records: a length byte, then that many bytes; the last 8 input bytes are flips */
    size_t body = n > 8 ? n - 8 : n;
    while (i < body && off + sizeof(spool_frame) + 256 < cap) {
        size_t len = d[i++] % 64 + 1;
        if (len > body - i)
            len = body - i;
        if (!len)
            break;
        spool_frame f = {.magic = SPOOL_REC_MAGIC, .len = (uint32_t)len, .seq = seq++};
        f.crc = spool_frame_crc(&f, d + i);
        memcpy(seg + off, &f, sizeof(f));
        memcpy(seg + off + sizeof(f), d + i, len);
        off += sizeof(f) + len;
        i += len;
    }
    for (size_t k = body; k + 1 < n; k += 2)
        seg[(d[k] * 7u + d[k + 1] * 131u) % off] ^= (uint8_t)(d[k] | 1);
    char name[32];
    spool_seg_name(name, sizeof(name), 1);
    put(name, seg, off);
    free(seg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    char name[32];
    spool_seg_name(name, sizeof(name), 1);
    if (data[0] & 1) {
        const uint8_t *rest = data + 1;
        size_t n = size - 1, segn = n;
        for (size_t i = 0; i + 1 < n; i++)
            if (rest[i] == 0xff && rest[i + 1] == 0xfe) {
                segn = i;
                put("checkpoint", rest + i + 2, n - i - 2);
                break;
            }
        put(name, rest, segn);
    } else {
        build_segment(data + 1, size - 1);
    }
    spool *s = NULL;
    spool_opts o = {.max_record = 4096, .name = "fuzz"};
    if (spool_open(dir, &o, &s) == 0) {
        const void *p;
        size_t len;
        uint64_t seq, last = 0;
        for (int i = 0; i < 10000 && spool_peek(s, &p, &len, &seq) == 0; i++) {
            if (len == 0 || len > 4096 || (i && seq <= last))
                __builtin_trap();
            volatile uint8_t sink = 0;
            for (size_t k = 0; k < len; k++)
                sink ^= ((const uint8_t *)p)[k];
            (void)sink;
            last = seq;
            if (spool_consume(s) != 0)
                __builtin_trap();
        }
        spool_close(s);
    }
    empty_dir(dir);
    return 0;
}
