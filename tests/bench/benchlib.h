/* benchlib: what the C benchmarks of the pipeline's stages share (header-only): dying with a
 * message, appending message records to a ring as the ingress does. Processes are spawned with the
 * fixture library (tests/tools/testlib.h). */
#ifndef MF_BENCHLIB_H
#define MF_BENCHLIB_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rec.h"
#include "ring.h"

/* "<program>: what: strerror(err)" on stderr, exit 1: a benchmark that cannot set up has no
 * figure to give. */
static inline _Noreturn void bench_die(const char *what, int err)
{
    fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what, strerror(err));
    exit(1);
}

/* The build folder this benchmark binary sits in ($BUILD, three levels above
 * $BUILD/tests/bench/NAME) into root; a fresh folder from the mkdtemp template tmpl into dir
 * (dir_len >= sizeof the template) and its config.yaml path into cfgpath. Dies on failure. */
static inline void bench_paths(char *root, size_t root_len, const char *tmpl, char *dir,
                               size_t dir_len, char *cfgpath, size_t cfg_len)
{
    ssize_t len = readlink("/proc/self/exe", root, root_len - 1);
    if (len <= 0)
        bench_die("readlink", errno);
    root[len] = '\0';
    for (int i = 0; i < 3; i++) {
        char *slash = strrchr(root, '/');
        if (!slash)
            bench_die(root, ENOENT);
        *slash = '\0';
    }
    snprintf(dir, dir_len, "%s", tmpl);
    if (!mkdtemp(dir))
        bench_die("mkdtemp", errno);
    snprintf(cfgpath, cfg_len, "%s/config.yaml", dir);
}

/* Appends one REC_MSG record (source client 0, sequence seq) to in, waiting for space as a
 * producer does. */
static inline void bench_put_msg(ring *in, uint64_t seq, const char *topic, size_t topic_len,
                                 const void *payload, size_t len)
{
    rec_hdr h = {.seq = seq, .client = 0, .rule = REC_NONE, .step = REC_NONE, .kind = REC_MSG};
    size_t sz = rec_size(topic_len, len);
    void *buf;
    while (ring_reserve(in, sz, &buf) == -EAGAIN)
        ring_wait_space(in, sz, 100);
    rec_encode(buf, sz, &h, topic, topic_len, payload, len);
    ring_commit(in, sz);
}

#endif
