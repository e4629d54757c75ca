/* example_number.h: the reading helper the example callbacks share (each example includes it;
 * it is a header of the examples, not of mqttflow: copy it next to your own callback if you
 * start from one of them).
 *
 * Sensors send a bare number ("31.5") or a JSON object with the value under one of a few keys
 * ({"temperature": 31.5}). read_number takes either without a JSON library, which keeps the
 * examples buildable with nothing but mqttflow.h; a callback that reads real JSON wants one
 * (jansson, cJSON). */
#ifndef MQTTFLOW_EXAMPLE_NUMBER_H
#define MQTTFLOW_EXAMPLE_NUMBER_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The whole of text as a number, else the number after the first of keys (a NULL-ended list,
 * names without quotes) that stands as "key": in text. 0 and *out set when found, else -1.
 * text must be NUL-terminated (a message's payload always is). */
static inline int read_number(const char *text, const char *const *keys, double *out)
{
    char *end;
    double v = strtod(text, &end);
    if (end != text) {
        while (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t')
            end++;
        if (*end == '\0') {
            *out = v;
            return 0;
        }
    }
    for (; *keys; keys++) {
        char quoted[64];
        snprintf(quoted, sizeof(quoted), "\"%s\"", *keys);
        const char *p = strstr(text, quoted);
        if (!p)
            continue;
        p += strlen(quoted);
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        if (*p != ':')
            continue;
        p++;
        v = strtod(p, &end);
        if (end != p) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

#endif
