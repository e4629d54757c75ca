/* libFuzzer target for the expression compiler and evaluator (common/expr*): the input's
 * first line is an expression, the rest a payload (usually JSON). Compiling must succeed or
 * fail with a message and an offset inside the source; evaluating must give 0 or 1 and never
 * crash, leak or read past the payload (copied into an exact-size buffer).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "expr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t slen = nl ? (size_t)(nl - data) : size;
    char *src = malloc(slen + 1);
    if (!src)
        return 0;
    memcpy(src, data, slen);
    src[slen] = 0;
    expr *e = NULL;
    char err[160];
    size_t off = 0;
    int rc = expr_compile(src, &e, err, sizeof(err), &off);
    if (rc == 0) {
        size_t plen = nl ? size - slen - 1 : 0;
        uint8_t *payload = malloc(plen ? plen : 1);
        if (payload) {
            memcpy(payload, nl ? nl + 1 : data, plen);
            unsigned flags = 0;
            int r = expr_eval_ex(e, "a/b/c", payload, plen, &flags);
            if (r != 0 && r != 1)
                __builtin_trap();
            r = expr_eval(e, "", NULL, 0);
            if (r != 0 && r != 1)
                __builtin_trap();
            free(payload);
        }
        expr_destroy(e);
    } else if (rc == -22 && (!err[0] || off > strlen(src))) {
        __builtin_trap(); /* an error names its place in the source */
    }
    free(src);
    return 0;
}
