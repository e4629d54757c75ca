#include "stage.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "log.h"

volatile sig_atomic_t stage_stop_flag;
volatile sig_atomic_t stage_hup_flag;

static void on_stop(int sig)
{
    (void)sig;
    stage_stop_flag = 1;
}

static void on_hup(int sig)
{
    (void)sig;
    stage_hup_flag = 1;
}

int stage_init(const char *process_name)
{
    log_init(process_name);
    pid_t parent = getppid();
    /* A stage must never outlive its supervisor (an orphan would hold rings and broker
     * sessions); SIGKILL because a stage's SIGTERM path waits for a drain. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
        return -errno;
    if (getppid() != parent || parent == 1)
        return -ESRCH; /* the parent died before the prctl took effect */

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: blocking waits return EINTR and see the flag */
    sa.sa_handler = on_stop;
    if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0)
        return -errno;
    sa.sa_handler = on_hup;
    if (sigaction(SIGHUP, &sa, NULL) < 0)
        return -errno;
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) < 0)
        return -errno;
    return 0;
}

int stage_pin(int cpu)
{
    if (cpu < 0)
        return 0;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) < 0) {
        int err = errno;
        log_warn("stage", "sched_setaffinity(cpu %d): %s", cpu, strerror(err));
        return -err;
    }
    return 0;
}

void stage_fail_note(const char *text)
{
    const char *v = getenv("MQTTFLOW_READY_FD");
    if (!v || !*v || !text)
        return;
    char *end;
    long fd = strtol(v, &end, 10);
    if (*end || fd < 0 || fd > 65535)
        return;
    char line[200] = "fail ";
    size_t n = 5;
    for (const char *p = text; *p && n < sizeof(line) - 2; p++)
        line[n++] = (unsigned char)*p < 0x20 || *p == 0x7f ? ' ' : *p;
    line[n++] = '\n';
    ssize_t w = write((int)fd, line, n);
    (void)w; /* best effort: the exit status still tells the supervisor it failed */
    close((int)fd);
    unsetenv("MQTTFLOW_READY_FD");
}

int stage_ready(void)
{
    const char *v = getenv("MQTTFLOW_READY_FD");
    if (!v || !*v)
        return 0;
    char *end;
    long fd = strtol(v, &end, 10);
    if (*end || fd < 0 || fd > 65535)
        return -EBADF;
    static const char msg[] = "ready\n";
    ssize_t n = write((int)fd, msg, sizeof(msg) - 1);
    int err = n < 0 ? errno : 0;
    close((int)fd);
    unsetenv("MQTTFLOW_READY_FD");
    return n == (ssize_t)sizeof(msg) - 1 ? 0 : (err ? -err : -EIO);
}
