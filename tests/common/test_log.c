/* log: every line is one line. Control characters that arrive in a message's text (a topic,
 * a payload snippet, mf_log text from a callback) are escaped, so nothing logged can forge a
 * line or drive the terminal (issue 8, item 13). stderr is redirected to a pipe and read back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"

/* Runs one log call with stderr on a pipe; returns what was written (static buffer). */
static const char *capture(const char *topic)
{
    static char out[LOG_LINE_MAX + 64];
    int p[2];
    assert_int_equal(pipe(p), 0);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(p[1], STDERR_FILENO) >= 0);
    log_warn("test", "dropped message on %s: %s", topic, "payload");
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    close(p[1]);
    ssize_t n = read(p[0], out, sizeof(out) - 1);
    close(p[0]);
    assert_true(n > 0);
    out[n] = 0;
    return out;
}

static void test_log_escapes_newline_in_argument(void **state)
{
    (void)state;
    const char *s = capture("a\n00:00:00.000 ERROR router forged: line");
    /* exactly one newline: the terminator */
    assert_non_null(strchr(s, '\n'));
    assert_ptr_equal(strchr(s, '\n'), s + strlen(s) - 1);
    assert_non_null(strstr(s, "a\\n00:00:00.000 ERROR"));
}

static void test_log_escapes_every_control_byte(void **state)
{
    (void)state;
    const char *s = capture("x\r\t\x1b[31m\x7f\x01y");
    assert_non_null(strstr(s, "x\\r\\t\\x1b[31m\\x7f\\x01y"));
    for (const char *c = s; *c && c[1]; c++)
        assert_false((unsigned char)*c < 0x20 || *c == 0x7f);
}

static void test_log_keeps_utf8_and_printable(void **state)
{
    (void)state;
    const char *s = capture("küche/temp \xe2\x82\xac");
    assert_non_null(strstr(s, "küche/temp \xe2\x82\xac: payload\n"));
}

static void test_log_escaped_line_stays_bounded(void **state)
{
    (void)state;
    char big[LOG_LINE_MAX];
    memset(big, '\n', sizeof(big) - 1); /* each byte grows to two when escaped */
    big[sizeof(big) - 1] = 0;
    const char *s = capture(big);
    assert_true(strlen(s) <= LOG_LINE_MAX);
    assert_int_equal(s[strlen(s) - 1], '\n');
    assert_ptr_equal(strchr(s, '\n'), s + strlen(s) - 1);
}

int main(void)
{
    log_init("test");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_escapes_newline_in_argument),
        cmocka_unit_test(test_log_escapes_every_control_byte),
        cmocka_unit_test(test_log_keeps_utf8_and_printable),
        cmocka_unit_test(test_log_escaped_line_stays_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
