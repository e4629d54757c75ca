/* cfg_topic: MQTT topic filter and topic name rules (MQTT 3.1.1 §4.7, 5.0 §4.7). */
#include "cfg_int.h"

#include <string.h>

#include "topicname.h"

/* One rule for both, the brokers' (common/topicname.h); a C string holds no NUL anyway. */
bool cfg_topic_filter_is_valid(const char *filter)
{
    return filter && topicname_check(filter, strlen(filter), true, NULL) == NULL;
}

bool cfg_topic_name_is_valid(const char *topic)
{
    return topic && topicname_check(topic, strlen(topic), false, NULL) == NULL;
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
