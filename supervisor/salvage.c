#include "salvage.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deadletter.h"
#include "log.h"
#include "rec.h"
#include "ring.h"
#include "shm.h"

/* Records written to the store between two syncs: each sync is an fdatasync, and the records
 * of a batch are released from the ring only after it (see salvage.h: idempotent). */
#define SALVAGE_BATCH 256

/* Syncs the store and, once that returned 0, releases from the ring every record written
 * to it: a later salvage of the same ring starts after them. */
static int sync_release(deadletter *dl, ring *r)
{
    int rc = deadletter_sync(dl);
    if (rc == 0)
        ring_release(r);
    return rc;
}

int salvage_ring(const char *name, const cfg *c, const char *why, uint64_t *n)
{
    ring *r = NULL;
    deadletter *dl = NULL;
    uint64_t count = 0;
    unsigned batch = 0;
    char reason[512];
    /* Only a segment this user's mqttflow left: its records become lines of our store, so
     * one planted by another user (or readable by others) is not read. */
    int rc = shm_check_ours(name);
    if (rc < 0) {
        log_error("supervisor",
                  "%s is not a segment this user's mqttflow left behind (%s: another owner, a "
                  "mode other than 0600, not a regular file or a live owner): its records are "
                  "not read",
                  name, strerror(-rc));
        return rc;
    }
    if ((rc = ring_attach(name, RING_CONSUMER, &r)) < 0)
        return rc;
    ring_stats st;
    ring_get_stats(r, &st);
    if (st.tail > st.head || st.head - st.tail > ring_capacity(r)) {
        /* ring_attach bounded the geometry by the mapped size, not the positions: damaged
         * positions would have us read the data area round and round */
        log_error("supervisor",
                  "%s: damaged positions (tail %llu, head %llu, capacity %zu): its records "
                  "cannot be read",
                  name, (unsigned long long)st.tail, (unsigned long long)st.head, ring_capacity(r));
        ring_detach(r);
        if (n)
            *n = 0;
        return 0;
    }
    if ((rc = deadletter_open(c->runtime.dead_letter_dir, &dl)) < 0)
        goto out;
    snprintf(reason, sizeof(reason), "configuration changed: %s", why);
    const void *buf;
    size_t len;
    while ((rc = ring_peek(r, &buf, &len)) == 0) {
        rec_view v;
        deadletter_entry e = {.instance = c->runtime.instance, .reason = reason};
        if (rec_decode(buf, len, &v) == 0) {
            e.topic = v.topic;
            e.qos = v.h.qos;
            e.payload = v.payload;
            e.payload_len = v.h.payload_len;
        } else { /* keep the bytes: a record we cannot decode is still someone's message */
            e.topic = NULL;
            e.payload = buf;
            e.payload_len = len;
        }
        char *line = deadletter_json(&e);
        rc = line ? deadletter_append(dl, line) : -ENOMEM;
        free(line);
        if (rc < 0) {
            /* what was written before is kept and released if it can be made durable, so a
             * retry does not write it twice; the record that failed stays in the ring */
            (void)sync_release(dl, r);
            goto out;
        }
        count++;
        ring_advance(r);
        if (++batch == SALVAGE_BATCH) {
            if ((rc = sync_release(dl, r)) < 0)
                goto out;
            batch = 0;
        }
    }
    if (rc == -EAGAIN || rc == -EBADMSG) {
        if (rc == -EBADMSG)
            log_error("supervisor",
                      "%s: a corrupt record length after %llu record(s): the "
                      "rest of the ring cannot be read",
                      name, (unsigned long long)count);
        rc = sync_release(dl, r);
    }
out:
    deadletter_close(dl);
    ring_detach(r);
    if (rc == 0 && n)
        *n = count;
    return rc;
}
