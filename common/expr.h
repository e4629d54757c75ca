/* expr: safe boolean expressions over a message (rule `condition:`, `filter` step).
 *
 * Never eval: a small recursive-descent parser compiles the source once into a tree; the tree
 * is evaluated per message with no allocation beyond parsing the JSON payload (jansson), and
 * only when the expression reads payload fields.
 *
 * Language:
 *   operands  payload.temp   payload.a.b[2]   (a JSON field; a missing field is null)
 *             payload        (the whole payload: a number if it parses as one, else a string)
 *             topic          topic[1]   (the topic, or its level n, 0-based; missing = null)
 *             42  -3.5  "text"  'text'  true  false  null
 *   operators ( )  !  not  -(unary)  * /  + -  < <= > >=  == !=  && and  || or
 *             (C precedence; && and || short-circuit)
 *   Comparing numbers compares values; strings compare bytewise; == and != across types are
 *   false/true; an ordering comparison involving null or mixed types is false.
 *   The result is true when the value is true, a non-zero number or a non-empty string.
 *
 * Limits: source <= 4096 bytes, nesting <= 64. Used by the router (one thread) and the
 * workers; a compiled expr is immutable and may be shared by threads.
 */
#ifndef MF_EXPR_H
#define MF_EXPR_H

#include <stddef.h>

typedef struct expr expr;

/* Compiles src. 0 and *out (expr_destroy it), or -EINVAL with a message in err (e.g.
 * "expected ')' after 'payload.temp > 3'") and the 0-based byte offset of the problem in
 * *err_off (for file:line:column reporting), or -ENOMEM. err may be NULL. */
int expr_compile(const char *src, expr **out, char *err, size_t errlen, size_t *err_off);
/* Evaluates against one message: 1 true, 0 false. A payload that is not JSON makes payload.x
 * null (not an error). Never fails. */
int expr_eval(const expr *e, const char *topic, const void *payload, size_t payload_len);
/* expr_eval that also reports, in *flags (bits ORed in; flags may be NULL), what the caller
 * counts: EXPR_JSON_INVALID when a payload field was read and the payload is not JSON (its
 * fields read as null). Documents jansson refuses by default are parsed: a \u0000 inside a
 * string (JSON_ALLOW_NUL) and integers beyond 64 bits (read as reals, like JavaScript and
 * Python's float); other integers stay exact. */
#define EXPR_JSON_INVALID 1u
int expr_eval_ex(const expr *e, const char *topic, const void *payload, size_t payload_len,
                 unsigned *flags);
/* Whether evaluation reads payload fields (so callers can skip JSON parsing otherwise). */
int expr_uses_payload(const expr *e);
void expr_destroy(expr *e); /* accepts NULL */

#endif
