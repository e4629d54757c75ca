/* libFuzzer target for the configuration loader: any bytes must give either a cfg or a list
 * of errors, never a crash, a leak, a hang or a sanitizer report. Modules are not dlopen'ed
 * (no CFG_LOAD_CHECK_MODULES): a fuzzer must not run code from the file system. Relative
 * paths resolve against /nonexistent so the loader's file checks fail the same way each run.
 *
 *   make fuzz FUZZ_SECONDS=60      (seeds in tests/fuzz/seeds/)
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cfg *c = NULL;
    cfg_diag d = {0};
    int r = cfg_load_buffer("fuzz.yaml", "/nonexistent", (const char *)data, size, 0, &c, &d);
    if (r == 0) {
        /* walk what a stage would read, so a dangling index shows up under ASan */
        for (size_t i = 0; i < c->n_rules; i++) {
            const cfg_rule *ru = &c->rules[i];
            if (ru->callback >= 0 && !c->callbacks[ru->callback].name)
                __builtin_trap();
            if (ru->chain >= 0 && !c->chains[ru->chain].name)
                __builtin_trap();
            if (ru->source_client >= 0 && !c->clients[ru->source_client].client_id)
                __builtin_trap();
        }
        for (size_t i = 0; i < cfg_ingress_count(c); i++)
            if (cfg_ingress_client(c, i) < 0)
                __builtin_trap();
        cfg_destroy(c);
    } else if (d.n_errors == 0 && r == -22) {
        __builtin_trap(); /* -EINVAL always comes with at least one message */
    }
    cfg_diag_fini(&d);
    return 0;
}
