/* mqttflow: the command-line entry point; dispatches to a subcommand of cli.h. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "exitcode.h"
#include "version.h"

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
} commands[] = {
    {"check", cli_check}, {"run", cli_run}, {"status", cli_status},    {"restart", cli_restart},
    {"stop", cli_stop},   {"tap", cli_tap}, {"version", version_main}, {"--version", version_main},
};

int main(int argc, char **argv)
{
    if (argc >= 2 &&
        (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help"))) {
        cli_usage(stdout);
        return MF_EXIT_OK;
    }
    for (size_t i = 0; argc >= 2 && i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    if (argc >= 2)
        fprintf(stderr, "mqttflow: unknown command \"%s\"\n", argv[1]);
    cli_usage(stderr);
    return MF_EXIT_CONFIG;
}
