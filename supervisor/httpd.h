/* httpd: the supervisor's HTTP endpoint (runtime.metrics.listen): /metrics, /healthz, /readyz.
 *
 * libmicrohttpd serves it from its own thread (internal polling with epoll), with a cap on
 * connections and an idle timeout, so a bad request, a slow client or a few hundred idle
 * connections cost that thread only, never the supervisor's loop. The pages are made by the
 * loop itself, from the same code as `mqttflow status` (one source for both), through a
 * hand-off: a request bumps a generation number and wakes the loop through an eventfd
 * (httpd_fd, watched by the loop's epoll); the loop takes the generation (httpd_take),
 * renders every page and hands them over (httpd_answer); the request thread waits for that on
 * a condition variable, at most HTTPD_WAIT_MS, and answers 503 when the loop did not answer in
 * time. Several requests waiting together are answered by one rendering. So the loop does a
 * status rendering per batch of requests, and never waits for the HTTP side (the mutex
 * guards a pointer swap and a generation number).
 *
 * httpd_create/httpd_destroy/httpd_take/httpd_answer are called from the supervisor's thread;
 * the rest happens in libmicrohttpd's thread. Start it after the supervisor has blocked its
 * signals (the thread inherits the mask, so signalfd still gets every signal).
 */
#ifndef MF_SUPERVISOR_HTTPD_H
#define MF_SUPERVISOR_HTTPD_H

#include <stddef.h>
#include <stdint.h>

#define HTTPD_WAIT_MS      5000 /* a request's wait for the loop before a 503 */
#define HTTPD_MAX_CONNS    1024 /* connections served at once; more are refused */
#define HTTPD_IDLE_TIMEOUT 15   /* seconds before an idle connection is closed */

typedef struct httpd httpd;

/* One rendering: the page bodies (malloc'ed; httpd_answer takes them, NULL = out of memory,
 * answered 503) and the status codes of the two probes. */
typedef struct httpd_pages {
    char *metrics;
    char *healthz;
    int healthz_code; /* 200 or 503 */
    char *readyz;
    int readyz_code;
} httpd_pages;

/* Listens on listen ("HOST:PORT", "[V6]:PORT"; the host may be a name) and starts the
 * thread. 0 and *out, or -errno with a one-line explanation in err (nothing left open). */
int httpd_create(const char *listen, httpd **out, char *err, size_t errlen);
/* Stops the thread (open requests get 503), closes everything. Accepts NULL. */
void httpd_destroy(httpd *h);
/* The eventfd that becomes readable when requests wait for pages. */
int httpd_fd(const httpd *h);
/* Clears the eventfd; 1 and *gen when requests wait (render, then httpd_answer(gen)), 0 when
 * none does. */
int httpd_take(httpd *h, uint64_t *gen);
/* Publishes pages (taken over, even on failure) to the requests up to generation gen. */
void httpd_answer(httpd *h, uint64_t gen, httpd_pages *pages);

#endif
