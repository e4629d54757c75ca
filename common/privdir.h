/* privdir: a directory of this service's own, opened without trusting what others planted.
 *
 * The spools and the dead-letter store hold payloads that were acknowledged to a broker: a
 * directory another user can write (or a symbolic link planted in advance) would let them
 * read, redirect or destroy those records. privdir walks a path from "/" one level at a time
 * (openat, O_NOFOLLOW) and refuses, with the path and the fix, when:
 *   - a level is not a directory;
 *   - a level is owned by someone other than root or this user;
 *   - a parent level is writable by others (o+w, or g+w for a group other than root's) without
 *     the sticky bit (a sticky /tmp or /var/tmp is fine: its children's owners are checked);
 *   - the leaf is writable by group or others (chmod 700);
 *   - a symbolic link on the way is owned by someone other than root or this user (links of
 *     trusted owners are followed, as /var/run -> /run; the kernel's protected_symlinks
 *     reasons the same way).
 * PostgreSQL refuses a data directory of another owner or a looser mode the same way; mosquitto
 * warns about world-readable files. Missing levels are created mode 0700 (PRIVDIR_CREATE).
 * Stateless and thread-safe; used by the config check (privdir_check: nothing created) and by
 * the stages that open a spool or the dead-letter store.
 */
#ifndef MF_PRIVDIR_H
#define MF_PRIVDIR_H

#include <stddef.h>

/* Opens the directory at absolute path (creating missing levels 0700) and returns its fd
 * (O_RDONLY | O_DIRECTORY | O_CLOEXEC) in *dirfd. 0, or -errno with a message naming the
 * path and the fix in err (errlen bytes, always NUL-terminated). Nothing is left open on
 * failure; levels created before a failure stay (empty, 0700). */
int privdir_open(const char *path, int *dirfd, char *err, size_t errlen);
/* The same checks without creating or opening anything: levels that do not exist yet are
 * fine (privdir_open would create them 0700). 0 or -errno with err filled. */
int privdir_check(const char *path, char *err, size_t errlen);
/* Opens (creating 0600) the regular file name inside dirfd for appending, refusing a symbolic
 * link (O_NOFOLLOW), anything not a regular file, and a file of another owner. 0 and *fd, or
 * -errno with err filled (path names the directory in messages). */
int privdir_open_file(int dirfd, const char *path, const char *name, int flags, int *fd, char *err,
                      size_t errlen);

/* Default locations (README "Design decisions"). The state folder of an instance, where its
 * spools and dead letters live: /var/lib/mqttflow/<instance> for root and for the service user
 * "mqttflow" (scripts/mqttflow.service: StateDirectory=mqttflow), else
 * $XDG_STATE_HOME/mqttflow/<instance> ($HOME/.local/state when XDG_STATE_HOME is unset or not
 * absolute). Never /var/tmp or /tmp, where another user can create the name first.
 * 0 or -ENAMETOOLONG / -ENOENT (no home to put it in). */
int privdir_default_state(const char *instance, char *buf, size_t len);
/* The folder of control sockets: $XDG_RUNTIME_DIR when set, else /run/mqttflow for root and
 * the service user (the unit's RuntimeDirectory=), else /run/user/<uid> when it exists, else
 * $XDG_STATE_HOME/mqttflow (as above): all folders no other user can write. 0 or -errno. */
int privdir_default_runtime(char *buf, size_t len);

#endif
