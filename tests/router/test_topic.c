/* Unit tests of router/topic: the MQTT topic filter trie. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "router/topic.h"
#include "tests/tools/testlib.h"

static int setup(void **state)
{
    topic_trie *t = NULL;
    if (topic_create(&t) != 0)
        return -1;
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    topic_destroy(*state);
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Matches topic and returns the sorted values as a string "1,4,7" (empty when none). */
static const char *match(topic_trie *t, const char *topic)
{
    static char buf[4096];
    uint32_t v[512];
    size_t n = topic_match(t, topic, strlen(topic), v, 512), off = 0;

    assert_true(n <= 512);
    qsort(v, n, sizeof(v[0]), cmp_u32);
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++)
        off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%u", i ? "," : "", v[i]);
    return buf;
}

static void add(topic_trie *t, const char *filter, uint32_t value)
{
    assert_int_equal(topic_add(t, filter, value), 0);
}

static void test_topic_empty_trie_matches_nothing(void **state)
{
    assert_string_equal(match(*state, "a/b"), "");
}

static void test_topic_exact(void **state)
{
    topic_trie *t = *state;
    add(t, "sensors/temperature", 1);
    add(t, "sensors/humidity", 2);
    add(t, "sensors", 3);
    assert_string_equal(match(t, "sensors/temperature"), "1");
    assert_string_equal(match(t, "sensors/humidity"), "2");
    assert_string_equal(match(t, "sensors"), "3");
    assert_string_equal(match(t, "sensors/temperature/x"), "");
    assert_string_equal(match(t, "sensors/temp"), "");
    assert_string_equal(match(t, "Sensors/temperature"), "");
    assert_string_equal(match(t, "sensors/"), "");
    assert_int_equal(topic_count(t), 3);
}

static void test_topic_plus(void **state)
{
    topic_trie *t = *state;
    add(t, "home/+/temp", 1);
    add(t, "+/+", 2);
    add(t, "+", 3);
    assert_string_equal(match(t, "home/kitchen/temp"), "1");
    assert_string_equal(match(t, "home//temp"), "1"); /* + matches an empty level */
    assert_string_equal(match(t, "home/kitchen/hum"), "");
    assert_string_equal(match(t, "home/kitchen"), "2");
    assert_string_equal(match(t, "home"), "3");
    assert_string_equal(match(t, "/x"), "2");
    assert_string_equal(match(t, "a/b/c/d"), "");
}

static void test_topic_hash(void **state)
{
    topic_trie *t = *state;
    add(t, "sport/#", 1);
    add(t, "#", 2);
    add(t, "sport/tennis/+/#", 3);
    assert_string_equal(match(t, "sport/tennis/player1"), "1,2,3"); /* # = parent */
    assert_string_equal(match(t, "sport/tennis/player1/ranking"), "1,2,3");
    assert_string_equal(match(t, "sport/tennis/player1/a/b/c"), "1,2,3");
    assert_string_equal(match(t, "music"), "2");
}

static void test_topic_hash_matches_parent_level(void **state)
{
    topic_trie *t = *state;
    add(t, "sport/#", 1);
    add(t, "sport/tennis/+/#", 2);
    assert_string_equal(match(t, "sport"), "1");
    assert_string_equal(match(t, "sport/"), "1");
    assert_string_equal(match(t, "sport/tennis/p1"), "1,2"); /* "+/#" at the parent of # */
    assert_string_equal(match(t, "sports"), "");
}

static void test_topic_dollar_topics(void **state)
{
    topic_trie *t = *state;
    add(t, "#", 1);
    add(t, "+/monitor/Clients", 2);
    add(t, "$SYS/#", 3);
    add(t, "$SYS/monitor/+", 4);
    add(t, "+", 5);
    /* MQTT 4.7.2: leading wildcards do not match $ topics */
    assert_string_equal(match(t, "$SYS/monitor/Clients"), "3,4");
    assert_string_equal(match(t, "$SYS"), "3");
    assert_string_equal(match(t, "$x"), "");
    assert_string_equal(match(t, "x/monitor/Clients"), "1,2");
    /* a $ elsewhere is an ordinary character */
    assert_string_equal(match(t, "a$"), "1,5");
}

static void test_topic_overlapping_filters_all_reported(void **state)
{
    topic_trie *t = *state;
    add(t, "a/b/c", 0);
    add(t, "a/+/c", 1);
    add(t, "+/b/c", 2);
    add(t, "+/+/+", 3);
    add(t, "a/#", 4);
    add(t, "a/b/#", 5);
    add(t, "a/b/c/#", 6);
    add(t, "#", 7);
    add(t, "a/b/c", 8); /* the same filter twice: both values */
    add(t, "+/+", 9);
    assert_string_equal(match(t, "a/b/c"), "0,1,2,3,4,5,6,7,8");
    assert_string_equal(match(t, "a/x/c"), "1,3,4,7");
    assert_string_equal(match(t, "a/b"), "4,5,7,9");
}

static void test_topic_cap_counts_beyond(void **state)
{
    topic_trie *t = *state;
    uint32_t v[2];
    for (uint32_t i = 0; i < 5; i++)
        add(t, "x/#", i);
    assert_int_equal(topic_match(t, "x/y", 3, v, 2), 5);
}

static void test_topic_many_filters(void **state)
{
    topic_trie *t = *state;
    char f[64], topic[64], want[64];
    /* 3000 exact filters, 100 + filters, 100 # filters */
    for (uint32_t i = 0; i < 3000; i++) {
        snprintf(f, sizeof(f), "site%u/dev%u/temp", i % 30, i);
        add(t, f, i);
    }
    for (uint32_t i = 0; i < 100; i++) {
        snprintf(f, sizeof(f), "site%u/+/hum", i);
        add(t, f, 3000 + i);
        snprintf(f, sizeof(f), "other%u/#", i);
        add(t, f, 3100 + i);
    }
    for (uint32_t i = 0; i < 3000; i += 7) {
        snprintf(topic, sizeof(topic), "site%u/dev%u/temp", i % 30, i);
        snprintf(want, sizeof(want), "%u", i);
        assert_string_equal(match(t, topic), want);
    }
    assert_string_equal(match(t, "site42/devX/hum"), "3042");
    assert_string_equal(match(t, "other99/a/b/c"), "3199");
    assert_string_equal(match(t, "other100/a"), "");
    assert_string_equal(match(t, "site1/dev2/temp"), "");
    assert_int_equal(topic_count(t), 3200);
}

static void test_topic_invalid_filters(void **state)
{
    topic_trie *t = *state;
    assert_int_equal(topic_add(t, "", 1), -EINVAL);
    assert_int_equal(topic_add(t, "a/#/b", 1), -EINVAL);
    assert_int_equal(topic_add(t, "a#", 1), -EINVAL);
    assert_int_equal(topic_add(t, "a/b+", 1), -EINVAL);
    assert_int_equal(topic_add(t, "+a", 1), -EINVAL);
    assert_int_equal(topic_count(t), 0);
    assert_true(topic_filter_is_valid("+/+/#"));
    assert_true(topic_filter_is_valid("/"));
    assert_false(topic_filter_is_valid("##"));
}

static void test_topic_wildcard_chars_in_names_are_plain(void **state)
{
    topic_trie *t = *state;
    add(t, "a/b", 1);
    add(t, "a/+", 2);
    /* a topic name with '+' only matches filters through their wildcards */
    assert_string_equal(match(t, "a/+"), "2");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST_ST(test_topic_empty_trie_matches_nothing),
        TEST_ST(test_topic_exact),
        TEST_ST(test_topic_plus),
        TEST_ST(test_topic_hash),
        TEST_ST(test_topic_hash_matches_parent_level),
        TEST_ST(test_topic_dollar_topics),
        TEST_ST(test_topic_overlapping_filters_all_reported),
        TEST_ST(test_topic_cap_counts_beyond),
        TEST_ST(test_topic_many_filters),
        TEST_ST(test_topic_invalid_filters),
        TEST_ST(test_topic_wildcard_chars_in_names_are_plain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
