/* mqttflow: the command-line entry point; the commands are in cli.c's table. */
#include "cli.h"

int main(int argc, char **argv)
{
    return cli_main(argc, argv);
}
