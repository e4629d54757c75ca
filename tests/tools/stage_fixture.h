/* stage_fixture: what the harnesses of one stage binary (ingress_fixture.h, relay_fixture.h)
 * share on top of testlib.h's fixture library: the short names they and their tests have
 * always called (a test written against either harness reads the same; new code may call
 * testlib_* directly), and the config check a stage does at start.
 */
#ifndef MF_TESTS_STAGE_FIXTURE_H
#define MF_TESTS_STAGE_FIXTURE_H

#include "cfg.h"
#include "testlib.h"

static inline const char *build_dir(void)
{
    return testlib_build_dir();
}

static inline int free_port(void)
{
    return testlib_free_port();
}

static inline int port_is_open(int port)
{
    return testlib_port_open(port);
}

static inline void sleep_ms(int ms)
{
    testlib_sleep_ms(ms);
}

static inline pid_t spawn(char *const argv[], int ready_fd, const char *log_path)
{
    return testlib_spawn(argv, ready_fd, log_path);
}

/* waitpid with a deadline: the exit status (as waitpid's), or -1 on timeout */
static inline int wait_exit(pid_t pid, int timeout_ms)
{
    return testlib_wait_status(pid, timeout_ms);
}

static inline void kill_wait(pid_t *pid)
{
    testlib_kill_wait(pid);
}

/* Loads the YAML at path as the stage will (no module checks) and prints its errors: 0, or
 * -1 when the stage would exit 2 on it. */
static inline int stage_fixture_check_config(const char *path)
{
    cfg *c = NULL;
    cfg_diag d = {0};
    int rc = cfg_load(path, 0, &c, &d);
    for (size_t i = 0; i < d.n_errors; i++)
        fprintf(stderr, "config: %s\n", d.errors[i]);
    cfg_diag_fini(&d);
    cfg_destroy(c);
    return rc < 0 ? -1 : 0;
}

#endif
