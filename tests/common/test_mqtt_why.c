/* common/mqtt_why and common/topicname: the operator's sentences for paho's numbers, and the
 * brokers' topic rules (issue 8 items 2 and "Clearer errors"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "mqtt_why.h"
#include "topicname.h"

static void test_mqtt_why_connect_names_the_cause(void **state)
{
    (void)state;
    assert_non_null(strstr(mqtt_why_connect(5, 0, NULL), "not authorized"));
    assert_non_null(strstr(mqtt_why_connect(4, 0, NULL), "bad user name or password"));
    assert_non_null(strstr(mqtt_why_connect(-1, 0x86, NULL), "bad user name or password"));
    assert_non_null(strstr(mqtt_why_connect(-1, 0x87, NULL), "password_env"));
    assert_non_null(strstr(mqtt_why_connect(-1, 0, "TCP connect timeout"), "no CONNACK"));
    assert_non_null(
        strstr(mqtt_why_connect(mqtt_why_code(-1, "TCP connect timeout"), 0, NULL), "no CONNACK"));
    assert_non_null(
        strstr(mqtt_why_connect(-1, 0, "TCP/TLS connect failure"), "could not be reached"));
    assert_non_null(strstr(mqtt_why_connect(-1, 0, "SSL connect error"), "TLS handshake"));
    assert_non_null(strstr(mqtt_why_lost(1.0, 3), "same client id takes the session over"));
    assert_non_null(strstr(mqtt_why_disconnect_reason(0x8E), "session taken over"));
}

static void test_topicname_brokers_rules(void **state)
{
    (void)state;
    size_t at = 99;
    assert_null(topicname_check("a/b", 3, false, NULL));
    assert_null(topicname_check("caf\xc3\xa9/\xf0\x9f\x98\x80", 10, false, NULL));
    assert_non_null(topicname_check("a\nb", 3, false, &at));
    assert_int_equal(at, 1);
    assert_non_null(topicname_check("a\0b", 3, false, NULL));
    assert_non_null(topicname_check("a\x7f", 2, false, NULL));
    assert_non_null(topicname_check("a\xc2\x85", 3, false, NULL));    /* U+0085 */
    assert_non_null(topicname_check("\xc0\xaf", 2, false, NULL));     /* overlong '/' */
    assert_non_null(topicname_check("\xed\xa0\x80", 3, false, NULL)); /* surrogate */
    assert_non_null(topicname_check("\xe2\x82", 2, false, NULL));     /* truncated */
    assert_non_null(topicname_check("", 0, false, NULL));
    assert_non_null(topicname_check("a/+", 3, false, NULL));
    assert_null(topicname_check("a/+", 3, true, NULL));
    assert_null(topicname_check("#", 1, true, NULL));
    assert_non_null(topicname_check("a/#/b", 5, true, NULL));
    assert_non_null(topicname_check("a+", 2, true, NULL));
    static char longt[TOPICNAME_MAX + 1];
    memset(longt, 'a', sizeof(longt));
    assert_null(topicname_check(longt, TOPICNAME_MAX, false, NULL));
    assert_non_null(topicname_check(longt, TOPICNAME_MAX + 1, false, NULL));
    char esc[32];
    topicname_escape(esc, sizeof(esc), "a\nb\"", 4);
    assert_string_equal(esc, "a\\x0ab\\x22");
}

/* Every byte value in the middle of a name and of a filter level, against the rule written
 * out (topicname.c takes printable ASCII on a fast path, everything else through the UTF-8
 * decoder): printable ASCII is taken except the wildcards, which a filter takes only as a
 * whole level; control bytes and a lone byte >= 0x80 (not UTF-8) are refused, with the
 * offset of the fault. */
static void test_topicname_every_byte(void **state)
{
    (void)state;
    for (unsigned b = 0; b < 256; b++) {
        char t[3] = {'a', (char)b, 'c'};
        size_t at = 99;
        bool ok = b >= 0x20 && b < 0x7F && b != '+' && b != '#';
        const char *why = topicname_check(t, 3, false, &at);
        if ((why == NULL) != ok)
            fail_msg("byte 0x%02x: %s", b, why ? why : "taken");
        if (!ok)
            assert_int_equal(at, 1);
        assert_true((topicname_check(t, 3, true, NULL) == NULL) == ok);
        char lvl[5] = {'a', '/', (char)b, '/', 'c'};
        bool whole = ok || b == '+'; /* "#" only as the last level */
        assert_true((topicname_check(lvl, 5, true, NULL) == NULL) == whole);
        assert_true((topicname_check(lvl, 3, true, NULL) == NULL) == (ok || b == '+' || b == '#'));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mqtt_why_connect_names_the_cause),
        cmocka_unit_test(test_topicname_brokers_rules),
        cmocka_unit_test(test_topicname_every_byte),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
