/* test_deadletter: the dead-letter store's JSON lines and file (common/deadletter.h). */
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "deadletter.h"

static json_t *parse(const char *line)
{
    json_error_t err;
    json_t *o = json_loads(line, JSON_ALLOW_NUL, &err);
    if (!o)
        fprintf(stderr, "not JSON (%s): %s\n", err.text, line);
    return o;
}

static const char *str(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static void test_deadletter_json_has_every_field(void **state)
{
    (void)state;
    deadletter_entry e = {
        .time_ns = 1795741955123456789ull, /* 2026-11-17T... UTC, .123 */
        .instance = "inst",
        .rule = "r1",
        .callback = "cb",
        .reason = "callback error",
        .source_client = "c1",
        .topic = "a/b",
        .qos = 1,
        .payload = "hi \"there\"",
        .payload_len = 10,
    };
    char *line = deadletter_json(&e);
    assert_non_null(line);
    assert_null(strchr(line, '\n'));
    json_t *o = parse(line);
    assert_non_null(o);
    assert_int_equal(json_object_size(o), 10);
    const char *t = str(o, "time");
    assert_non_null(t);
    assert_int_equal(strlen(t), 24);
    assert_memory_equal(t + 19, ".123Z", 5);
    assert_int_equal(t[10], 'T');
    assert_string_equal(str(o, "instance"), "inst");
    assert_string_equal(str(o, "rule"), "r1");
    assert_string_equal(str(o, "callback"), "cb");
    assert_string_equal(str(o, "reason"), "callback error");
    assert_string_equal(str(o, "source_client"), "c1");
    assert_string_equal(str(o, "topic"), "a/b");
    assert_int_equal(json_integer_value(json_object_get(o, "qos")), 1);
    assert_string_equal(str(o, "payload"), "hi \"there\"");
    assert_int_equal(json_integer_value(json_object_get(o, "payload_len")), 10);
    assert_null(json_object_get(o, "payload_b64"));
    json_decref(o);
    free(line);
}

static void test_deadletter_json_time_is_utc_iso8601(void **state)
{
    (void)state;
    /* 2001-09-09T01:46:40Z is 1,000,000,000 s after the epoch */
    deadletter_entry e = {.time_ns = 1000000000ull * 1000000000ull + 7000000ull, .reason = "x"};
    char *line = deadletter_json(&e);
    assert_non_null(line);
    json_t *o = parse(line);
    assert_non_null(o);
    assert_string_equal(str(o, "time"), "2001-09-09T01:46:40.007Z");
    json_decref(o);
    free(line);
}

static void test_deadletter_json_unknowns_are_null(void **state)
{
    (void)state;
    deadletter_entry e = {.reason = "why", .topic = "t", .payload = NULL, .payload_len = 0};
    char *line = deadletter_json(&e);
    assert_non_null(line);
    json_t *o = parse(line);
    assert_non_null(o);
    assert_true(json_is_null(json_object_get(o, "rule")));
    assert_true(json_is_null(json_object_get(o, "callback")));
    assert_true(json_is_null(json_object_get(o, "source_client")));
    assert_true(json_is_null(json_object_get(o, "instance")));
    assert_string_equal(str(o, "payload"), "");
    assert_int_equal(json_integer_value(json_object_get(o, "payload_len")), 0);
    json_decref(o);
    free(line);
}

static void test_deadletter_json_binary_payload_is_base64(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t len;
        const char *b64;
    } v[] = {
        {"\xff", 1, "/w=="},         {"\xff\xfe", 2, "//4="},
        {"\xff\xfe\x00", 3, "//4A"}, {"\x80\x00\x01\x02\x03", 5, "gAABAgM="},
        {"a\xc3", 2, "YcM="}, /* a truncated UTF-8 sequence */
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        deadletter_entry e = {.reason = "r", .payload = v[i].in, .payload_len = v[i].len};
        char *line = deadletter_json(&e);
        assert_non_null(line);
        json_t *o = parse(line);
        assert_non_null(o);
        assert_null(json_object_get(o, "payload"));
        assert_string_equal(str(o, "payload_b64"), v[i].b64);
        assert_int_equal(json_integer_value(json_object_get(o, "payload_len")), v[i].len);
        json_decref(o);
        free(line);
    }
}

static void test_deadletter_json_utf8_with_nul_stays_text(void **state)
{
    (void)state;
    const char p[] = {'a', 0, 'b', (char)0xc3, (char)0xa9};
    deadletter_entry e = {.reason = "r", .payload = p, .payload_len = sizeof(p)};
    char *line = deadletter_json(&e);
    assert_non_null(line);
    assert_non_null(strstr(line, "\\u0000"));
    json_t *o = parse(line);
    assert_non_null(o);
    json_t *s = json_object_get(o, "payload");
    assert_true(json_is_string(s));
    assert_int_equal(json_string_length(s), sizeof(p));
    assert_memory_equal(json_string_value(s), p, sizeof(p));
    json_decref(o);
    free(line);
}

static void test_deadletter_store_creates_private_files_and_appends(void **state)
{
    (void)state;
    char base[] = "/tmp/mf-test-dl.XXXXXX";
    assert_non_null(mkdtemp(base));
    char dir[256], path[300];
    snprintf(dir, sizeof(dir), "%s/a/b", base);
    deadletter *d = NULL;
    assert_int_equal(deadletter_open(dir, &d), 0);
    snprintf(path, sizeof(path), "%s/%s", dir, DEADLETTER_FILE);
    assert_string_equal(deadletter_path(d), path);
    struct stat sb;
    assert_int_equal(stat(dir, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    snprintf(path, sizeof(path), "%s/a", base);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    snprintf(path, sizeof(path), "%s/%s", dir, DEADLETTER_FILE);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);

    assert_int_equal(deadletter_append(d, "{\"n\":1}"), 0);
    assert_int_equal(deadletter_append(d, "{\"n\":2}"), 0);
    assert_int_equal(deadletter_sync(d), 0);
    assert_int_equal(deadletter_count(d), 2);
    deadletter_close(d);
    /* a second open appends after what is there */
    assert_int_equal(deadletter_open(dir, &d), 0);
    assert_int_equal(deadletter_append(d, "{\"n\":3}"), 0);
    assert_int_equal(deadletter_sync(d), 0);
    assert_int_equal(deadletter_count(d), 1);
    deadletter_close(d);

    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[64];
    for (int i = 1; i <= 3; i++) {
        assert_non_null(fgets(line, sizeof(line), f));
        char want[32];
        snprintf(want, sizeof(want), "{\"n\":%d}\n", i);
        assert_string_equal(line, want);
    }
    assert_null(fgets(line, sizeof(line), f));
    fclose(f);

    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
    assert_int_equal(system(cmd), 0);
}

static void test_deadletter_open_fails_on_a_file_in_the_way(void **state)
{
    (void)state;
    char base[] = "/tmp/mf-test-dl.XXXXXX";
    assert_non_null(mkdtemp(base));
    char path[300];
    snprintf(path, sizeof(path), "%s/file", base);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/file/sub", base);
    deadletter *d = (deadletter *)1;
    int rc = deadletter_open(path, &d);
    assert_true(rc == -ENOTDIR || rc == -EEXIST);
    assert_null(d);
    assert_int_equal(deadletter_open("", &d), -EINVAL);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deadletter_json_has_every_field),
        cmocka_unit_test(test_deadletter_json_time_is_utc_iso8601),
        cmocka_unit_test(test_deadletter_json_unknowns_are_null),
        cmocka_unit_test(test_deadletter_json_binary_payload_is_base64),
        cmocka_unit_test(test_deadletter_json_utf8_with_nul_stays_text),
        cmocka_unit_test(test_deadletter_store_creates_private_files_and_appends),
        cmocka_unit_test(test_deadletter_open_fails_on_a_file_in_the_way),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
