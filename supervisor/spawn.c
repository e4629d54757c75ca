/* spawn: posix_spawn of a stage with a ready pipe, pinning and a pidfd (see spawn.h). */
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"

extern char **environ;

#define READY_ENV "MQTTFLOW_READY_FD"
/* a stage binary every instance runs: where it is, the others are */
#define SPAWN_PROBE "mqttflow-router"

int spawn_stage_dir(char *buf, size_t len)
{
    const char *env = getenv("MQTTFLOW_STAGE_DIR");
    if (env && *env) {
        if ((size_t)snprintf(buf, len, "%s", env) >= len)
            return -ENAMETOOLONG;
        return 0;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n < 0)
        return -errno;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return -ENOENT;
    *slash = '\0';
    /* The build tree has the stage binaries beside mqttflow; an install keeps them out of
     * bin/, in ../libexec/mqttflow (make install), found relative to the binary so a
     * relocated or DESTDIR-staged tree works as well as the configured prefix. */
    char probe[PATH_MAX];
    if ((size_t)snprintf(probe, sizeof(probe), "%s/" SPAWN_PROBE, exe) < sizeof(probe) &&
        access(probe, X_OK) != 0) {
        if ((size_t)snprintf(probe, sizeof(probe), "%s/../libexec/mqttflow/" SPAWN_PROBE, exe) <
                sizeof(probe) &&
            access(probe, X_OK) == 0) {
            if ((size_t)snprintf(buf, len, "%s/../libexec/mqttflow", exe) >= len)
                return -ENAMETOOLONG;
            return 0;
        }
    }
    if ((size_t)snprintf(buf, len, "%s", exe) >= len)
        return -ENAMETOOLONG;
    return 0;
}

/* environ without any inherited MQTTFLOW_READY_FD, plus ours. NULL on ENOMEM. The strings
 * are borrowed from environ except the last, which is ready_var. */
static char **child_env(char *ready_var)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 2, sizeof(*env));
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], READY_ENV "=", sizeof(READY_ENV)) != 0)
            env[k++] = environ[i];
    env[k++] = ready_var;
    env[k] = NULL;
    return env;
}

static void pin(pid_t pid, int cpu, const char *binary)
{
    if (cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(pid, sizeof(set), &set) < 0)
        log_warn("supervisor", "sched_setaffinity(pid %d, cpu %d) for %s: %s; running unpinned",
                 (int)pid, cpu, binary, strerror(errno));
}

int spawn_stage(const spawn_req *req, spawn_child *out)
{
    char dir[PATH_MAX], path[PATH_MAX], ready_var[32];
    const char *argv[SPAWN_MAX_ARGS + 2];
    int pipefd[2] = {-1, -1};
    char **env = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int fa_ok = 0, attr_ok = 0;
    pid_t pid = -1;
    int err;

    err = spawn_stage_dir(dir, sizeof(dir));
    if (err)
        return err;
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, req->binary) >= sizeof(path))
        return -ENAMETOOLONG;
    argv[0] = path;
    size_t a = 0;
    for (; a < SPAWN_MAX_ARGS && req->args[a]; a++)
        argv[a + 1] = req->args[a];
    argv[a + 1] = NULL;

    /* Both ends close-on-exec; the write end is re-enabled for this one child by the
     * dup2-onto-itself file action (glibc clears FD_CLOEXEC in that case), so no other
     * child ever inherits another stage's ready pipe. */
    if (pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) < 0)
        return -errno;
    snprintf(ready_var, sizeof(ready_var), READY_ENV "=%d", pipefd[1]);
    env = child_env(ready_var);
    if (!env) {
        err = -ENOMEM;
        goto out;
    }
    /* The child's write end must block: a stage writes "ready\n" once and must not see
     * EAGAIN (it cannot: the pipe is empty), but O_NONBLOCK is shared with the file
     * description, so clear it on the write end to keep the child's view ordinary. */
    int fl = fcntl(pipefd[1], F_GETFL);
    if (fl >= 0)
        (void)fcntl(pipefd[1], F_SETFL, fl & ~O_NONBLOCK);

    if ((err = -posix_spawn_file_actions_init(&fa)))
        goto out;
    fa_ok = 1;
    if ((err = -posix_spawn_file_actions_adddup2(&fa, pipefd[1], pipefd[1])))
        goto out;
    if ((err = -posix_spawnattr_init(&attr)))
        goto out;
    attr_ok = 1;
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGTERM);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGHUP);
    sigaddset(&defaults, SIGCHLD);
    sigaddset(&defaults, SIGPIPE);
    if ((err = -posix_spawnattr_setsigmask(&attr, &none)) ||
        (err = -posix_spawnattr_setsigdefault(&attr, &defaults)) ||
        (err = -posix_spawnattr_setpgroup(&attr, 0)) ||
        (err = -posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                                    POSIX_SPAWN_SETPGROUP)))
        goto out;

    err = -posix_spawn(&pid, path, &fa, &attr, (char *const *)argv, env);
    if (err) {
        pid = -1;
        log_error("supervisor", "posix_spawn(%s): %s", path, strerror(-err));
        goto out;
    }
    int pidfd = pidfd_open(pid, 0);
    if (pidfd < 0) {
        /* Without a pidfd we cannot watch it: take it down again rather than run blind. */
        err = -errno;
        log_error("supervisor", "pidfd_open(%d) for %s: %s", (int)pid, path, strerror(-err));
        kill(pid, SIGKILL);
        (void)waitpid(pid, NULL, 0);
        goto out;
    }
    pin(pid, req->cpu, req->binary);
    out->pid = pid;
    out->pidfd = pidfd;
    out->ready_fd = pipefd[0];
    pipefd[0] = -1;
    err = 0;

out:
    if (attr_ok)
        posix_spawnattr_destroy(&attr);
    if (fa_ok)
        posix_spawn_file_actions_destroy(&fa);
    free(env);
    if (pipefd[1] >= 0)
        close(pipefd[1]); /* ours: the child has its own copy; EOF tells us it is gone */
    if (pipefd[0] >= 0)
        close(pipefd[0]);
    return err;
}

int spawn_reap(int pidfd, int *wstatus)
{
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    if (waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED | WNOHANG) < 0)
        return -errno;
    if (si.si_pid == 0)
        return -EAGAIN;
    switch (si.si_code) {
    case CLD_EXITED:
        *wstatus = (si.si_status & 0xff) << 8; /* W_EXITCODE(status, 0) */
        break;
    case CLD_DUMPED:
        *wstatus = (si.si_status & 0x7f) | 0x80;
        break;
    default: /* CLD_KILLED */
        *wstatus = si.si_status & 0x7f;
        break;
    }
    return 0;
}
