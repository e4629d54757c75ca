/* nodelay: TCP_NODELAY on paho's broker sockets, which paho never sets and offers no hook for
 * (shared/bench BASELINES pitfall 5: Nagle + delayed ACK stall a client that publishes and
 * subscribes by 20-40 ms at low rates). Used by the ingress and the relay after each connect.
 *
 * It walks /proc/self/fd and sets the option on every TCP socket of this process connected to
 * remote port `port`: sockets of other clients of this process on the same port get it too,
 * which they want anyway. Runs once per connect, never on a hot path. Thread-safe; cannot
 * fail (a socket it cannot set is skipped).
 */
#ifndef MF_NODELAY_H
#define MF_NODELAY_H

/* Returns how many sockets got TCP_NODELAY. */
int nodelay_set_peer_port(int port);
/* The walk itself: calls fn on every TCP socket of this process connected to remote port
 * `port` (the ingress also uses it to cut its connection without paho, see
 * ingress/subscriber.h). Returns how many calls returned 0. */
int nodelay_each_peer_port(int port, int (*fn)(int fd, void *arg), void *arg);

#endif
