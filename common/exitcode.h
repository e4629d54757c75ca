/* exitcode: the meaning of every mqttflow process's exit status (STYLE 15).
 *
 * The supervisor reads these to decide whether to respawn a stage; the CLI returns them to
 * the shell. They are API: scripts and systemd units depend on them.
 */
#ifndef MF_EXITCODE_H
#define MF_EXITCODE_H

enum {
    MF_EXIT_OK = 0,     /* clean stop */
    MF_EXIT_FAILED = 1, /* runtime failure: respawn with backoff */
    MF_EXIT_CONFIG = 2, /* fatal configuration error: never respawn */
    MF_EXIT_EXEC = 127, /* exec of a stage binary failed */
};

#endif
