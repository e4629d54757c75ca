/* libFuzzer target for the record codec (common/rec): any bytes given to rec_decode give a
 * view inside the buffer or -EBADMSG, never a read past it; a decoded record encodes back to
 * the same bytes (apart from the reserved field). The input is copied into an exact-size heap
 * buffer so ASan sees any overread.
 *
 *   make fuzz                (every target briefly)     make fuzz-soak   (1 M runs each)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    rec_view v, c;
    int rc = rec_decode(buf, size, &v);
    /* rec_check (the reason in an undecodable record's dead letter) agrees with rec_decode
     * and names a reason it has a text for */
    enum rec_bad why = rec_check(buf, size, &c);
    if ((why == REC_BAD_NONE) != (rc == 0) || why > REC_BAD_PAYLOAD)
        __builtin_trap();
    if (rc == 0) {
        const uint8_t *end = buf + size;
        if ((const uint8_t *)v.topic < buf || (const uint8_t *)v.topic + v.h.topic_len >= end ||
            (const uint8_t *)v.payload < buf || (const uint8_t *)v.payload + v.h.payload_len >= end)
            __builtin_trap();
        if (strlen(v.topic) != v.h.topic_len)
            __builtin_trap();
        size_t n = rec_size(v.h.topic_len, v.h.payload_len);
        uint8_t *again = malloc(n);
        if (again) {
            long m = rec_encode(again, n, &v.h, v.topic, v.h.topic_len, v.payload, v.h.payload_len);
            if (m != (long)n)
                __builtin_trap();
            rec_view w;
            if (rec_decode(again, n, &w) != 0 || w.h.topic_len != v.h.topic_len ||
                w.h.payload_len != v.h.payload_len || w.h.seq != v.h.seq ||
                memcmp(w.topic, v.topic, v.h.topic_len) ||
                memcmp(w.payload, v.payload, v.h.payload_len))
                __builtin_trap();
            free(again);
        }
    }
    free(buf);
    return 0;
}
