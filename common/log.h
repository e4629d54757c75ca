/* log: the one logging path of every mqttflow process (STYLE 16).
 *
 * Lines go to stderr as "TIME LEVEL process component: message", one write(2) each so lines
 * of concurrent processes sharing the supervisor's stderr never interleave. Levels are those
 * of the Python framework's `logging:` section (DEBUG, INFO, WARNING, ERROR: the MF_LOG_* values of
 * mqttflow.h), with a default level and per-component overrides. Thread-safe after log_init;
 * log_init and the set functions are called from main before any thread starts. Never fails: a line
 * longer than LOG_LINE_MAX is truncated. Control bytes in the message (0x00-0x1f, 0x7f) are written
 * escaped (\n, \r, \t, \xHH), so text from outside cannot forge a line (issue 8).
 */
#ifndef MF_LOG_H
#define MF_LOG_H

#include <stdarg.h>

#include "mqttflow.h" /* MF_LOG_* levels */

#define LOG_LINE_MAX 4096

/* Names this process in every line ("router", "worker 3"); the string is copied. */
void log_init(const char *process);
/* Default level for components without an override. */
void log_set_default(int level);
/* Override for one component (copied; at most 32 overrides, later ones are ignored). */
void log_set_level(const char *component, int level);
/* "DEBUG" | "INFO" | "WARNING" | "WARN" | "ERROR" | "CRITICAL" (case-insensitive) -> level,
 * or -EINVAL. */
int log_parse_level(const char *name);
/* Whether a line of this level for this component would be written (skip costly formatting). */
int log_enabled(int level, const char *component);

void log_msg(int level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vmsg(int level, const char *component, const char *fmt, va_list ap);

#define log_debug(comp, ...) log_msg(MF_LOG_DEBUG, (comp), __VA_ARGS__)
#define log_info(comp, ...)  log_msg(MF_LOG_INFO, (comp), __VA_ARGS__)
#define log_warn(comp, ...)  log_msg(MF_LOG_WARNING, (comp), __VA_ARGS__)
#define log_error(comp, ...) log_msg(MF_LOG_ERROR, (comp), __VA_ARGS__)

#endif
