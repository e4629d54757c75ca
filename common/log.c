#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* Why no lock: the level table is written only before threads start (log.h), and each line
 * is formatted into a stack buffer and written with one write(2). */
#define LOG_OVERRIDES_MAX 32

static struct {
    char process[48];
    int default_level;
    size_t n_overrides;
    struct {
        char component[32];
        int level;
    } overrides[LOG_OVERRIDES_MAX];
} log_state = {.process = "mqttflow", .default_level = MF_LOG_INFO};

void log_init(const char *process)
{
    snprintf(log_state.process, sizeof(log_state.process), "%s", process ? process : "mqttflow");
}

void log_set_default(int level)
{
    log_state.default_level = level;
}

void log_set_level(const char *component, int level)
{
    for (size_t i = 0; i < log_state.n_overrides; i++) {
        if (strcmp(log_state.overrides[i].component, component) == 0) {
            log_state.overrides[i].level = level;
            return;
        }
    }
    if (log_state.n_overrides == LOG_OVERRIDES_MAX)
        return;
    size_t i = log_state.n_overrides++;
    snprintf(log_state.overrides[i].component, sizeof(log_state.overrides[i].component), "%s",
             component);
    log_state.overrides[i].level = level;
}

int log_parse_level(const char *name)
{
    static const struct {
        const char *name;
        int level;
    } names[] = {
        {"DEBUG", MF_LOG_DEBUG},  {"INFO", MF_LOG_INFO},   {"WARNING", MF_LOG_WARNING},
        {"WARN", MF_LOG_WARNING}, {"ERROR", MF_LOG_ERROR}, {"CRITICAL", MF_LOG_ERROR + 10},
    };
    if (!name)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcasecmp(name, names[i].name) == 0)
            return names[i].level;
    return -EINVAL;
}

static int level_for(const char *component)
{
    for (size_t i = 0; component && i < log_state.n_overrides; i++)
        if (strcmp(log_state.overrides[i].component, component) == 0)
            return log_state.overrides[i].level;
    return log_state.default_level;
}

int log_enabled(int level, const char *component)
{
    return level >= level_for(component);
}

static const char *level_name(int level)
{
    if (level >= MF_LOG_ERROR)
        return "ERROR";
    if (level >= MF_LOG_WARNING)
        return "WARN ";
    if (level >= MF_LOG_INFO)
        return "INFO ";
    return "DEBUG";
}

/* Copies msg into line[n..cap) with every control byte escaped (\n \r \t, else \xHH) and
 * returns the new length. Why here and not at each caller: topics, payload snippets and mf_log
 * text come from outside and reach the log through hundreds of format strings; one place
 * cannot be forgotten. Bytes >= 0x80 pass untouched (UTF-8 topics stay readable); a backslash
 * is not doubled, so an escape is ambiguous with the same text sent literally, which costs
 * nothing for a reader and keeps Windows paths and regexes as they were written. An escape
 * that would not fit whole is dropped (truncation, never half an escape). */
static size_t escape_into(char *line, size_t n, size_t cap, const char *msg)
{
    static const char hex[] = "0123456789abcdef";
    for (const unsigned char *c = (const unsigned char *)msg; *c && n < cap; c++) {
        if (*c >= 0x20 && *c != 0x7f) {
            line[n++] = (char)*c;
            continue;
        }
        char e[4] = {'\\', 0, 0, 0};
        size_t len = 2;
        switch (*c) {
        case '\n':
            e[1] = 'n';
            break;
        case '\r':
            e[1] = 'r';
            break;
        case '\t':
            e[1] = 't';
            break;
        default:
            e[1] = 'x';
            e[2] = hex[*c >> 4];
            e[3] = hex[*c & 15];
            len = 4;
        }
        if (n + len > cap)
            break;
        memcpy(line + n, e, len);
        n += len;
    }
    return n;
}

void log_vmsg(int level, const char *component, const char *fmt, va_list ap)
{
    if (!log_enabled(level, component))
        return;
    char line[LOG_LINE_MAX];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%02d:%02d:%02d.%03ld %s %s %s: ", tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, level_name(level), log_state.process,
                     component ? component : "-");
    if (n < 0)
        return;
    if ((size_t)n > sizeof(line) - 2)
        n = (int)sizeof(line) - 2; /* truncated: keep the newline */
    char msg[LOG_LINE_MAX];
    if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
        msg[0] = 0;
    n = (int)escape_into(line, (size_t)n, sizeof(line) - 1, msg);
    line[n++] = '\n';
    /* One write per line: lines of processes sharing stderr do not interleave. A failed write
     * to stderr has nowhere to be reported. */
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

void log_msg(int level, const char *component, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, component, fmt, ap);
    va_end(ap);
}
