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
/* Gives every socket to remote port `port` a send buffer of at least `bytes` (SO_SNDBUFFORCE
 * when allowed, i.e. CAP_NET_ADMIN, else SO_SNDBUF, which the kernel caps at
 * net.core.wmem_max). Why (measured, issue 8): paho's MQTTAsync continues a partly written
 * packet only once per turn of its receive thread, whose poll waits up to 1 s for incoming
 * data, and the broker sends nothing until the whole PUBLISH arrived; each turn writes one
 * send buffer (tcp_wmem max, 4 MiB here), so a 100 MiB publish took ~25 turns, 28-31 s. A
 * buffer that holds the largest record lets it go out in one write. Returns how many sockets
 * got a buffer of at least `bytes`. */
int nodelay_set_sndbuf_peer_port(int port, int bytes);
/* The walk itself: calls fn on every TCP socket of this process connected to remote port
 * `port` (the ingress also uses it to cut its connection without paho, see
 * ingress/subscriber.h). Returns how many calls returned 0. */
int nodelay_each_peer_port(int port, int (*fn)(int fd, void *arg), void *arg);

#endif
