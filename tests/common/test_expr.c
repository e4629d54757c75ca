/* Unit tests of common/expr: the condition language of rules and `filter` steps. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "expr.h"

/* Compiles src (must succeed) and evaluates it on one message. */
static int eval_on(const char *src, const char *topic, const char *payload)
{
    expr *e = NULL;
    char err[256];
    size_t off = 0;
    int rc = expr_compile(src, &e, err, sizeof(err), &off);
    int r;

    if (rc != 0)
        fail_msg("compile of \"%s\" failed at %zu: %s", src, off, err);
    r = expr_eval(e, topic, payload, payload ? strlen(payload) : 0);
    expr_destroy(e);
    return r;
}

#define T(src, topic, payload) assert_int_equal(eval_on((src), (topic), (payload)), 1)
#define F(src, topic, payload) assert_int_equal(eval_on((src), (topic), (payload)), 0)

/* Compiles src (must fail with -EINVAL); checks the error offset and a message fragment. */
static void bad(const char *src, size_t want_off, const char *want_msg)
{
    expr *e = (expr *)0x1;
    char err[256];
    size_t off = 12345;
    int rc = expr_compile(src, &e, err, sizeof(err), &off);

    assert_int_equal(rc, -EINVAL);
    assert_null(e);
    if (off != want_off)
        fail_msg("\"%s\": err_off %zu, expected %zu (%s)", src, off, want_off, err);
    if (!strstr(err, want_msg))
        fail_msg("\"%s\": message \"%s\" lacks \"%s\"", src, err, want_msg);
}

static void test_expr_literals_truthiness(void **state)
{
    (void)state;
    T("true", "t", "");
    F("false", "t", "");
    F("null", "t", "");
    T("1", "t", "");
    F("0", "t", "");
    F("0.0", "t", "");
    T("-3.5", "t", "");
    T("'x'", "t", "");
    F("''", "t", "");
    T("\"text\"", "t", "");
    F("\"\"", "t", "");
    T("1e3 == 1000", "t", "");
    T("2.5E-1 == 0.25", "t", "");
}

static void test_expr_precedence(void **state)
{
    (void)state;
    T("1 + 2 * 3 == 7", "t", "");
    T("(1 + 2) * 3 == 9", "t", "");
    T("10 - 4 - 3 == 3", "t", ""); /* left associative */
    T("16 / 4 / 2 == 2", "t", "");
    T("-2 * 3 == -6", "t", "");
    T("- (2 + 3) == -5", "t", "");
    /* && binds tighter than || */
    T("true || false && false", "t", "");
    F("(true || false) && false", "t", "");
    /* comparison binds tighter than ==, like C */
    T("1 < 2 == true", "t", "");
    /* ! binds tighter than == (C): (!1) == false */
    T("!1 == false", "t", "");
    T("not false and true", "t", "");
    T("1 + 1 > 1 && 2 * 2 >= 4", "t", "");
}

static void test_expr_every_operator(void **state)
{
    (void)state;
    T("3 * 4 == 12", "t", "");
    T("3 / 4 == 0.75", "t", "");
    T("3 + 4 == 7", "t", "");
    T("3 - 4 == -1", "t", "");
    T("1 < 2", "t", "");
    F("2 < 2", "t", "");
    T("2 <= 2", "t", "");
    F("3 <= 2", "t", "");
    T("3 > 2", "t", "");
    F("2 > 2", "t", "");
    T("2 >= 2", "t", "");
    F("1 >= 2", "t", "");
    T("2 == 2", "t", "");
    F("2 != 2", "t", "");
    T("2 != 3", "t", "");
    T("!false", "t", "");
    F("!true", "t", "");
    T("not 0", "t", "");
    T("true && true", "t", "");
    F("true && false", "t", "");
    T("true and 1", "t", "");
    T("false || 1", "t", "");
    F("false || 0", "t", "");
    T("0 or 'a'", "t", "");
    T("-(-1) == 1", "t", "");
    T("'abc' < 'abd'", "t", "");
    T("'ab' < 'abc'", "t", "");
    F("'b' < 'abc'", "t", "");
    T("'b' >= 'b'", "t", "");
    T("\"a\\\"b\" == 'a\"b'", "t", "");
}

static void test_expr_short_circuit(void **state)
{
    (void)state;
    /* the right side reads a field of a non-JSON payload: harmless, but the result must come
     * from the left side alone */
    F("false && payload.x == null", "t", "not json");
    T("true || payload.x != null", "t", "not json");
}

static void test_expr_topic_levels(void **state)
{
    (void)state;
    T("topic == 'home/kitchen/temp'", "home/kitchen/temp", "");
    T("topic[0] == 'home'", "home/kitchen/temp", "");
    T("topic[1] == \"kitchen\"", "home/kitchen/temp", "");
    T("topic[2] == 'temp'", "home/kitchen/temp", "");
    T("topic[3] == null", "home/kitchen/temp", "");
    F("topic[3]", "home/kitchen/temp", "");
    T("topic[1] == ''", "a//b", "");
    T("topic[0] == ''", "/a", "");
    T("topic[1] == 'a'", "/a", "");
    F("topic[0] == 'home'", "homes/x", "");
    T("topic[0] < 'i'", "home/x", "");
}

static void test_expr_payload_fields(void **state)
{
    const char *js = "{\"temp\": 31.5, \"room\": \"kitchen\", \"on\": true, \"n\": null,"
                     " \"a\": {\"b\": [10, 20, {\"c\": 7}]}, \"k y\": 3}";
    (void)state;
    T("payload.temp > 30", "t", js);
    F("payload.temp > 32", "t", js);
    T("payload.temp > 30 && topic[1] == \"kitchen\"", "s/kitchen", js);
    T("payload.room == 'kitchen'", "t", js);
    T("payload.on", "t", js);
    T("payload.on == true", "t", js);
    T("payload.n == null", "t", js);
    T("payload.a.b[1] == 20", "t", js);
    T("payload.a.b[2].c == 7", "t", js);
    T("payload.a.b[3] == null", "t", js);
    T("payload[\"k y\"] == 3", "t", js);
    T("payload.a", "t", js); /* an object is truthy */
    T("payload.temp * 2 == 63", "t", js);
    T("payload[1] == 2", "t", "[1, 2, 3]");
}

static void test_expr_missing_fields_are_null(void **state)
{
    (void)state;
    T("payload.missing == null", "t", "{\"x\":1}");
    F("payload.missing", "t", "{\"x\":1}");
    F("payload.missing > 1", "t", "{\"x\":1}");
    F("payload.missing < 1", "t", "{\"x\":1}");
    T("payload.x.y == null", "t", "{\"x\":1}"); /* path through a number */
    T("payload.x[0] == null", "t", "{\"x\":1}");
    T("payload.missing + 1 == null", "t", "{\"x\":1}");
}

static void test_expr_non_json_payload(void **state)
{
    (void)state;
    T("payload.temp == null", "t", "hello");
    F("payload.temp > 0", "t", "hello");
    T("payload.temp == null", "t", "{\"temp\": 1"); /* truncated JSON */
    T("payload.temp == null", "t", NULL);
    /* the whole payload: a number when it is one, else the text */
    T("payload > 30", "t", "31.5");
    T("payload == 31.5", "t", " 31.5\n");
    T("payload == 'hello'", "t", "hello");
    F("payload > 30", "t", "hello");
    T("payload == 'nan'", "t", "nan"); /* not turned into a number */
    T("payload == '0x10'", "t", "0x10");
    F("payload", "t", "");
    T("payload", "t", "0.5");
    F("payload", "t", "0");
}

static void test_expr_type_mixing(void **state)
{
    (void)state;
    /* == and != across types: false / true */
    F("1 == '1'", "t", "");
    T("1 != '1'", "t", "");
    F("true == 1", "t", "");
    F("null == 0", "t", "");
    F("null == false", "t", "");
    T("null == null", "t", "");
    /* ordering with null or mixed types: always false, both ways */
    F("1 < '2'", "t", "");
    F("1 > '0'", "t", "");
    F("1 >= '1'", "t", "");
    F("null < 1", "t", "");
    F("null >= null", "t", "");
    F("true > false", "t", "");
    /* arithmetic on non-numbers and division by zero give null */
    T("'a' + 1 == null", "t", "");
    T("1 / 0 == null", "t", "");
    T("-'a' == null", "t", "");
    /* JSON strings vs numbers */
    F("payload.v == 5", "t", "{\"v\": \"5\"}");
    T("payload.v == '5'", "t", "{\"v\": \"5\"}");
    T("payload.v == 5", "t", "{\"v\": 5}");
    T("payload.v == 5.0", "t", "{\"v\": 5}");
}

static void test_expr_uses_payload(void **state)
{
    expr *e = NULL;
    (void)state;
    assert_int_equal(expr_compile("topic[0] == 'a' && 1 < 2", &e, NULL, 0, NULL), 0);
    assert_int_equal(expr_uses_payload(e), 0);
    expr_destroy(e);
    assert_int_equal(expr_compile("topic[0] == 'a' && payload.x", &e, NULL, 0, NULL), 0);
    assert_int_equal(expr_uses_payload(e), 1);
    expr_destroy(e);
    expr_destroy(NULL);
}

static void test_expr_errors(void **state)
{
    (void)state;
    bad("(payload.temp > 3", 17, "expected ')' after '(payload.temp > 3'");
    bad("", 0, "empty expression");
    bad("   ", 0, "empty expression");
    bad("payload.temp >", 14, "expected a value after 'payload.temp >'");
    bad("payload.temp = 3", 13, "use '=='");
    bad("a > 1", 0, "unknown name 'a'");
    bad("payload.temp > 3 4", 17, "expected an operator or the end");
    bad("topic[x]", 6, "topic level");
    bad("topic[1", 7, "expected ']'");
    bad("payload.", 8, "field name");
    bad("'abc", 0, "unterminated string");
    bad("1 & 2", 2, "use '&&'");
    bad("1 | 2", 2, "use '||'");
    bad("1 # 2", 2, "unexpected character '#'");
    bad("'a\\q'", 2, "unknown escape");
    bad("12abc", 0, "malformed number");
    bad("1. + 2", 2, "digit");
    bad(")", 0, "expected a value at the start");
    bad("payload[", 8, "array index");
    bad("true true", 5, "found 'true'");
}

static void test_expr_error_without_buffers(void **state)
{
    expr *e = NULL;
    (void)state;
    assert_int_equal(expr_compile("(", &e, NULL, 0, NULL), -EINVAL);
    assert_null(e);
}

static void test_expr_nesting_limit(void **state)
{
    char src[512];
    size_t n = 0;
    expr *e = NULL;
    char err[128];
    size_t off = 0;
    (void)state;

    /* 64 levels are allowed */
    for (int i = 0; i < 64; i++)
        src[n++] = '(';
    src[n++] = '1';
    for (int i = 0; i < 64; i++)
        src[n++] = ')';
    src[n] = '\0';
    assert_int_equal(expr_compile(src, &e, err, sizeof(err), &off), 0);
    assert_int_equal(expr_eval(e, "t", "", 0), 1);
    expr_destroy(e);

    /* 65 are not; the offset points at the 65th '(' */
    n = 0;
    for (int i = 0; i < 65; i++)
        src[n++] = '(';
    src[n++] = '1';
    for (int i = 0; i < 65; i++)
        src[n++] = ')';
    src[n] = '\0';
    bad(src, 64, "nesting deeper than 64");

    /* unary operators nest too */
    n = 0;
    for (int i = 0; i < 65; i++)
        src[n++] = '!';
    src[n++] = '1';
    src[n] = '\0';
    bad(src, 64, "nesting deeper than 64");
}

static void test_expr_source_limit(void **state)
{
    char *src = malloc(5000);
    expr *e = NULL;
    (void)state;

    assert_non_null(src);
    /* a long flat chain is fine: 1+1+...+1 (4095 bytes) */
    for (size_t i = 0; i < 4095; i++)
        src[i] = i % 2 ? '+' : '1';
    src[4095] = '\0';
    assert_int_equal(expr_compile(src, &e, NULL, 0, NULL), 0);
    assert_int_equal(expr_eval(e, "t", "", 0), 1);
    expr_destroy(e);
    memset(src, ' ', 4097);
    src[0] = '1';
    src[4097] = '\0';
    bad(src, 4096, "longer than 4096");
    free(src);
}

/* issue 8 item 12: documents jansson refuses by default are parsed (a big integer as a real,
 * a \u0000 inside a string); what cannot be parsed is reported to the caller (counted). */
static int eval_json(const char *src, const char *payload, unsigned *flags)
{
    expr *e = NULL;
    assert_int_equal(expr_compile(src, &e, NULL, 0, NULL), 0);
    int r = expr_eval_ex(e, "t", payload, strlen(payload), flags);
    expr_destroy(e);
    return r;
}

static void test_expr_json_big_integers_and_nul(void **state)
{
    (void)state;
    unsigned fl = 0;
    assert_int_equal(
        eval_json("payload.t == 5", "{\"big\": 123456789012345678901234567890, \"t\": 5}", &fl), 1);
    assert_int_equal(fl & EXPR_JSON_INVALID, 0);
    assert_int_equal(
        eval_json("payload.big > 1e29", "{\"big\": 123456789012345678901234567890}", &fl), 1);
    assert_int_equal(eval_json("payload.t == 5", "{\"s\": \"a\\u0000b\", \"t\": 5}", &fl), 1);
    assert_int_equal(fl & EXPR_JSON_INVALID, 0);
    /* a plain integer stays exact */
    assert_int_equal(eval_json("payload.n == 9007199254740993", "{\"n\": 9007199254740993}", &fl),
                     1);
    fl = 0;
    assert_int_equal(eval_json("payload.t == null", "{\"t\": 5", &fl), 1);
    assert_int_equal(fl & EXPR_JSON_INVALID, EXPR_JSON_INVALID);
    /* a payload that is not read is not parsed, so never reported */
    fl = 0;
    assert_int_equal(eval_json("topic == \"t\"", "{not json", &fl), 1);
    assert_int_equal(fl, 0);
}

/* NaN is not true: 1e999 is infinity, inf - inf is NaN, and a condition on it is false
 * (while its negation is true: the one place NaN's truth shows). */
static void test_expr_nan_is_false(void **state)
{
    (void)state;
    T("payload > 1e308", "t", "1e999"); /* the payload is a number: infinity */
    F("payload - payload", "t", "1e999");
    T("!(payload - payload)", "t", "1e999");
    F("payload - payload || false", "t", "1e999");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expr_json_big_integers_and_nul),
        cmocka_unit_test(test_expr_literals_truthiness),
        cmocka_unit_test(test_expr_precedence),
        cmocka_unit_test(test_expr_every_operator),
        cmocka_unit_test(test_expr_short_circuit),
        cmocka_unit_test(test_expr_topic_levels),
        cmocka_unit_test(test_expr_payload_fields),
        cmocka_unit_test(test_expr_missing_fields_are_null),
        cmocka_unit_test(test_expr_non_json_payload),
        cmocka_unit_test(test_expr_type_mixing),
        cmocka_unit_test(test_expr_uses_payload),
        cmocka_unit_test(test_expr_errors),
        cmocka_unit_test(test_expr_error_without_buffers),
        cmocka_unit_test(test_expr_nesting_limit),
        cmocka_unit_test(test_expr_source_limit),
        cmocka_unit_test(test_expr_nan_is_false),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
