#include "salvage.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "deadletter.h"
#include "log.h"
#include "rec.h"
#include "ring.h"

int salvage_ring(const char *name, const cfg *c, const char *why, uint64_t *n)
{
    ring *r = NULL;
    deadletter *dl = NULL;
    uint64_t count = 0;
    char reason[512];
    int rc = ring_attach(name, RING_CONSUMER, &r);
    if (rc < 0)
        return rc;
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
        if (!line) {
            rc = -ENOMEM;
            goto out;
        }
        rc = deadletter_append(dl, line);
        free(line);
        if (rc < 0)
            goto out;
        count++;
        ring_advance(r);
    }
    if (rc == -EAGAIN || rc == -EBADMSG) {
        if (rc == -EBADMSG)
            log_error("supervisor",
                      "%s: a corrupt record length after %llu record(s): the "
                      "rest of the ring cannot be read",
                      name, (unsigned long long)count);
        rc = deadletter_sync(dl);
    }
out:
    deadletter_close(dl);
    ring_detach(r);
    if (rc == 0 && n)
        *n = count;
    return rc;
}
