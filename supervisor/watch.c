/* watch: `mqttflow status --watch` (see watch.h). */
#include "watch.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "exitcode.h"

static volatile sig_atomic_t quit_flag;

static void on_quit(int sig)
{
    (void)sig;
    quit_flag = 1;
}

static void draw(const char *sock, int timeout_ms, int tty)
{
    char *reply = NULL;
    int rc = ctl_request(sock, "status", timeout_ms, &reply, NULL);
    time_t now = time(NULL);
    char stamp[32];
    strftime(stamp, sizeof(stamp), "%H:%M:%S", localtime(&now));
    if (tty)
        fputs("\033[H\033[2J", stdout); /* home, clear */
    if (rc < 0)
        printf("%s  no answer from %s: %s\n", stamp, sock, strerror(-rc));
    else if (!strncmp(reply, CTL_ERR, strlen(CTL_ERR)))
        printf("%s  %s", stamp, reply + strlen(CTL_ERR));
    else
        printf("%s  %s", stamp, reply);
    printf("\n(refreshed every %.0f s; q quits)\n", WATCH_PERIOD_MS / 1000.0);
    fflush(stdout);
    free(reply);
}

int watch_run(const char *sock, int timeout_ms)
{
    int tty_out = isatty(STDOUT_FILENO), tty_in = isatty(STDIN_FILENO);
    struct termios saved;
    int raw = 0;
    struct sigaction sa = {.sa_handler = on_quit}, old_int, old_term;
    sigemptyset(&sa.sa_mask); /* no SA_RESTART: poll returns at once on Ctrl-C */
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    if (tty_in && tcgetattr(STDIN_FILENO, &saved) == 0) {
        struct termios t = saved;
        t.c_lflag &= ~(tcflag_t)(ICANON | ECHO); /* keys one by one, unechoed; ISIG stays */
        t.c_cc[VMIN] = 1;
        t.c_cc[VTIME] = 0;
        raw = tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
    }
    if (tty_out)
        fputs("\033[?1049h\033[?25l", stdout); /* alternate screen, cursor hidden */
    int stdin_open = 1;
    while (!quit_flag) {
        draw(sock, timeout_ms, tty_out);
        struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
        struct timespec until, now;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += WATCH_PERIOD_MS / 1000;
        for (;;) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            long left =
                (until.tv_sec - now.tv_sec) * 1000 + (until.tv_nsec - now.tv_nsec) / 1000000;
            if (left <= 0 || quit_flag)
                break;
            int n = poll(&p, stdin_open ? 1 : 0, (int)left);
            if (n <= 0)
                continue; /* timeout or a signal: the loop checks both */
            char ch;
            ssize_t r = read(STDIN_FILENO, &ch, 1);
            if (r <= 0) {
                stdin_open = 0; /* EOF (not a terminal): only signals quit */
                continue;
            }
            if (ch == 'q' || ch == 'Q' || ch == 3)
                quit_flag = 1;
        }
    }
    if (tty_out)
        fputs("\033[?25h\033[?1049l", stdout);
    fflush(stdout);
    if (raw)
        tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    quit_flag = 0;
    return MF_EXIT_OK;
}
