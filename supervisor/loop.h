/* loop: the supervisor of one instance, `mqttflow run` (DESIGN §1, §6).
 *
 * One thread, one epoll: a signalfd (SIGTERM, SIGINT, SIGHUP, SIGCHLD; blocked otherwise),
 * a pidfd and a ready pipe per running stage, the control socket and its connections, and one
 * timerfd armed at the earliest deadline (backoff, ready and stop timeouts, the 1 s stats
 * sample). Every decision about a stage is child.c's; this module carries out the actions.
 *
 * Start: stages are started one at a time in reverse pipeline order (relay, workers, router,
 * ingresses), each after the previous one said ready, so every consumer is attached before
 * its producer starts. Stop (SIGTERM, SIGINT, `mqttflow stop`): ingresses first, then the
 * router, the workers and the relay, each group after the previous one has exited (each
 * drains its input ring before it exits), SIGKILL after CHILD_STOP_TIMEOUT_NS; a second
 * SIGTERM/SIGINT kills every stage at once. Then every segment and the socket are removed.
 */
#ifndef MF_SUPERVISOR_LOOP_H
#define MF_SUPERVISOR_LOOP_H

#include "cfg.h"

typedef struct loop loop;

/* Creates the instance's segments and control socket and the loop's fds; starts nothing.
 * c must outlive the loop. 0 and *out, or -errno after logging the reason; -EEXIST when the
 * instance is already running (a live instance's segments and socket are left alone). */
int loop_create(const cfg *c, loop **out);
/* Runs the instance until it is stopped. Returns the process exit code (exitcode.h): 0 after
 * a clean stop, 1 when the start failed, 2 when a stage refused its configuration. */
int loop_run(loop *l);
/* Removes the segments and the socket, closes everything. Accepts NULL; cannot fail. */
void loop_destroy(loop *l);

#endif
