/* Test module: counts its hooks.
 *   mf_init   increments an init counter (must end at 1 however many callbacks use the module)
 *   mf_fini   appends "fini <inits>\n" to the file named by $MF_TEST_FINI_FILE, if set
 *   inits     emits "inits=<n>" on "lifecycle"
 *   calls     emits "calls=<n>" on "lifecycle", n counting the calls of this function
 */
#include <mqttflow.h>

#include <stdio.h>
#include <stdlib.h>

int mf_init(mf_ctx *ctx);
void mf_fini(mf_ctx *ctx);
int inits(mf_ctx *ctx, const mf_msg *msgs, size_t n);
int calls(mf_ctx *ctx, const mf_msg *msgs, size_t n);

static int n_inits;
static int n_calls;

int mf_init(mf_ctx *ctx)
{
    (void)ctx;
    n_inits++;
    return 0;
}

void mf_fini(mf_ctx *ctx)
{
    (void)ctx;
    const char *path = getenv("MF_TEST_FINI_FILE");
    if (!path)
        return;
    FILE *f = fopen(path, "a");
    if (f) {
        fprintf(f, "fini %d\n", n_inits);
        fclose(f);
    }
}

int inits(mf_ctx *ctx, const mf_msg *msgs, size_t n)
{
    (void)msgs;
    (void)n;
    char out[32];
    int len = snprintf(out, sizeof(out), "inits=%d", n_inits);
    return mf_emit(ctx, "lifecycle", out, (size_t)len);
}

int calls(mf_ctx *ctx, const mf_msg *msgs, size_t n)
{
    (void)msgs;
    (void)n;
    char out[32];
    int len = snprintf(out, sizeof(out), "calls=%d", ++n_calls);
    return mf_emit(ctx, "lifecycle", out, (size_t)len);
}
