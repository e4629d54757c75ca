#include "topicname.h"

#include <stdint.h>
#include <string.h>

/* Decodes the UTF-8 sequence at s[0..left): its length and *cp, or 0 when malformed
 * (truncated, a bad continuation byte, an overlong form, a surrogate, above U+10FFFF). */
static size_t utf8_next(const unsigned char *s, size_t left, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        n = 2, v = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3, v = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n > left)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return n;
}

const char *topicname_check(const char *s, size_t len, bool filter, size_t *at)
{
    size_t where = 0;
    const char *why = NULL;
    if (!s || len == 0) {
        why = "is empty";
        goto out;
    }
    if (len > TOPICNAME_MAX) {
        why = "is longer than 65535 bytes";
        goto out;
    }
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        /* printable ASCII other than the wildcards, nearly every byte of a real topic: one
         * range test and two compares instead of a decode (the worker checks each topic it
         * emits, about a tenth of its time per record before this) */
        unsigned char b = u[i];
        if (b >= 0x20 && b < 0x7F && b != '+' && b != '#') {
            i++;
            continue;
        }
        uint32_t cp;
        size_t n = utf8_next(u + i, len - i, &cp);
        where = i;
        if (n == 0) {
            why = "is not valid UTF-8";
            goto out;
        }
        if (cp <= 0x1F || (cp >= 0x7F && cp <= 0x9F)) {
            why = cp == 0 ? "contains a NUL character (U+0000)"
                          : "contains a control character (U+0001-U+001F or U+007F-U+009F)";
            goto out;
        }
        if (cp == '+' || cp == '#') {
            bool starts_level = i == 0 || s[i - 1] == '/';
            bool ends_level = i + 1 == len || s[i + 1] == '/';
            if (!filter) {
                why = "contains a wildcard ('+' or '#'), allowed only in subscriptions";
                goto out;
            }
            if (!starts_level || !ends_level || (cp == '#' && i + 1 != len)) {
                why = "uses a wildcard that does not fill a whole level ('#' only last)";
                goto out;
            }
        }
        i += n;
    }
    return NULL;
out:
    if (at)
        *at = where;
    return why;
}

void topicname_escape(char *dst, size_t cap, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    if (cap == 0)
        return;
    for (size_t i = 0; i < len && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7F || c == '\\' || c == '"') {
            dst[o++] = '\\';
            dst[o++] = 'x';
            dst[o++] = hex[c >> 4];
            dst[o++] = hex[c & 15];
        } else {
            dst[o++] = (char)c;
        }
    }
    dst[o] = '\0';
}
