/* shm: lifecycle of one named POSIX shared-memory segment (/dev/shm/<name>).
 *
 * Used by the supervisor (create, unlink) and every stage (attach, detach). Every segment
 * starts with a shm_hdr: magic, layout version, kind, total size and the owner (the pid and
 * start time of the supervisor that created it). Creation is O_EXCL and mode 0600; a segment
 * that already exists is reclaimed only when its owner is dead (stale instance); a live
 * owner's segment is never touched (-EEXIST). Attach checks magic, version, kind and size and
 * maps the whole segment shared.
 *
 * Names are "mqttflow.<instance>.<what>" (names.h builds them); at most SHM_NAME_MAX bytes.
 * A shm handle is used by one thread at a time. Failures leave nothing mapped or created.
 */
#ifndef MF_SHM_H
#define MF_SHM_H

#include <stddef.h>
#include <stdint.h>

#define SHM_NAME_MAX 200
#define SHM_MAGIC    0x6d71666c6f77ull /* "mqflow" */

/* Layout of the first 64 bytes of every segment (a *_layout.h exception to opacity). */
typedef struct shm_hdr {
    uint64_t magic;       /* SHM_MAGIC, written last at creation (release) */
    uint32_t version;     /* layout version of the kind */
    uint32_t kind;        /* SHM_KIND_* */
    uint64_t size;        /* total bytes of the segment */
    uint64_t owner_pid;   /* supervisor that created it */
    uint64_t owner_start; /* its start time (/proc/<pid>/stat field 22), against pid reuse */
    uint64_t reserved[3];
} shm_hdr;
_Static_assert(sizeof(shm_hdr) == 64, "shm_hdr is one cache line");

enum { SHM_KIND_RING = 1, SHM_KIND_STATS = 2, SHM_KIND_STATE = 3, SHM_KIND_TAP = 4 };

typedef struct shm shm;

/* Creates and maps a zeroed segment of size bytes (rounded up to the page size) with the
 * header filled in and this process as owner. If it exists and its owner is dead, it is
 * unlinked and created anew (logged); if its owner lives: -EEXIST. Other errors: -errno. */
int shm_create(const char *name, uint32_t kind, uint32_t version, size_t size, shm **out);
/* Creates the segment, or takes over an existing one whose owner is dead when its kind,
 * version and size match (its contents are kept: rings with queued records, a worker's open
 * windows); this process becomes the owner. Returns 1 when an existing segment was adopted,
 * 0 when it was created (zeroed; an existing one of another geometry is reclaimed as in
 * shm_create), -EEXIST when its owner lives, other -errno. size is rounded as in shm_create. */
int shm_adopt(const char *name, uint32_t kind, uint32_t version, size_t size, shm **out);
/* Maps an existing segment after checking magic, kind, version and size (-EPROTO on a
 * mismatch, -ENOENT when absent). */
int shm_attach(const char *name, uint32_t kind, uint32_t version, shm **out);
/* Unmaps and frees the handle; the segment stays. Accepts NULL. */
void shm_detach(shm *s);
/* Removes the name; mappings stay valid until detached. 0 or -errno (-ENOENT if absent). */
int shm_unlink_name(const char *name);
/* Whether the existing segment `name` is one this user's mqttflow left behind, safe to read
 * records from without adopting it (issue 8 items 5 and 9): a regular file (shm_open does not
 * follow symlinks; a directory or device is refused), owned by this effective uid, mode
 * exactly 0600, with a complete header whose owner is dead or is this process. 0 when so;
 * -ENOENT when absent; -EEXIST when another live process owns it; -EPERM when it is not ours
 * (other owner, other mode, not a regular file); -EPROTO when its header is incomplete;
 * other -errno. Another user cannot swap the name afterwards: /dev/shm is sticky. */
int shm_check_ours(const char *name);
/* Whether the owner recorded in a segment is a live process (same pid and start time). */
int shm_owner_is_alive(const shm_hdr *h);

void *shm_base(const shm *s); /* the header, followed by the kind's layout */
size_t shm_size(const shm *s);
const char *shm_name(const shm *s);

#endif
