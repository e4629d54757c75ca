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

#endif
