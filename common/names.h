/* names: the names of an instance's shared-memory segments and rings, one place for all
 * stages. Topology (DESIGN §1): one ring per ingress (ingress i -> router), one input ring
 * per worker (router -> worker w), one output ring per worker (worker w -> relay), one stats
 * segment, one state segment per worker.
 *
 *   mqttflow.<instance>.in<i>      mqttflow.<instance>.w<w>.in    mqttflow.<instance>.w<w>.out
 *   mqttflow.<instance>.stats      mqttflow.<instance>.w<w>.state
 *
 * Each function writes a NUL-terminated name into buf (SHM_NAME_MAX bytes is always enough
 * for a valid instance name) and returns 0, or -ENAMETOOLONG. Pure; thread-safe.
 */
#ifndef MF_NAMES_H
#define MF_NAMES_H

#include <stddef.h>

int names_ingress_ring(char *buf, size_t len, const char *instance, size_t ingress);
int names_worker_in(char *buf, size_t len, const char *instance, size_t worker);
int names_worker_out(char *buf, size_t len, const char *instance, size_t worker);
int names_stats(char *buf, size_t len, const char *instance);
int names_worker_state(char *buf, size_t len, const char *instance, size_t worker);
/* the tap segment of a point ("ingress", "rule", "out"; tap.h) */
int names_tap(char *buf, size_t len, const char *instance, const char *point);
/* The spool folder name of a client id (a free-text MQTT client id): bytes of [A-Za-z0-9._-]
 * as they are, every other byte and a leading "." as %XX (so "%" itself too). One-to-one:
 * "a/b" -> "a%2Fb", "a_b" -> "a_b"; never "", "." or "..", never a "/". An id of safe bytes
 * keeps the name versions before issue 8 gave it. 0 or -ENAMETOOLONG (at most NAME_MAX). */
int names_client_dir(char *buf, size_t len, const char *client_id);

#endif
